"""jaxgd: see how gradient-descent optimizers move on a loss surface, in JAX.

Everything a user calls is here: problems (``notebook``, ``linear_regression``, the landscapes,
``model_problem`` for any JAX model, ``problem`` by name), ``run`` and ``sweep`` (one compiled
engine, :mod:`jaxgd.engine`), ``loss_surface`` and ``grad_check``, ``theory`` (Hessian facts),
the update rules, sample orders, and ``plots`` (figures, from the app layer :mod:`jaxgd.app`).

The library never changes JAX's configuration: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` before creating arrays (the CLI does so for
``--dtype float64``).
"""

from jaxgd import landscapes
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.curvature import Theory, hessian, theory
from jaxgd.data import Order, jax_order, notebook_data, numpy_order, sample_order
from jaxgd.engine import Trajectory
from jaxgd.landscapes import LANDSCAPES, beale, himmelblau, ill_conditioned, rastrigin, rosenbrock, saddle
from jaxgd.model import Params, analytic_grad, mse, predict
from jaxgd.optim import OPTIMIZERS, adam, gd, lbfgs, momentum, nesterov, newton, rmsprop
from jaxgd.problems import Problem, linear_regression, model_problem, notebook, problem
from jaxgd.runs import LRScan, RunConfig, check_run_args, divergence_boundary, lr_scan, run, run_checked, sweep
from jaxgd.surface import GradCheck, grad_check, loss_surface
from jaxgd.app import plots  # noqa: E402  (thin figure functions; plotly and matplotlib load lazily)

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "GradCheck",
    "LANDSCAPES",
    "LRScan",
    "OPTIMIZERS",
    "Order",
    "Params",
    "Problem",
    "RunConfig",
    "Theory",
    "Trajectory",
    "adam",
    "analytic_grad",
    "beale",
    "check_run_args",
    "divergence_boundary",
    "gd",
    "grad_check",
    "hessian",
    "himmelblau",
    "ill_conditioned",
    "jax_order",
    "landscapes",
    "lbfgs",
    "linear_regression",
    "loss_surface",
    "lr_scan",
    "model_problem",
    "momentum",
    "mse",
    "nesterov",
    "newton",
    "notebook",
    "notebook_data",
    "numpy_order",
    "plots",
    "predict",
    "problem",
    "rastrigin",
    "rmsprop",
    "rosenbrock",
    "run",
    "run_checked",
    "saddle",
    "sample_order",
    "sweep",
    "theory",
]
