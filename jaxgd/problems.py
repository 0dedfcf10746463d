"""Problems: a loss over two parameters, with its data, analytic gradient and plot defaults.

A :class:`Problem` is what :func:`jaxgd.loss_surface`, :func:`jaxgd.run` and
:func:`jaxgd.grad_check` take. Its ``loss_fn(params, data, mask)`` is a pure function of the
parameters, a batch of data (a tuple of ``(B,)`` arrays, or None for problems without data)
and an optional ``(B,)`` mask; ``grad_fn`` is its closed-form gradient with the same signature.
Both must be module-level functions: they are static arguments of the compiled scan, so a
new function object would recompile.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import _checks
from jaxgd.data import notebook_data
from jaxgd.model import Params, analytic_grad, mse

LossFn = Callable[[Params, "tuple[jax.Array, ...] | None", "jax.Array | None"], jax.Array]


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A loss landscape over ``(w, b)``.

    Attributes:
      name: short name, used in reports.
      loss_fn: ``(params, data, mask) -> scalar`` — mean loss over the unmasked batch.
      grad_fn: the analytic gradient of ``loss_fn`` (same signature, returns Params).
      data: tuple of ``(m,)`` arrays (for regression ``(x, y)``), or None.
      w_range, b_range: default plot ranges ``(lo, hi)`` of the two parameters.
      init: default starting point.
      minimum: the known global minimiser, or None.
      param_names: axis labels of the two parameters.
      minima: every known minimiser to mark on plots (by default just ``minimum``).
      quadratic: True when the loss is a quadratic, so its Hessian is the same everywhere.
    """

    name: str
    loss_fn: LossFn
    grad_fn: LossFn
    data: tuple | None
    w_range: tuple[float, float]
    b_range: tuple[float, float]
    init: Params
    minimum: Params | None = None
    param_names: tuple[str, str] = ("W", "b")
    minima: tuple = None  # type: ignore[assignment]
    quadratic: bool = False

    def __post_init__(self):
        if self.minima is None:
            object.__setattr__(self, "minima", () if self.minimum is None else (self.minimum,))

    @property
    def num_examples(self) -> int | None:
        """``m``, the number of data points, or None for a problem without data."""
        return None if self.data is None else int(self.data[0].shape[0])

    @property
    def dtype(self):
        """The working float dtype: the data's, or JAX's default float without data."""
        return _checks.check_dtype(None) if self.data is None else self.data[0].dtype

    def loss(self, params: Params, idx=None, mask=None) -> jax.Array:
        """Loss on the whole data (``idx`` None) or on the examples ``idx`` (shape ``(B,)``)."""
        return self.loss_fn(params, self.batch(idx), mask)

    def grad(self, params: Params, idx=None, mask=None) -> Params:
        """The analytic gradient, on the whole data or the examples ``idx``."""
        return self.grad_fn(params, self.batch(idx), mask)

    def batch(self, idx=None):
        if self.data is None or idx is None:
            return self.data
        return tuple(a[idx] for a in self.data)


def _mse_loss(params, data, mask):
    return mse(params, data[0], data[1], mask)


def _mse_grad(params, data, mask):
    return analytic_grad(params, data[0], data[1], mask)


def linear_regression(x, y, dtype=None, name: str = "linear_regression") -> Problem:
    """Fit ``y ≈ w·x + b`` by mean squared error.

    ``x``, ``y``: equal-length 1-D arrays of finite numbers. ``dtype``: float32 or float64;
    default JAX's default float (float64 when x64 is on). The known minimum is the least
    squares solution (computed in float64; the minimum-norm one when all x are equal).
    Plot ranges are the notebook's ``[-8, 8]``, widened where needed to keep the minimum and
    the default start ``(-4, -7)`` at least 1 unit inside.
    """
    xs, ys = _checks.check_data(x, y)
    dt = _checks.check_dtype(dtype)
    A = np.stack([xs, np.ones_like(xs)], axis=1)
    (w_star, b_star), *_ = np.linalg.lstsq(A, ys, rcond=None)
    init = Params(-4.0, -7.0)

    def rng(c, s):
        return (float(min(-8.0, c - 1, s - 1)), float(max(8.0, c + 1, s + 1)))

    return Problem(
        name=name,
        loss_fn=_mse_loss,
        grad_fn=_mse_grad,
        data=(jnp.asarray(xs, dt), jnp.asarray(ys, dt)),
        w_range=rng(w_star, init.w),
        b_range=rng(b_star, init.b),
        init=init,
        minimum=Params(float(w_star), float(b_star)),
        quadratic=True,
    )


def notebook(noise: float = 0.0, seed: int = 0, dtype=None) -> Problem:
    """The notebook's problem: :func:`linear_regression` on :func:`jaxgd.notebook_data`."""
    return linear_regression(*notebook_data(noise, seed, dtype), dtype=dtype, name="notebook")
