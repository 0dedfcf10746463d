"""The notebook's model: a line ``w * x + b`` fitted by mean squared error.

Conventions: ``x`` and ``y`` have shape ``(m,)``; an optional boolean ``mask`` of shape
``(m,)`` marks the real points of a padded minibatch, and every mean is taken over the
unmasked points only (the notebook's ragged last batch of 3 is a batch of 3, not of 8).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class Params(NamedTuple):
    """The two parameters, a pytree. Leaves are scalars, or arrays of equal shape (runs, steps)."""

    w: Array
    b: Array


def predict(params: Params, x: Array) -> Array:
    """``w * x + b``, shape of ``x``."""
    return params.w * x + params.b


def _mean(v: Array, mask: Array | None) -> Array:
    if mask is None:
        return jnp.sum(v) / v.shape[0]  # (jnp.mean compiles to slower code on the CPU here)
    mask = mask.astype(v.dtype)
    return jnp.sum(v * mask) / jnp.sum(mask)


def mse(params: Params, x: Array, y: Array, mask: Array | None = None) -> Array:
    """Mean squared error ``mean((w*x + b - y)**2)`` over the unmasked points; a scalar."""
    return _mean(jnp.square(predict(params, x) - y), mask)


def analytic_grad(params: Params, x: Array, y: Array, mask: Array | None = None) -> Params:
    """The notebook's closed-form gradient of :func:`mse`.

    With the error ``e = w*x + b - y``: ``dL/dw = 2·mean(e·x)`` and ``dL/db = 2·mean(e)``
    (the notebook's comment writes ``e·W``; its code, and this, use ``e·x``).
    """
    e = predict(params, x) - y
    return Params(w=2 * _mean(e * x, mask), b=2 * _mean(e, mask))
