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

``jaxgd.plots`` (figures, above the library and below the app :mod:`jaxgd.app`) needs the ``app``
extra (``pip install 'jaxgd[app]'``: plotly, matplotlib): it is imported on first access, so
``import jaxgd`` loads nothing of it, of plotly or of the app. The engine's plumbing (``RunConfig``,
``check_run_args``, ``run_checked``: one checked record handed inward, for applications) lives in
:mod:`jaxgd.runs` and is not part of ``__all__``.

The library never changes JAX's configuration: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` before creating arrays (the CLI does so for
``--dtype float64``).
"""

import importlib

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


def __getattr__(name: str):
    """``jaxgd.plots``: the figures, imported on first access (the wall: the library never imports
    plotly, matplotlib or the app)."""
    if name == "plots":
        return importlib.import_module("jaxgd.plots")
    raise AttributeError(f"module 'jaxgd' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), "plots"])


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
