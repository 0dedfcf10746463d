"""Hessian-vector products and the top Hessian eigenpairs of a loss, never forming the Hessian.

``f(params) -> scalar`` is any loss over a pytree of float arrays; a :class:`jaxgd.Problem` in its
place stands for its loss on the whole data (:attr:`~jaxgd.Problem.full_loss`). Vectors in parameter space are
pytrees like ``params``; internally they are flattened with ``jax.flatten_util.ravel_pytree``
(``n`` = total number of parameters) and all norms and inner products are those of the flat
vector. The top eigenvalue is the *sharpness* of Cohen et al. (2021), "Gradient Descent on Neural
Networks Typically Occurs at the Edge of Stability": full-batch gd is stable while it is below
``2/lr``.

:func:`top_eigenpairs` is Lanczos with full reorthogonalisation (Lanczos 1950; Golub & Van Loan,
"Matrix Computations", 4th ed., §10.1-10.3) in a fixed ``(max_iter, n)`` Krylov buffer and a
``lax.while_loop``, so it jits, runs inside ``lax.scan`` and vmaps. Warm-starting it from the
previous step's top eigenvector along an optimiser path makes it converge in a few HVPs.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp

from jaxgd.problems import Problem, loss_of

PyTree = Any


def hvp(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, v: PyTree) -> PyTree:
    """The Hessian-vector product ``H(params)·v``, a pytree like ``params`` (``v`` is one too).

    Forward-over-reverse: ``jax.jvp(jax.grad(f), (params,), (v,))[1]`` — about the cost of two
    gradients, memory of one.
    """
    return jax.jvp(jax.grad(loss_of(f)), (params,), (v,))[1]


class Eigenpairs(NamedTuple):
    """The top ``k`` Hessian eigenpairs found by :func:`top_eigenpairs`."""

    eigenvalues: jax.Array  # (k,) algebraically largest Ritz values, descending
    eigenvectors: PyTree  # like params, every leaf with a leading k axis; unit norm when flattened
    num_hvps: jax.Array  # () int32: Hessian-vector products used (= Lanczos iterations)
    residuals: jax.Array  # (k,) ‖H·y_i − θ_i·y_i‖ (Lanczos estimate β_j·|e_jᵀ s_i|)
    converged: jax.Array  # () bool: every residual ≤ tol·|θ_i| (or a numerically exact subspace)


def _flat_start(v0, n: int, dtype) -> jax.Array:
    """``v0`` as a flat ``(n,)`` vector: a bare ``(n,)`` array is taken as already flat."""
    if jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(v0)) and jnp.shape(v0) == (n,):
        return jnp.asarray(v0, dtype)
    flat, _ = ravel_pytree(v0)
    if flat.shape != (n,):
        raise ValueError(f"v0: must be a pytree like params or a flat vector of {n} numbers, "
                         f"got {flat.shape[0]} numbers")
    return flat.astype(dtype)


def _fresh_direction(Q: jax.Array, active: jax.Array, j: jax.Array) -> jax.Array:
    """A unit vector orthogonal to the active rows of ``Q`` (``(m, n)``, ``active`` ``(m,)`` bool):
    a fixed pseudo-random Gaussian vector (``fold_in(key(0), j)``: generic, so it meets every
    eigenvector, yet deterministic) orthogonalised twice against them. Used for a zero ``v0``
    and to restart after a breakdown (an exactly invariant Krylov subspace) before ``k`` Ritz
    pairs exist. Needs fewer than ``n`` active rows."""
    Qa = jnp.where(active[:, None], Q, 0)
    e = jax.random.normal(jax.random.fold_in(jax.random.key(0), j), Q.shape[1:], Q.dtype)
    for _ in range(2):
        e = e - Qa.T @ (Qa @ e)
    return e / jnp.maximum(jnp.linalg.norm(e), jnp.finfo(e.dtype).tiny)


def _lanczos_step(matvec, Q, alpha, off, norm, j):
    """Lanczos iteration ``j`` (0-based, one HVP) with full reorthogonalisation: from the Krylov
    buffer ``Q`` ``(m, n)`` (rows ``0..j`` filled), the diagonal ``alpha`` and off-diagonal ``off``
    ``(m,)`` so far, and ``norm`` (a running estimate of ‖H‖), returns them with row ``j + 1``,
    ``alpha[j]`` and ``off[j]`` set, and ``β_j`` (the residual's norm, before a breakdown zeroes
    ``off[j]``). At a breakdown (an invariant subspace) the next row is a fresh direction
    (:func:`_fresh_direction`) and ``off[j] = 0``, so the tridiagonal matrix decouples."""
    m = Q.shape[0]
    eps = jnp.finfo(Q.dtype).eps
    q = Q[j]
    w = matvec(q)
    a = q @ w
    prev = jnp.where(j > 0, off[j - 1], 0)
    w = w - a * q - prev * Q[j - 1]  # Q[-1] is a zero row at j = 0 (m > 1) and prev = 0
    for _ in range(2):
        w = w - Q.T @ (Q @ w)  # rows past j are still zero
    beta = jnp.linalg.norm(w)
    norm = jnp.maximum(norm, jnp.abs(a) + prev + beta)
    breakdown = beta <= 100 * eps * norm  # span(Q[:j+1]) is invariant to working precision
    active = jnp.arange(m) <= j
    q_next = jax.lax.cond(breakdown, lambda: _fresh_direction(Q, active, j + 1),
                          lambda: w / jnp.where(breakdown, 1, beta))
    return (Q.at[j + 1].set(q_next, mode="drop"), alpha.at[j].set(a), off.at[j].set(jnp.where(breakdown, 0, beta)),
            norm, beta)


def _ritz(alpha, off, j, k: int):
    """Top-``k`` eigenpairs of the leading ``(j+1) × (j+1)`` block of the tridiagonal matrix with
    diagonal ``alpha`` ``(m,)`` and off-diagonal ``off`` (``off[i]`` couples ``i`` and ``i+1``).

    The unused diagonal is set below the block's Gershgorin bound (distinct values, about ‖T‖
    away) and decoupled, so ``eigh`` of the padded ``m × m`` matrix puts every padded eigenvalue
    under every real Ritz value; the returned vectors ``(m, k)`` are zeroed outside the block.
    """
    m = alpha.shape[0]
    idx = jnp.arange(m)
    live, coupled = idx <= j, idx < j
    ramp = (1 + idx / m).astype(alpha.dtype)
    a = jnp.where(live, alpha, 0)
    b = jnp.where(coupled, jnp.abs(off), 0)
    b_prev = jnp.concatenate([jnp.zeros(1, b.dtype), b[:-1]])
    lower = jnp.min(jnp.where(live, a - b - b_prev, jnp.inf))
    scale = jnp.max(jnp.abs(a)) + 2 * jnp.max(b) + 1
    d = jnp.where(live, a, lower - scale * ramp)
    T = jnp.diag(d) + jnp.diag(b[:-1], 1) + jnp.diag(b[:-1], -1)
    theta, S = jnp.linalg.eigh(T)  # ascending
    theta, S = theta[::-1][:k], S[:, ::-1][:, :k]
    return theta, jnp.where(live[:, None], S, 0)


def top_eigenpairs(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, v0: PyTree, *, k: int = 1,
                   max_iter: int = 100, tol: float = 1e-6) -> Eigenpairs:
    """The ``k`` algebraically largest eigenvalues of ``H = ∇²f(params)`` and their eigenvectors.

    Lanczos with full reorthogonalisation (classical Gram-Schmidt, twice) from ``v0`` (a pytree
    like ``params`` or a flat ``(n,)`` vector, any scale; a zero ``v0`` starts from a fixed
    pseudo-random vector). Iteration ``j`` (0-based) costs one HVP and stops as soon as every top-``k``
    Ritz pair ``(θ_i, y_i)`` has residual ``‖H·y_i − θ_i·y_i‖ = β_j·|e_jᵀ s_i| ≤ tol·|θ_i|``
    (floored at ``10·eps`` times an estimate of ``‖H‖``), or after ``min(max_iter, n)`` HVPs. Eigenvalue errors are about
    ``residual² / gap``, so the default ``tol = 1e-6`` gives eigenvalues to ~1e-12 relative when
    the spectrum is well separated. ``H`` is linearised once (``jax.linearize`` of ``jax.grad``),
    then each HVP is one JVP.

    ``k``, ``max_iter`` are static; ``tol`` may be traced. Jittable, usable inside ``lax.scan``
    (carry the previous ``eigenvectors`` as the next ``v0``) and under ``vmap`` (the loop runs
    until every batch member has converged; each keeps its own ``num_hvps``). Memory: the
    ``(min(max_iter, n), n)`` Krylov buffer.

    Like any Krylov method it sees only what ``v0`` touches: a ``v0`` in an invariant subspace (an
    exact eigenvector, say) stops at a *breakdown* with that subspace's top Ritz pairs, exact and
    reported converged; only if it holds fewer than ``k`` does Lanczos restart, from a fixed
    pseudo-random direction. A ``v0`` nearly orthogonal to the top eigenvector can converge to
    the next one (a warm start just after the top two eigenvalues cross may keep the old top),
    and a repeated eigenvalue is found once. A random ``v0`` avoids the first.
    Returns :class:`Eigenpairs`: eigenvalues ``(k,)`` descending; eigenvectors a pytree like
    ``params`` with a leading ``k`` axis on every leaf (unit norm flattened, sign arbitrary).
    """
    f = loss_of(f)
    x, unravel = ravel_pytree(params)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"params: must be floating point, got {x.dtype}")
    n, dtype = x.shape[0], x.dtype
    m = min(int(max_iter), n)
    if not 1 <= k <= m:
        raise ValueError(f"k: must be in 1..min(max_iter, n) = {m}, got {k}")
    v = _flat_start(v0, n, dtype)
    _, matvec = jax.linearize(jax.grad(lambda y: f(unravel(y))), x)
    eps = jnp.finfo(dtype).eps
    tol = jnp.asarray(tol, dtype)
    nv = jnp.linalg.norm(v)
    Q = jnp.zeros((m, n), dtype)
    q0 = jax.lax.cond(nv > 0, lambda: v / jnp.where(nv > 0, nv, 1),
                      lambda: _fresh_direction(Q, jnp.zeros(m, bool), 0))
    init = dict(j=jnp.int32(0), Q=Q.at[0].set(q0), alpha=jnp.zeros(m, dtype), off=jnp.zeros(m, dtype),
                norm=jnp.zeros((), dtype), theta=jnp.zeros(k, dtype), S=jnp.zeros((m, k), dtype),
                res=jnp.full(k, jnp.inf, dtype), done=jnp.array(False))

    def step(s):
        j = s["j"]
        Q, alpha, off, norm, beta = _lanczos_step(matvec, s["Q"], s["alpha"], s["off"], s["norm"], j)
        theta, S = _ritz(alpha, off, j, k)
        res = beta * jnp.abs(S[j])
        ok = res <= jnp.maximum(tol * jnp.abs(theta), 10 * eps * norm)
        done = (j + 1 >= k) & jnp.all(ok)
        return dict(j=j + 1, Q=Q, alpha=alpha, off=off, norm=norm, theta=theta, S=S, res=res, done=done)

    s = jax.lax.while_loop(lambda s: ~s["done"] & (s["j"] < m), step, init)
    Y = s["S"].T @ s["Q"]  # (k, n)
    Y = Y / jnp.linalg.norm(Y, axis=1, keepdims=True)
    return Eigenpairs(s["theta"], jax.vmap(unravel)(Y), s["j"], s["res"], s["done"])
