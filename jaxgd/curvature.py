"""Curvature: the Hessian of a problem's loss, its eigenvalues, and the learning rates they
imply for gradient descent and heavy-ball momentum (:func:`theory`).

For the regression's MSE the Hessian is constant: ``H = 2·[[mean(x²), mean(x)], [mean(x), 1]]``.
Full-batch gd, ``θ ← θ − lr·∇L``, contracts along eigenvector i by ``|1 − lr·λᵢ|`` per step, so
it converges iff ``lr < 2/λmax`` (``stability_limit``) and fastest at ``lr = 2/(λmin + λmax)``
(``optimal_lr``), where the rate is ``(κ − 1)/(κ + 1)``. Heavy-ball momentum is fastest with
``β = ((√κ − 1)/(√κ + 1))²`` (``polyak_beta``) and classic step ``α = 4/(√λmax + √λmin)²``;
jaxgd's EMA momentum takes ``lr = α/(1 − β)`` for that step.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
from jax.flatten_util import ravel_pytree
import numpy as np

from jaxgd import _checks, engine
from jaxgd.problems import Problem


class Theory(NamedTuple):
    """Hessian facts at a point; for a problem of ``n`` parameters (in ``ravel_pytree`` order)."""

    hessian: np.ndarray  # (n, n); for Params, rows/columns (w, b)
    eigenvalues: np.ndarray  # (n,), ascending
    condition_number: float  # λmax / λmin (inf if λmin <= 0)
    stability_limit: float  # 2 / λmax: full-batch gd diverges above it
    optimal_lr: float  # 2 / (λmin + λmax)
    polyak_beta: float  # ((√κ − 1)/(√κ + 1))²
    polyak_lr: float  # jaxgd momentum lr for Polyak's step: 4/(√λmax + √λmin)² / (1 − β)
    at: object  # where the Hessian was taken (a pytree like the params)


def hessian(problem: Problem, at) -> np.ndarray:
    """The dense ``(n, n)`` Hessian of the full-data loss at ``at`` (a point like ``problem.init``;
    for two parameters also a pair ``(w, b)``), from ``jax.hessian`` of the flattened parameters
    (``ravel_pytree`` order). It holds n² numbers: for large models use Hessian-vector products."""
    return _dense_hessian(problem, _checks.check_params("at", at, problem.init, problem.dtype))


def _dense_hessian(problem: Problem, at) -> np.ndarray:

    return np.asarray(engine.compiled_call(_hessian_jit, "hessian", (problem.loss_fn,), at, problem.data), dtype=np.float64)


@partial(jax.jit, static_argnums=0)
def _hessian_jit(loss_fn, at, data):
    """One compiled call (op by op, ``jax.hessian`` dispatches hundreds of small operations)."""
    flat, unravel = ravel_pytree(at)
    return jax.hessian(lambda f: loss_fn(unravel(f), data, None))(flat)


def theory(problem: Problem, at=None) -> Theory:
    """Hessian facts at ``at`` (default: the known minimum, else the default start)."""
    at = _checks.check_params("at", problem.minimum if at is None and problem.minimum is not None
                              else problem.init if at is None else at, problem.init, problem.dtype)
    return theory_of(_dense_hessian(problem, at), at)


def theory_of(H, at) -> Theory:
    """:class:`Theory` from a dense Hessian ``H`` ``(n, n)`` taken at ``at``."""
    H = np.asarray(H, dtype=np.float64)
    lam = np.linalg.eigvalsh((H + H.T) / 2)
    lo, hi = float(lam[0]), float(lam[-1])
    kappa = hi / lo if lo > 0 else float("inf")
    if lo > 0:
        r = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
        beta = float(r**2)
        alpha = 4 / (np.sqrt(hi) + np.sqrt(lo)) ** 2
        polyak_lr = float(alpha / (1 - beta))
    else:
        beta, polyak_lr = float("nan"), float("nan")
    return Theory(H, lam, kappa, 2 / hi if hi > 0 else float("inf"),
                  2 / (lo + hi) if lo + hi > 0 else float("inf"), beta, polyak_lr, at)


def sharpness_limit(optimizer: str, lr: float, beta: float = 0.9, *, b1: float = 0.9,
                    preconditioned: bool = False) -> float | None:
    """The largest eigenvalue of the measured curvature at which an optimizer is stable on a
    quadratic, or None where there is no such simple bound.

    ``preconditioned=False``: of the Hessian H (``sharpness_of="hessian"``). gd, ``θ ← θ − lr·g``:
    the error along eigenvalue λ is multiplied by ``1 − lr·λ``, so it is
    stable iff ``λ < 2/lr``. Heavy-ball momentum in jaxgd's EMA form, ``v ← β·v + (1−β)·g``,
    ``θ ← θ − lr·v``, is classic heavy ball ``θ_{t+1} = θ_t − α·g_t + β·(θ_t − θ_{t−1})`` with
    ``α = lr·(1−β)``, whose characteristic roots on λ lie in the unit disc iff ``0 < α·λ < 2·(1+β)``
    (for 0 ≤ β < 1): stable iff ``λ < 2·(1+β) / (lr·(1−β))``. Adaptive methods: None.

    ``preconditioned=True``: of P⁻¹H (``sharpness_of="preconditioned"``), P the update's diagonal
    preconditioner (:func:`jaxgd.engine.preconditioner`; the identity for gd and momentum, whose
    limits are the above). With P held fixed, rmsprop is gd on P⁻¹H, ``2/lr``, and adam
    (``b1`` = β₁) EMA momentum on it, ``2·(1+β₁) / (lr·(1−β₁))`` (38/lr at β₁ = 0.9: Cohen et al.
    2022, "Adaptive Gradient Methods at the Edge of Stability").
    """
    if optimizer == "gd" or (preconditioned and optimizer == "rmsprop"):
        return 2 / lr
    if optimizer == "momentum":
        return 2 * (1 + beta) / (lr * (1 - beta))
    if preconditioned and optimizer == "adam":
        return 2 * (1 + b1) / (lr * (1 - b1))
    return None
