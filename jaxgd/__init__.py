"""jaxgd: see how gradient-descent optimizers move on a loss surface, in JAX.

Everything a user calls is here: problems (``notebook``, ``linear_regression``, the landscapes,
``model_problem`` for any JAX model, ``from_equinox``, ``from_nnx`` and ``from_linen`` for a
framework's model, ``problem`` by name), ``run`` and ``sweep`` (one compiled
engine, :mod:`jaxgd.engine`; ``progress=True`` for a bar), ``load`` (a trajectory written by
``Trajectory.save``), ``loss_surface`` and ``grad_check``, ``theory`` (Hessian facts),
the update rules, sample orders, planes through parameter space (``Plane``, ``random_plane``,
``pca_plane``, ``hessian_plane``, ``interpolate``, ``project``), and the modules ``planes``,
``models``, ``datasets``, ``spectrum`` and ``landscapes``. Functions that need a loss take a
``Problem`` (the plane functions also a bare ``f(params) -> scalar``).

``import jaxgd`` itself imports nothing heavy: each name is imported with its module on first use
(:func:`__getattr__`; JAX comes with the first), so the ``jaxgd`` command (:mod:`jaxgd.__main__`)
handles Ctrl-C before JAX loads. ``jaxgd.plots`` (figures, above the library and below the app
:mod:`jaxgd.app`) needs the ``app`` extra (``pip install 'jaxgd[app]'``: plotly, matplotlib): it is
imported on first access, and nothing of plotly or of the app before. The engine's plumbing
(``RunConfig``, ``check_run_args``, ``run_checked``: one checked record handed inward, for
applications) lives in :mod:`jaxgd.runs` and is not part of ``__all__``.

The library never changes JAX's configuration: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` before creating arrays (the CLI does so for
``--dtype float64``).
"""

import importlib
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:  # every public name and its module: read by type checkers, and by __getattr__ at run time
    from jaxgd import datasets, flows, landscapes, models, planes, spectrum
    from jaxgd._checks import ArgumentError, ArgumentTypeError
    from jaxgd.adapters import from_equinox, from_linen, from_nnx
    from jaxgd.curvature import Theory, hessian, theory
    from jaxgd.data import Order, jax_order, notebook_data, numpy_order, sample_order
    from jaxgd.engine import Trajectory, load
    from jaxgd.landscapes import LANDSCAPES, beale, himmelblau, ill_conditioned, rastrigin, rosenbrock, saddle
    from jaxgd.model import Params, analytic_grad, mse, predict
    from jaxgd.optim import OPTIMIZERS, adam, gd, lbfgs, momentum, nesterov, newton, rmsprop
    from jaxgd.planes import Plane, hessian_plane, interpolate, pca_plane, project, random_plane
    from jaxgd.catalog import problem
    from jaxgd.comparison import Comparison, compare
    from jaxgd.problems import Problem, linear_regression, model_problem, notebook
    from jaxgd.runs import LRScan, divergence_boundary, lr_scan, run, sweep
    from jaxgd.surface import GradCheck, grad_check, loss_surface
    from jaxgd.survey import Landscape, landscape

__version__ = "0.1.0"
_ORIGIN: dict[str, str] = {}  # public name -> the module that defines it, from the block above (on first use)


def __getattr__(name: str):
    """A public name, imported with its module on first access (``jaxgd.run`` imports :mod:`jaxgd.runs`,
    JAX included), so ``import jaxgd`` costs nothing and the ``jaxgd`` command can set up its signals
    first; or a module of the library (``jaxgd.engine``). ``jaxgd.plots``: the figures, imported on
    first access (the wall: the library never imports plotly, matplotlib or the app)."""
    if name == "plots":
        return importlib.import_module("jaxgd.plots")
    if not _ORIGIN:
        _ORIGIN.update(_origins())
    if name in _ORIGIN:
        value = getattr(importlib.import_module(_ORIGIN[name]), name)
    elif name.isidentifier() and not name.startswith("__") and os.path.isfile(os.path.join(__path__[0], f"{name}.py")):
        value = importlib.import_module(f"{__name__}.{name}")  # a module of the library (the app is a package)
    else:
        raise AttributeError(f"module 'jaxgd' has no attribute {name!r}")
    globals()[name] = value
    return value


def _origins() -> dict[str, str]:
    """``{public name: its module}`` read from the ``TYPE_CHECKING`` block of this file, as lazy_loader reads
    a stub (the modules there, ``from jaxgd import planes``, are found as modules of the library)."""
    import ast  # here: only when a name is first used

    with open(__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING")
    return {a.name: n.module for n in block.body if n.module != __name__ for a in n.names}


def __dir__():
    return sorted({*globals(), *__all__})


__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "Comparison",
    "GradCheck",
    "LANDSCAPES",
    "LRScan",
    "Landscape",
    "OPTIMIZERS",
    "Order",
    "Params",
    "Plane",
    "Problem",
    "Theory",
    "Trajectory",
    "adam",
    "analytic_grad",
    "beale",
    "compare",
    "datasets",
    "divergence_boundary",
    "flows",
    "from_equinox",
    "from_linen",
    "from_nnx",
    "gd",
    "grad_check",
    "hessian",
    "hessian_plane",
    "himmelblau",
    "ill_conditioned",
    "interpolate",
    "jax_order",
    "landscape",
    "landscapes",
    "lbfgs",
    "linear_regression",
    "load",
    "loss_surface",
    "lr_scan",
    "model_problem",
    "models",
    "momentum",
    "mse",
    "nesterov",
    "newton",
    "notebook",
    "notebook_data",
    "numpy_order",
    "pca_plane",
    "planes",
    "plots",
    "predict",
    "problem",
    "project",
    "random_plane",
    "rastrigin",
    "rmsprop",
    "rosenbrock",
    "run",
    "saddle",
    "sample_order",
    "spectrum",
    "sweep",
    "theory",
]
