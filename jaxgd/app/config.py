"""The report's configuration: defaults, a TOML file, flags on top; checked before any work.

TOML keys: the fields of :class:`ReportConfig` (``-`` and ``_`` the same, so a file spells each key
once; at most 1 MiB); ``optimizers`` a list or comma string, ``lr`` a number or a table ``{adam = 0.3, gd = 0.05}``.
"""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path

import numpy as np

from jaxgd import _checks, optim
from jaxgd.explore import SPREAD_LR_FACTORS
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.app import presets

GRID_MAX = 4001
SWEEP_LR_RANGE = (1e-3, 10.0)  # the report's learning-rate sweep, log-spaced


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """What ``jaxgd report`` runs. None for lr / epochs / seed means the presets."""

    optimizers: tuple[str, ...] = presets.REPORT_OPTIMIZERS
    problem: str = "notebook"
    lr: float | dict | None = None
    epochs: int | None = None
    batch_size: int | None = None  # None: 8, or n − 1 on n ≤ 8 examples (jaxgd.app.plan.plan); refused on a landscape
    seed: int | None = None
    noise: float = 0.0
    data_seed: int | None = None  # None: 0; refused with data of one's own or a landscape
    data: str | None = None
    grid: int = 101
    dtype: str = "float64"
    out: str = "out"
    gif: bool = False
    png: bool = False
    sweep: bool = True
    sweep_points: int = 100
    sweep_epochs: int = 100
    loss_every: int | None = None  # None: every step, fewer past 10⁸ example evaluations (jaxgd.runs.auto_loss_every)


_KINDS = {int: ((int,), "an integer"), float: ((numbers.Real,), "a number"), str: ((str,), "a string"),
          bool: ((bool,), "true or false")}  # (accepted Python types, description) by the type of a default
_OWN_TYPES = {  # the settings whose default (None, a tuple) does not say what they accept, or that say it otherwise
    "optimizers": ((list, str), "a list of optimizer names"),
    "problem": ((str,), "a problem name"),
    "lr": ((numbers.Real, dict), "a number or a table of numbers by optimizer"),
    **dict.fromkeys(("epochs", "seed", "loss_every", "batch_size", "data_seed"), _KINDS[int]),
    "data": ((str,), "a path to a CSV file"),
}
_TYPES = {f.name: _OWN_TYPES.get(f.name) or _KINDS[type(f.default)] for f in dataclasses.fields(ReportConfig)}


class ConfigError(ArgumentError):
    """A bad configuration file (the argument ``config``): the message names the file and the key."""

    def __init__(self, detail: str):
        super().__init__("config", detail)


def load_toml(path: str | Path) -> dict:
    """Read a TOML file into ``ReportConfig`` field values, checking keys and types."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    where = f"file {str(path)!r}"
    try:
        raw = tomllib.loads(_checks.read_file("config", path, _checks.MAX_CONFIG_BYTES).decode("utf-8"))
    except ArgumentError as e:  # missing, a folder, a device, too large: the same sentence, as a ConfigError
        raise ConfigError(e.detail) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where} cannot be read: it is not UTF-8 text (byte {e.start + 1})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {e}") from None
    out, spelled = {}, {}
    for key, value in raw.items():
        k = key.replace("-", "_")
        if k in spelled:
            raise ConfigError(f"{where}: keys {spelled[k]!r} and {key!r} are the same setting; give it once")
        spelled[k] = key
        if k not in _TYPES:
            raise ConfigError(f"{where}: unknown key {key!r} (allowed: {', '.join(_TYPES)})")
        types, desc = _TYPES[k]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise ConfigError(f"{where}: key {key!r} must be {desc}, got {type(value).__name__} {value!r}")
        if k == "optimizers" and isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: key {key!r} must be {desc}, got {value!r}")  # a list: check() makes it a tuple
        out[k] = value
    return out


def parse_optimizers(v) -> tuple[str, ...]:
    """A comma list or a sequence of optimizer names, each known, none repeated."""
    names = tuple(s.strip() for s in v.split(",")) if isinstance(v, str) else tuple(v)
    names = tuple(n for n in names if n)
    if not names:
        raise ArgumentError("optimizers", f"must name at least one optimizer ({', '.join(optim.OPTIMIZERS)}, optax:NAME)")
    for n in names:
        try:
            optim.resolve(n, 0.1, {})
        except ArgumentError as e:  # the flag the user typed is --optimizers
            raise ArgumentError("optimizers" if e.name == "optimizer" else e.name, e.detail) from None
    if len(set(names)) != len(names):
        raise ArgumentError("optimizers", f"must not repeat a name, got {', '.join(names)}")
    return names


def check(cfg: ReportConfig) -> ReportConfig:
    """Check every field on its own; returns the config with canonical values. Raises
    :class:`jaxgd.ArgumentError` / ``ArgumentTypeError`` naming the field. What depends on the
    problem (the batch size against its data) is checked by :func:`jaxgd.app.plan.plan`."""
    optimizers = parse_optimizers(cfg.optimizers)
    lr = cfg.lr
    if isinstance(lr, dict):
        unknown = sorted(set(lr) - set(optimizers))
        if unknown:
            raise ArgumentError("lr", f"has a value for {unknown[0]!r}, which is not among the optimizers "
                                      f"({', '.join(optimizers)})")
        checked = {}
        for k, v in lr.items():
            try:
                checked[k] = _checks.check_positive_number("lr", v)
            except (ArgumentError, ArgumentTypeError) as e:
                raise type(e)("lr", f"for {k} {e.detail}") from None
        lr = checked
    elif lr is not None:
        lr = _checks.check_positive_number("lr", lr)
    epochs = None if cfg.epochs is None else _checks.check_int("epochs", cfg.epochs, 1)
    batch_size = None if cfg.batch_size is None else _checks.check_int("batch_size", cfg.batch_size, 1)
    seed = None if cfg.seed is None else _checks.check_seed(cfg.seed)
    noise = _checks.check_nonneg_number("noise", cfg.noise)
    data_seed = None if cfg.data_seed is None else _checks.check_seed(cfg.data_seed, "data_seed")
    grid = _checks.check_int("grid", cfg.grid, 2, GRID_MAX)
    dtype = _checks.check_choice("dtype", cfg.dtype, ("float64", "float32"))
    sweep_points = _checks.check_int("sweep_points", cfg.sweep_points, 2, 100_000)
    sweep_epochs = _checks.check_int("sweep_epochs", cfg.sweep_epochs, 1, 1_000_000)
    top = float(np.finfo(dtype).max) / max(SPREAD_LR_FACTORS)  # the explorables try up to that multiple of it
    for k, v in (lr.items() if isinstance(lr, dict) else [(None, lr)] if lr is not None else []):
        if v > top and cfg.sweep:
            raise ArgumentError("lr", f"{'for ' + k + ' ' if k else ''}must be at most {top:.4g}: the seed cloud tries "
                                      f"up to {max(SPREAD_LR_FACTORS):g}× it, and {dtype} ends at "
                                      f"{float(np.finfo(dtype).max):.4g}; got {v!r}")
    loss_every = None if cfg.loss_every is None else _checks.check_int("loss_every", cfg.loss_every, 1, 2**31 - 1)
    if not isinstance(cfg.out, str) or not cfg.out:
        raise ArgumentError("out", f"must be a folder path, got {cfg.out!r}")
    return dataclasses.replace(cfg, optimizers=optimizers, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
                               noise=noise, data_seed=data_seed, grid=grid, dtype=dtype, sweep_points=sweep_points,
                               sweep_epochs=sweep_epochs, loss_every=loss_every)
