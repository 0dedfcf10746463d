"""Problems by name: the one factory of the CLI and the report (:func:`problem`)."""

from __future__ import annotations

import dataclasses
import os

from jaxgd import _checks
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.datasets import read_xy
from jaxgd.landscapes import LANDSCAPES
from jaxgd.problems import Problem, _regression, notebook


def _pair(name: str, v) -> tuple:
    try:
        x, y = v
    except (TypeError, ValueError):
        raise ArgumentTypeError(name, f"must be a pair (x, y) of arrays or a CSV path, got {type(v).__name__}") from None
    return x, y


def problem(name: str = "notebook", *, data=None, noise: float = 0.0, data_seed: int = 0, dtype=None) -> Problem:
    """A problem by name: ``"notebook"`` (with ``noise`` and its ``data_seed``), ``"data"`` for
    the points ``data = (x, y)`` (or a CSV path of two columns), or a landscape of
    :data:`jaxgd.landscapes.LANDSCAPES` (these have no data). The one factory of the CLI and the report."""
    names = ("notebook", "data", *LANDSCAPES)
    if name not in names:
        raise ArgumentError("problem", f"must be one of {', '.join(map(repr, names))}; got {name!r}")
    noise = _checks.check_nonneg_number("noise", noise)
    data_seed = _checks.check_seed(data_seed, "data_seed")
    if name in LANDSCAPES:
        if data is not None or noise:
            raise ArgumentError("problem", f"{name} has no data: data and noise apply to the notebook's regression only")
        return LANDSCAPES[name]()
    if data is not None or name == "data":
        if data is None:
            raise ArgumentError("data", "is needed for problem 'data': a pair (x, y) or a CSV file of x, y")
        if noise:
            raise ArgumentError("noise", "applies to the notebook's data, not to your own data; leave it 0")
        if isinstance(data, (str, os.PathLike)):
            xs, ys, header, _ = read_xy(data)
            where = "stdin" if data == "-" else f"file {str(data)!r}"
        else:
            (xs, ys), header = _checks.check_data(*_pair("data", data)), None
            where = "the data"
        p = _regression(xs, ys, _checks.check_dtype(dtype), "data", ("data", f"{where} makes", "rescale it"))
        return dataclasses.replace(p, data_names=header) if header else p
    return notebook(noise=noise, seed=data_seed, dtype=dtype)
