"""jaxgd: see how gradient-descent optimizers move on a loss surface, in JAX.

The library never changes JAX's configuration: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` before creating arrays (the CLI does so for
``--dtype float64``).
"""

from jaxgd import landscapes, plots
from jaxgd.landscapes import beale, himmelblau, ill_conditioned, rastrigin, rosenbrock, saddle
from jaxgd.data import Order, jax_order, notebook_data, numpy_order, sample_order
from jaxgd.model import Params, analytic_grad, mse, predict
from jaxgd.optim import OPTIMIZERS, adam, gd, momentum, nesterov, rmsprop
from jaxgd.problems import Problem, linear_regression, notebook
from jaxgd.surface import GradCheck, grad_check, loss_surface
from jaxgd.trajectory import Trajectory, run

__version__ = "0.1.0"

__all__ = [
    "GradCheck",
    "OPTIMIZERS",
    "Order",
    "Params",
    "Problem",
    "Trajectory",
    "adam",
    "beale",
    "analytic_grad",
    "gd",
    "grad_check",
    "himmelblau",
    "ill_conditioned",
    "jax_order",
    "landscapes",
    "linear_regression",
    "loss_surface",
    "momentum",
    "mse",
    "nesterov",
    "notebook",
    "notebook_data",
    "numpy_order",
    "plots",
    "predict",
    "rastrigin",
    "rmsprop",
    "rosenbrock",
    "run",
    "sample_order",
    "saddle",
]
