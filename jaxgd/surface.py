"""The loss over a grid of parameters, and the autodiff-vs-analytic gradient check.

Layout: ``S[i, j] = loss(w_values[i], b_values[j])`` — rows follow the first parameter.
(plotly's ``Surface(z=S)`` runs ``z[row]`` along *y*, so plot ``z=S.T`` with ``x=w, y=b``.)
The grid is evaluated with ``vmap`` over ``b`` inside ``lax.map`` over chunks of ``w``, so the
memory held at once is about ``chunk × len(b) × m`` numbers, never the whole grid × data.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import numpy as np

from jaxgd import engine
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.model import Params
from jaxgd.planes import Plane, plane_surface
from jaxgd.problems import Problem, check_problem_dtype

# Elements (grid points × data points) evaluated at once; 2**22 float64 = 32 MiB.
CHUNK_ELEMENTS = 2**22


def _grid_axis(name: str, v, dtype) -> np.ndarray:
    """A checked grid axis, as a NumPy array of the working dtype (jit transfers it)."""
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(name, f"must be a non-empty 1-D array of numbers, got {v!r}") from None
    if a.ndim != 1 or a.size == 0:
        raise ArgumentError(name, f"must be a non-empty 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ArgumentError(name, "must be finite")
    top = float(np.finfo(dtype).max)
    if np.abs(a).max() > top:
        raise ArgumentError(name, f"must be finite in {np.dtype(dtype).name} (|value| ≤ {top:.4g}), got {a[np.argmax(np.abs(a))]:g}")
    return a.astype(dtype, copy=False)


def _problem(problem) -> Problem:
    if not isinstance(problem, Problem):
        raise ArgumentTypeError("problem", f"must be a jaxgd.Problem (e.g. jaxgd.notebook()), got {problem!r}")
    return check_problem_dtype(problem)


def _two_params(problem: Problem, what: str) -> Problem:
    _problem(problem)
    if not problem.two_dimensional:
        raise ArgumentError("problem", f"{problem.name!r} has {problem.num_params} parameters in a "
                                       f"{type(problem.init).__name__}: {what} needs a problem over Params(w, b)")
    return problem


def _rows_per_chunk(problem: Problem, nb: int) -> int:
    m = problem.num_examples or 1
    return max(1, CHUNK_ELEMENTS // (nb * m))


def _point(what, loss_fn, grad_fn, params, data):
    if what == "loss":
        return loss_fn(params, data, None)
    return jax.grad(loss_fn)(params, data, None), grad_fn(params, data, None)


@partial(jax.jit, static_argnames=("what", "loss_fn", "grad_fn", "rows"))
def _on_grid(what, loss_fn, grad_fn, rows, data, w, b):
    """:func:`_point` at every ``Params(w[i], b[j])``; outputs stacked ``(len(w), len(b), ...)``."""
    f = lambda p: _point(what, loss_fn, grad_fn, p, data)
    row = lambda wi: jax.vmap(lambda bj: f(Params(wi, bj)))(b)
    return jax.lax.map(row, w, batch_size=min(rows, w.shape[0]))


def loss_surface(problem: Problem, *grid) -> jax.Array:
    """Full-data loss on a grid: ``loss_surface(problem, w_values, b_values)`` for a two-parameter
    problem, ``S[i, j] = L(w_i, b_j)``; or ``loss_surface(problem, plane, a, b)`` for any problem,
    ``S[i, j] = L(origin + a_i·d1 + b_j·d2)`` with a :class:`jaxgd.planes.Plane` (evaluated in
    bounded memory, :func:`jaxgd.planes.plane_surface`). Shape ``(len(first axis), len(second))``."""
    _problem(problem)
    if grid and isinstance(grid[0], Plane):
        if len(grid) != 3:
            raise ArgumentTypeError("grid", "with a plane, give loss_surface(problem, plane, a, b)")
        plane, a, b = grid
        return plane_surface(problem, plane, _grid_axis("a", a, problem.dtype), _grid_axis("b", b, problem.dtype))
    if len(grid) != 2:
        raise ArgumentTypeError("grid", "give loss_surface(problem, w_values, b_values) or (problem, plane, a, b)")
    w_values, b_values = grid
    _two_params(problem, "loss_surface")
    w = _grid_axis("w_values", w_values, problem.dtype)
    b = _grid_axis("b_values", b_values, problem.dtype)
    rows = _rows_per_chunk(problem, b.shape[0])
    return engine.compiled_call(_on_grid, "on_grid", ("loss", problem.loss_fn, None, rows), problem.data, w, b)


class GradCheck(NamedTuple):
    """``jax.grad`` against the analytic gradient over a grid (arrays ``(len(w), len(b))``).

    ``max_abs_error``: max over the grid of ``|g_ad − g_an|`` (both components).
    ``max_rel_error``: max of ``‖g_ad − g_an‖₂ / ‖g_an‖₂`` (points where ``g_an = 0`` use
    the dtype's ``tiny`` as denominator). ``worst``: the grid point of the largest relative error.
    """

    max_abs_error: float
    max_rel_error: float
    worst: Params
    autodiff: Params
    analytic: Params


def grad_check(problem: Problem, w_values, b_values) -> GradCheck:
    """Compare ``jax.grad(problem.loss_fn)`` with ``problem.grad_fn`` at every grid point."""
    _two_params(problem, "grad_check")
    if problem.grad_fn is None:
        raise ArgumentError("problem", f"{problem.name!r} has no closed-form gradient to check jax.grad against")
    w = _grid_axis("w_values", w_values, problem.dtype)
    b = _grid_axis("b_values", b_values, problem.dtype)
    rows = _rows_per_chunk(problem, b.shape[0])
    ad, an = engine.compiled_call(_on_grid, "on_grid", ("grads", problem.loss_fn, problem.grad_fn, rows), problem.data, w, b)
    return verdict(w, b, ad, an)


def verdict(w, b, ad: Params, an: Params) -> GradCheck:
    """The :class:`GradCheck` of gradients ``ad`` (autodiff) and ``an`` (analytic), each
    ``Params`` of ``(len(w), len(b))`` arrays, computed in NumPy in their dtype."""
    ad, an = jax.tree.map(np.asarray, (ad, an))
    dw, db = ad.w - an.w, ad.b - an.b
    abs_err = np.maximum(np.abs(dw), np.abs(db))
    tiny = np.finfo(dw.dtype).tiny
    rel = np.hypot(dw, db) / np.maximum(np.hypot(an.w, an.b), tiny)
    i, j = np.unravel_index(int(np.argmax(rel)), rel.shape)
    return GradCheck(float(abs_err.max()), float(rel.max()), Params(float(w[i]), float(b[j])), ad, an)
