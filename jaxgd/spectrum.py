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

The curvature audit — estimators checked against the truth, whole model or one leaf (``leaf=``):
:func:`hutchinson_trace` and :func:`hutchpp_trace` (``tr(H)`` with a standard error),
:func:`slq_density` (stochastic Lanczos quadrature, smoothed by :func:`smooth_density`),
:func:`top_k` (:func:`top_eigenpairs` from a random start), the dense truth for small models
(:func:`dense_hessian`, :func:`dense_spectrum`: ``jax.hessian`` and ``eigh``), and :func:`audit`,
all of them against the truth at a few points of a run (:func:`run_points`: start, edge of
stability, end) in one compiled call. Figure: ``jaxgd.plots.audit_figs.density``.

Compiled once, reused: every function here is one compiled call per loss — the same function object
(a new ``lambda`` compiles anew), or a Problem's ``loss_fn``, its data an argument of the call —
shapes, dtypes and static arguments (``k``, ``max_iter``, counts, ``leaf``, chunk size); a second
direct call at another point reuses it. A Problem's HVPs (and dense Hessians) run over its data in
chunks of ``examples_per_chunk`` examples, a ``lax.fori_loop`` summing the chunks' weighted HVPs, so that
memory is one chunk's: by default :func:`default_chunk` (2²² numbers over the parameters, as the
planes batch their points), which leaves data of up to ``2²² / n`` examples in one piece; see
:func:`objective`.
"""

from __future__ import annotations

from functools import partial
import numbers
from typing import Any, Callable, NamedTuple

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np

from jaxgd import _checks
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.problems import Problem, loss_of

PyTree = Any


def hvp(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, v: PyTree) -> PyTree:
    """The Hessian-vector product ``H(params)·v``, a pytree like ``params`` (``v`` is one too).

    Forward-over-reverse: ``jax.jvp(jax.grad(f), (params,), (v,))[1]`` — about the cost of two
    gradients, memory of one.
    """
    return jax.jvp(jax.grad(loss_of(f)), (params,), (v,))[1]


# --- the loss the curvature functions differentiate: a function, or a Problem's loss over its data --

CHUNK_ELEMENTS = 2**22
"""The default chunk's budget, :data:`jaxgd.planes.MAX_ELEMENTS`'s: ``examples × parameters`` per chunk."""


def default_chunk(m: int, n: int, max_elements: int = CHUNK_ELEMENTS) -> int:
    """The default examples per chunk for ``m`` examples and ``n`` parameters, as the planes batch their
    points (:func:`jaxgd.planes.batch_points`): ``max(1, max_elements // n)``, at most ``m`` (then the
    data go in one piece). 2²² numbers: a 3,466-parameter MLP takes 1,210 examples per chunk, and data of
    up to that many examples go in one piece. A chunk's memory grows with its examples (the activations
    of the forward pass and its tangents, and the backward pass's), not with ``m``."""
    return max(1, min(int(m), int(max_elements) // max(1, int(n))))


class Objective(NamedTuple):
    """A loss as the curvature functions differentiate it: a hashable static argument of their compiled
    calls. ``fn``: a function ``params -> scalar`` (``batched`` False), or a Problem's
    ``loss_fn(params, data, mask)`` (``batched`` True; the data are passed apart, traced), over the data
    in one piece (``chunk`` None) or in chunks of ``chunk`` examples (see :func:`objective`)."""

    fn: Callable
    batched: bool = False
    chunk: int | None = None


def objective(f: Problem | Callable[[PyTree], jax.Array], params: PyTree,
              examples_per_chunk: int | None = None) -> tuple[Objective, Any]:
    """``(Objective, data)`` for a loss given to a curvature function: a :class:`~jaxgd.Problem`'s loss
    on its data (its ``loss_fn``, the data an argument: two problems of one ``loss_fn`` and data of one
    shape share a compiled call), or a function ``params -> scalar`` as it is (data None).

    ``examples_per_chunk``: None for the default rule (:func:`default_chunk` of the problem's
    ``m`` examples and the ``n`` parameters of ``params``), or an integer ≥ 1. Fewer than ``m``: the
    loss, its gradients and its HVPs are sums over ``ceil(m / c)`` chunks of ``c`` consecutive examples,
    chunk ``i`` weighted by its share of the examples (``loss_fn`` is the masked mean over a chunk:
    the sum is the mean over all ``m``, equal to the one-piece value to rounding). The last chunk is
    the last ``c`` examples, the ones an earlier chunk had masked off, so every example counts once
    and no padding is ever evaluated. A loss that is not a mean over its examples (a ``batched=True``
    loss that looks at the whole batch) changes with the chunks. A bare function cannot be cut into
    chunks (it holds its data itself): ``examples_per_chunk`` applies to a Problem only."""
    if isinstance(f, Problem):
        if f.data is None:
            if examples_per_chunk is not None:
                raise ArgumentError("examples_per_chunk", f"does not apply to problem {f.name!r}, which has no data")
            return Objective(f.full_loss), None
        m = f.num_examples
        if examples_per_chunk is None:
            c = default_chunk(m, sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params)))
        else:
            c = _checks.check_int("examples_per_chunk", examples_per_chunk, 1)
        return Objective(f.loss_fn, True, None if c >= m else c), f.data
    f = loss_of(f)
    if examples_per_chunk is not None:
        raise ArgumentError("examples_per_chunk", "applies to a jaxgd.Problem only: a function params -> scalar "
                                                  "holds its data itself and cannot be cut into chunks")
    return Objective(f), None



def _over_data(obj: Objective, data, g):
    """``g(batch, mask)`` (any pytree of arrays) over the data: ``g(data, None)`` in one piece, or
    ``Σ_i (c_i / m)·g(chunk_i, mask_i)`` in a ``lax.fori_loop`` over the chunks (``c_i`` the examples
    chunk ``i`` counts: the memory of one chunk's ``g``)."""
    if obj.chunk is None:
        return g(data, None)
    m, c = data[0].shape[0], obj.chunk

    def piece(i):
        first = i * c
        start = jnp.minimum(first, m - c)  # the last chunk: the last c examples, those before `first` masked
        mask = start + jnp.arange(c) >= first
        return tuple(jax.lax.dynamic_slice_in_dim(a, start, c) for a in data), mask

    def body(i, acc):
        batch, mask = piece(i)
        out = g(batch, mask)
        w = jnp.sum(mask) / m
        return jax.tree_util.tree_map(lambda a, o: a + w.astype(o.dtype) * o, acc, out)

    zero = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(lambda: g(*piece(0))))
    return jax.lax.fori_loop(0, -(-m // c), body, zero)


def _loss_on(obj: Objective, batch, mask):
    """``params -> scalar``: the loss on ``batch`` under ``mask`` (a bare function ignores both)."""
    return (lambda p: obj.fn(p, batch, mask)) if obj.batched else obj.fn


def _traced(*trees) -> bool:
    """True when a leaf of ``trees`` is a tracer: the call is inside someone's ``jit``/``scan``/``vmap``."""
    return any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(trees))


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


def _lanczos(matvec, x, v0, k: int, max_iter: int, tol):
    """The top-``k`` Ritz pairs of ``matvec`` (flat ``(n,)`` -> ``(n,)``) by :func:`top_eigenpairs`'s
    Lanczos from ``v0`` (any vector form :func:`_flat_start` takes): ``(theta (k,), Y (k, n), hvps,
    residuals (k,), converged)``."""
    n, dtype = x.shape[0], x.dtype
    m = min(int(max_iter), n)
    v = _flat_start(v0, n, dtype)
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
    return s["theta"], Y, s["j"], s["res"], s["done"]


def _top_eigenpairs(obj, data, params, v0, k, max_iter, tol):
    matvec, x, unravel = _matvec(obj, data, params, None)
    theta, Y, hvps, res, done = _lanczos(matvec, x, v0, k, max_iter, tol)
    return Eigenpairs(theta, jax.vmap(unravel)(Y), hvps, res, done)


_top_eigenpairs_jit = jax.jit(_top_eigenpairs, static_argnames=("obj", "k", "max_iter"))


def top_eigenpairs(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, v0: PyTree, *, k: int = 1,
                   max_iter: int = 100, tol: float = 1e-6, examples_per_chunk: int | None = None) -> Eigenpairs:
    """The ``k`` algebraically largest eigenvalues of ``H = ∇²f(params)`` and their eigenvectors.

    Lanczos with full reorthogonalisation (classical Gram-Schmidt, twice) from ``v0`` (a pytree
    like ``params`` or a flat ``(n,)`` vector, any scale; a zero ``v0`` starts from a fixed
    pseudo-random vector). Iteration ``j`` (0-based) costs one HVP and stops as soon as every top-``k``
    Ritz pair ``(θ_i, y_i)`` has residual ``‖H·y_i − θ_i·y_i‖ = β_j·|e_jᵀ s_i| ≤ tol·|θ_i|``
    (floored at ``10·eps`` times an estimate of ``‖H‖``), or after ``min(max_iter, n)`` HVPs. Eigenvalue errors are about
    ``residual² / gap``, so the default ``tol = 1e-6`` gives eigenvalues to ~1e-12 relative when
    the spectrum is well separated. In one piece ``H`` is linearised once (``jax.linearize`` of
    ``jax.grad``), then each HVP is one JVP; in chunks of the data (``examples_per_chunk``) each HVP
    is a ``lax.fori_loop`` of forward-over-reverse HVPs over the chunks (see :func:`objective`).

    Compiled once per loss (``f``: the same function object, or a Problem's ``loss_fn``), shapes,
    dtypes, ``k``, ``max_iter`` and chunk size, and reused by every later call (``tol`` is traced); the
    Problem's data are an argument of the compiled call, not constants in it. Called under a trace
    (``jit``, ``lax.scan``, ``vmap``: any of ``params``, ``v0``, ``tol`` or the data a tracer) it runs
    inline in the caller's program instead: carry the previous ``eigenvectors`` as the next ``v0``
    inside a scan; under ``vmap`` the loop runs until every batch member has converged, and each
    keeps its own ``num_hvps``. Memory: the ``(min(max_iter, n), n)`` Krylov buffer, plus one HVP's
    (with chunks: one chunk's).

    Like any Krylov method it sees only what ``v0`` touches: a ``v0`` in an invariant subspace (an
    exact eigenvector, say) stops at a *breakdown* with that subspace's top Ritz pairs, exact and
    reported converged; only if it holds fewer than ``k`` does Lanczos restart, from a fixed
    pseudo-random direction. A ``v0`` nearly orthogonal to the top eigenvector can converge to
    the next one (a warm start just after the top two eigenvalues cross may keep the old top),
    and a repeated eigenvalue is found once. A random ``v0`` avoids the first.
    Returns :class:`Eigenpairs`: eigenvalues ``(k,)`` descending; eigenvectors a pytree like
    ``params`` with a leading ``k`` axis on every leaf (unit norm flattened, sign arbitrary).
    """
    obj, data = objective(f, params, examples_per_chunk)
    n = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params))
    m = min(int(max_iter), n)
    if not 1 <= k <= m:
        raise ValueError(f"k: must be in 1..min(max_iter, n) = {m}, got {k}")
    run = _top_eigenpairs if _traced(data, params, v0, tol) else _top_eigenpairs_jit
    return run(obj, data, params, v0, k, max_iter, tol)


# --- the curvature audit: trace, spectral density, top-k and the dense truth ------------------
#
# Every estimator below takes ``leaf=``: None for the whole Hessian, or one leaf of ``params`` (its
# index in ``jax.tree_util.tree_leaves`` order, negative allowed, or its path as "layer0/w", the
# keys joined by "/") for that leaf's diagonal block of the Hessian — the Hessian of ``f`` as a
# function of that leaf alone, the other leaves held at ``params`` ("per layer"). ``n`` is then
# that leaf's size, and vectors are shaped like the leaf. Probes are Rademacher (±1) vectors: probe
# ``i`` of a call is ``jax.random.rademacher(jax.random.split(key, num)[i], (n,), dtype)``.


class TraceEstimate(NamedTuple):
    """A stochastic estimate of ``tr(H)`` (:func:`hutchinson_trace`, :func:`hutchpp_trace`)."""

    estimate: jax.Array  # () the estimate of tr(H)
    standard_error: jax.Array  # () its estimated standard error (sample std of the probes' terms / √probes)
    num_hvps: jax.Array  # () int32: Hessian-vector products used


class Density(NamedTuple):
    """Stochastic Lanczos quadrature (:func:`slq_density`): per probe ``p``, the Gauss quadrature
    rule ``Σ_j weights[p, j]·g(nodes[p, j]) ≈ zᵀg(H)z/‖z‖²`` (exact for polynomials ``g`` of degree
    ``< 2·steps``); the spectral density ``(1/n) Σ_i δ(t − λ_i)`` is estimated by the mean over
    probes of ``Σ_j weights[p, j]·δ(t − nodes[p, j])`` (:func:`smooth_density` smooths it)."""

    nodes: jax.Array  # (probes, steps) Ritz values of each probe's tridiagonal matrix T_p, descending
    weights: jax.Array  # (probes, steps) squared FIRST components of T_p's eigenvectors; each row sums to 1
    alpha: jax.Array  # (probes, steps) T_p's diagonal
    beta: jax.Array  # (probes, steps - 1) T_p's off-diagonal (0 where Lanczos broke down and restarted)
    num_hvps: jax.Array  # () int32: Hessian-vector products used (probes × steps)


def leaf_index(params: PyTree, leaf) -> int | None:
    """``leaf`` (None, an int index into ``jax.tree_util.tree_leaves(params)``, negative allowed, or a
    path string with the keys joined by "/", e.g. ``"layer0/w"``) as a non-negative index or None.
    The leaf's entries are ``flat[o:o + size]`` of ``ravel_pytree(params)``, ``o`` the sizes of the
    leaves before it."""
    if leaf is None:
        return None
    paths = [jax.tree_util.keystr(p, simple=True, separator="/")
             for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    if isinstance(leaf, str):
        if leaf not in paths:
            raise ArgumentError("leaf", f"must be one of the leaves {paths} (or an index), got {leaf!r}")
        return paths.index(leaf)
    if isinstance(leaf, (bool, np.bool_)) or not isinstance(leaf, (numbers.Integral, np.integer)):
        raise ArgumentTypeError("leaf", f"must be None, an int index or a path string such as {paths[0]!r}, "
                                        f"got {type(leaf).__name__}")
    if not -len(paths) <= int(leaf) < len(paths):
        raise ArgumentError("leaf", f"must be an index in [-{len(paths)}, {len(paths)}) (leaves {paths}), got {leaf}")
    return int(leaf) % len(paths)


def _restriction(params, leaf: int | None):
    """``(lift, x, unravel)``: ``lift(flat)`` is the parameters with the flat vector ``x`` (the whole
    parameters, or one leaf, the others held at ``params``) replaced; ``unravel`` maps a flat vector back
    to that vector's shape."""
    if leaf is None:
        x, unravel = ravel_pytree(params)
        return unravel, x, unravel
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shape = jnp.shape(leaves[leaf])
    x = jnp.ravel(leaves[leaf])
    return (lambda y: treedef.unflatten([*leaves[:leaf], y.reshape(shape), *leaves[leaf + 1:]])), x, \
        (lambda y: y.reshape(shape))


def _matvec(obj: Objective, data, params, leaf):
    """``(matvec, x, unravel)``: the HVP ``v -> H·v`` on flat vectors and the point. In one piece ``H`` is
    linearised once (each HVP one JVP); in chunks each HVP is a loop of ``jvp(grad)`` over the chunks."""
    lift, x, unravel = _restriction(params, leaf)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ArgumentTypeError("params", f"must be floating point, got {x.dtype}")
    if obj.chunk is None:
        return jax.linearize(jax.grad(lambda y: _loss_on(obj, data, None)(lift(y))), x)[1], x, unravel

    def matvec(v):
        return _over_data(obj, data, lambda batch, mask: jax.jvp(
            jax.grad(lambda y: _loss_on(obj, batch, mask)(lift(y))), (x,), (v,))[1])

    return matvec, x, unravel


def _rademacher(key, num: int, x):
    """``(num, n)``: probe ``i`` is ``rademacher(split(key, num)[i], (n,))`` in ``x``'s dtype."""
    return jax.vmap(lambda k: jax.random.rademacher(k, x.shape, x.dtype))(jax.random.split(key, num))


def _mean_and_se(terms):
    """The mean of ``terms`` ``(m,)`` and its standard error ``std(ddof=1)/√m``."""
    m = terms.shape[0]
    return jnp.mean(terms), jnp.std(terms, ddof=1) / jnp.sqrt(m)


def _check(f, params, leaf, chunk=None, **ints):
    """Checked ``(objective, data, leaf index, n)`` (see :func:`objective`; ``chunk`` its
    ``examples_per_chunk``); ``ints`` are ``name=(value, low, high or None)``."""
    obj, data = objective(f, params, chunk)
    leaf = leaf_index(params, leaf)
    leaves = jax.tree_util.tree_leaves(params)
    n = sum(int(np.size(a)) for a in (leaves if leaf is None else leaves[leaf:leaf + 1]))  # shapes only: no copy
    for name, (v, low, high) in ints.items():
        _checks.check_int(name, v, low, high)
    return obj, data, leaf, n


def _check_key(key):
    if not (isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()
                                            or key.dtype == jnp.uint32 and key.shape == (2,))):
        raise ArgumentTypeError("key", f"must be one JAX PRNG key (jax.random.key(seed)), got "
                                       f"{getattr(key, 'dtype', type(key).__name__)} {getattr(key, 'shape', '')}")


@partial(jax.jit, static_argnames=("obj", "num", "leaf"))
def _hutchinson(obj, data, params, key, num, leaf):
    matvec, x, _ = _matvec(obj, data, params, leaf)
    Z = _rademacher(key, num, x)
    est, se = _mean_and_se(jnp.sum(Z * jax.vmap(matvec)(Z), axis=1))
    return TraceEstimate(est, se, jnp.int32(num))


def hutchinson_trace(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, *,
                     num: int = 100, leaf=None, examples_per_chunk: int | None = None) -> TraceEstimate:
    """Hutchinson's estimate of ``tr(H)``, ``H = ∇²f(params)`` (or a leaf's block, see ``leaf``):
    ``(1/num) Σ_i z_iᵀ H z_i`` over ``num`` Rademacher probes (Hutchinson 1989), unbiased with
    variance ``2(‖H‖_F² − Σ_i H_ii²)/num``; ``standard_error`` is the probes' sample standard
    deviation over ``√num``. ``num`` HVPs (one linearisation, the probes vmapped). Jitted with
    ``f``, ``num`` and ``leaf`` static; vmappable over ``key``. Returns :class:`TraceEstimate`."""
    obj, data, leaf, _ = _check(f, params, leaf, examples_per_chunk, num=(num, 2, None))
    _check_key(key)
    return _hutchinson(obj, data, params, key, num, leaf)


@partial(jax.jit, static_argnames=("obj", "num", "leaf"))
def _hutchpp(obj, data, params, key, num, leaf):
    matvec, x, _ = _matvec(obj, data, params, leaf)
    hv = jax.vmap(matvec, in_axes=1, out_axes=1)  # H·M for (n, c) columns
    s = num // 3
    k_sketch, k_rest = jax.random.split(key)
    Q = jnp.linalg.qr(hv(_rademacher(k_sketch, s, x).T))[0]  # (n, min(n, s)), orthonormal columns
    exact = jnp.sum(Q * hv(Q))  # tr(QᵀHQ)
    G = _rademacher(k_rest, num - 2 * s, x).T
    G = G - Q @ (Q.T @ G)  # (I − QQᵀ)G
    rest, se = _mean_and_se(jnp.sum(G * hv(G), axis=0))
    return TraceEstimate(exact + rest, se, jnp.int32(s + Q.shape[1] + num - 2 * s))


def hutchpp_trace(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, *,
                  num: int = 102, leaf=None, examples_per_chunk: int | None = None) -> TraceEstimate:
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021, "Hutch++: Optimal Stochastic Trace
    Estimation"): with ``s = num // 3``, sketch ``Y = H·S`` for ``s`` Rademacher columns ``S``,
    ``Q = qr(Y)``, and estimate ``tr(H) = tr(QᵀHQ) + tr((I − QQᵀ)H(I − QQᵀ))`` by the first term
    exactly plus Hutchinson on the second with the remaining ``num − 2s`` Rademacher probes
    projected off ``Q``. ``standard_error`` is that of the residual (Hutchinson) part: the exact
    part is fixed given ``Q``. ``num`` HVPs in all (fewer if ``s > n``); error ``O(1/num)`` rather
    than Hutchinson's ``O(1/√num)`` when ``H``'s spectrum decays fast. Jitted with ``f``, ``num``
    and ``leaf`` static; vmappable over ``key``. Returns :class:`TraceEstimate`."""
    obj, data, leaf, _ = _check(f, params, leaf, examples_per_chunk, num=(num, 8, None))
    _check_key(key)
    return _hutchpp(obj, data, params, key, num, leaf)


def _lanczos_quadrature(matvec, z, steps: int):
    """``(nodes, weights, alpha, beta)`` of ``steps`` Lanczos iterations from ``z`` ``(n,)``: the
    eigenvalues ``θ`` of the tridiagonal ``T`` (descending) and the squared first components of its
    eigenvectors ``S[0, :]²`` (the Gauss rule of the measure ``Σ_i (u_iᵀz)²/‖z‖²·δ(t − λ_i)``)."""
    m, n = steps, z.shape[0]
    Q = jnp.zeros((m, n), z.dtype).at[0].set(z / jnp.linalg.norm(z))
    zeros = jnp.zeros(m, z.dtype)
    Q, alpha, off, _ = jax.lax.fori_loop(
        0, m, lambda j, c: _lanczos_step(matvec, *c, j)[:4], (Q, zeros, zeros, jnp.zeros((), z.dtype)))
    theta, S = _ritz(alpha, off, m - 1, m)  # all m Ritz pairs of T
    # The weights are the squared FIRST components, S[0, j]², one per eigenvector (column j): the
    # bug that PyHessian's density had from its torch.linalg.eig change (PR #18) until GitHub PR #23
    # (2024) squared the whole eigenvector matrix instead; its PyPI release (2021) predates both.
    return theta, S[0] ** 2, alpha, off[:-1]


@partial(jax.jit, static_argnames=("obj", "num_probes", "steps", "leaf"))
def _slq(obj, data, params, key, num_probes, steps, leaf):
    matvec, x, _ = _matvec(obj, data, params, leaf)
    nodes, weights, alpha, beta = jax.vmap(lambda z: _lanczos_quadrature(matvec, z, steps))(
        _rademacher(key, num_probes, x))
    return Density(nodes, weights, alpha, beta, jnp.int32(num_probes * steps))


def slq_density(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, *,
                num_probes: int = 10, lanczos_steps: int = 80, leaf=None,
                examples_per_chunk: int | None = None) -> Density:
    """Stochastic Lanczos quadrature of the Hessian's spectral density (Lin, Saad & Yang 2016;
    Ghorbani, Krishnan & Xiao 2019; PyHessian's ``density``): for each of ``num_probes``
    Rademacher probes ``z``, ``lanczos_steps`` iterations of Lanczos with full
    reorthogonalisation (:func:`top_eigenpairs`'s iteration) from ``z/‖z‖`` give a tridiagonal
    ``T``; its eigenvalues are the nodes and the squared first components of its eigenvectors the
    weights (each probe's sum to 1). ``lanczos_steps ≤ n``; ``num_probes × lanczos_steps`` HVPs.
    Moments: ``Σ_j w_j θ_j^p = zᵀH^p z/n`` exactly for ``p < 2·steps``, so the mean over probes
    of the first moment is Hutchinson's ``tr(H)/n``. Jitted with ``f``, the counts and ``leaf``
    static. Returns :class:`Density` (``(num_probes, lanczos_steps)`` arrays)."""
    obj, data, leaf, n = _check(f, params, leaf, examples_per_chunk, num_probes=(num_probes, 1, None),
                                lanczos_steps=(lanczos_steps, 1, None))
    if lanczos_steps > n:
        raise ArgumentError("lanczos_steps", f"must be at most the number of parameters n = {n}, got {lanczos_steps}")
    _check_key(key)
    return _slq(obj, data, params, key, num_probes, lanczos_steps, leaf)


def smooth_density(nodes, weights, grid, sigma) -> jax.Array:
    """The density ``φ(t) = (1/P) Σ_p Σ_j weights[p, j]·N(t; nodes[p, j], σ²)`` on ``grid`` ``(g,)``,
    for nodes and weights ``(..., m)`` (``P`` the number of rows: leading axes are averaged over;
    exact eigenvalues ``(n,)`` with ``weights = 1/n`` give the smoothed true density), the
    Gaussian-kernel smoothing of Ghorbani et al. (2019) and PyHessian. Integrates to 1 when each
    row's weights sum to 1. Returns ``(g,)``."""
    nodes, weights = jnp.asarray(nodes), jnp.asarray(weights)
    if nodes.shape != weights.shape or nodes.ndim == 0:
        raise ArgumentError("weights", f"must have the shape of nodes {nodes.shape}, got {weights.shape}")
    rows = nodes.size // nodes.shape[-1]
    z = (jnp.asarray(grid)[:, None] - jnp.ravel(nodes)[None, :]) / sigma
    return jnp.exp(-0.5 * z * z) @ jnp.ravel(weights) / (rows * sigma * jnp.sqrt(2 * jnp.pi))


@partial(jax.jit, static_argnames=("obj", "leaf"))
def _dense_hessian(obj, data, params, leaf):
    lift, x, _ = _restriction(params, leaf)
    return _over_data(obj, data, lambda batch, mask: jax.hessian(lambda y: _loss_on(obj, batch, mask)(lift(y)))(x))


def dense_hessian(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, *, leaf=None,
                  examples_per_chunk: int | None = None) -> jax.Array:
    """The dense ``(n, n)`` Hessian of ``f`` over ``ravel_pytree(params)`` (``jax.hessian``), or with
    ``leaf`` that leaf's diagonal block (``(size, size)``, the leaf raveled): the truth the
    estimators are checked against, for models of a few thousand parameters (n² numbers). Jitted
    with ``f`` and ``leaf`` static."""
    obj, data, leaf, _ = _check(f, params, leaf, examples_per_chunk)
    return _dense_hessian(obj, data, params, leaf)


@partial(jax.jit, static_argnames=("obj", "leaf"))
def _dense_spectrum(obj, data, params, leaf):
    lam, V = jnp.linalg.eigh(_dense_hessian(obj, data, params, leaf))
    return lam[::-1], V[:, ::-1]


def dense_spectrum(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, *,
                   leaf=None, examples_per_chunk: int | None = None) -> tuple[jax.Array, jax.Array]:
    """``(eigenvalues (n,), eigenvectors (n, n))`` of :func:`dense_hessian` by ``eigh``: eigenvalues
    descending, eigenvector ``i`` the column ``[:, i]`` (flat, ``ravel_pytree`` or raveled-leaf
    order; unit norm, sign arbitrary). Jitted with ``f`` and ``leaf`` static."""
    obj, data, leaf, _ = _check(f, params, leaf, examples_per_chunk)
    return _dense_spectrum(obj, data, params, leaf)


@partial(jax.jit, static_argnames=("obj", "k", "max_iter", "leaf"))
def _top_k(obj, data, params, key, k, max_iter, tol, leaf):
    matvec, x, unravel = _matvec(obj, data, params, leaf)
    theta, Y, hvps, res, done = _lanczos(matvec, x, jax.random.normal(key, x.shape, x.dtype), k, max_iter, tol)
    return Eigenpairs(theta, jax.vmap(unravel)(Y), hvps, res, done)


def top_k(f: Problem | Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, *, k: int = 5,
          max_iter: int = 60, tol: float = 1e-6, leaf=None, examples_per_chunk: int | None = None) -> Eigenpairs:
    """The ``k`` largest Hessian eigenpairs by :func:`top_eigenpairs` from a Gaussian start drawn
    with ``key`` (``jax.random.normal(key, (n,))``), of the whole Hessian or of one leaf's block
    (``leaf``: eigenvectors then shaped like that leaf, with a leading ``k`` axis). At most
    ``min(max_iter, n)`` HVPs. Jitted with ``f``, ``k``, ``max_iter`` and ``leaf`` static."""
    obj, data, leaf, n = _check(f, params, leaf, examples_per_chunk, k=(k, 1, None), max_iter=(max_iter, 1, None))
    if k > min(max_iter, n):
        raise ArgumentError("k", f"must be at most min(max_iter, n) = {min(max_iter, n)}, got {k}")
    _check_key(key)
    return _top_k(obj, data, params, key, k, max_iter, tol, leaf)


class Audit(NamedTuple):
    """The estimators against the dense truth at ``P`` points (:func:`audit`); ``n`` parameters
    (of the leaf audited), ``k`` top eigenvalues, SLQ with ``probes × steps``."""

    table: dict  # column name -> NumPy array with a leading P axis (see audit)
    eigenvalues: np.ndarray  # (P, n) exact, descending
    density: Density  # SLQ at each point: every field with a leading P axis


@partial(jax.jit, static_argnames=("obj", "k", "num", "num_probes", "steps", "max_iter", "leaf"))
def _audit(obj, data, points, keys, k, num, num_probes, steps, max_iter, tol, leaf):
    def one(params, key):
        kh, kp, ks, kt = jax.random.split(key, 4)
        lam = jnp.linalg.eigvalsh(_dense_hessian(obj, data, params, leaf))[::-1]  # no eigenvectors: a third of eigh's work
        h = _hutchinson(obj, data, params, kh, num, leaf)
        hp = _hutchpp(obj, data, params, kp, num, leaf)
        d = _slq(obj, data, params, ks, num_probes, steps, leaf)
        t = _top_k(obj, data, params, kt, k, max_iter, tol, leaf)
        moments = [_mean_and_se(jnp.sum(d.weights * d.nodes ** p, axis=1)) for p in (1, 2)]
        return dict(
            trace=jnp.sum(lam), hutchinson=h.estimate, hutchinson_se=h.standard_error,
            hutchpp=hp.estimate, hutchpp_se=hp.standard_error, trace_hvps=h.num_hvps,
            top=lam[:k], lanczos=t.eigenvalues, lanczos_hvps=t.num_hvps,
            top_rel_err=jnp.max(jnp.abs(t.eigenvalues - lam[:k]) / jnp.abs(lam[:k])),
            mean=jnp.mean(lam), slq_mean=moments[0][0], slq_mean_se=moments[0][1],
            mean_sq=jnp.mean(lam ** 2), slq_mean_sq=moments[1][0], slq_mean_sq_se=moments[1][1],
        ), lam, d

    return jax.lax.map(lambda pk: one(*pk), (points, keys))  # one point at a time: the memory of one


def audit(f: Problem | Callable[[PyTree], jax.Array], points: PyTree, key: jax.Array, *, k: int = 5,
          num: int = 99, num_probes: int = 10, lanczos_steps: int = 60, max_iter: int = 60, tol: float = 1e-6,
          leaf=None, examples_per_chunk: int | None = None) -> Audit:
    """Every estimator against the dense truth at each of ``P`` points (``points``: a pytree like the
    parameters with a leading ``P`` axis on every leaf, e.g. a run's ``params`` at a start, its
    first step past ``2/lr`` and its end; :func:`run_points` picks those), of the whole Hessian or
    of one leaf's block (``leaf``). One compiled call (the points in a ``lax.map``, the memory of one; point ``i`` uses
    ``split(key, P)[i]``, split in four: Hutchinson, Hutch++, SLQ, top-k).

    ``table`` columns, each with a leading ``P`` axis: ``trace`` (exact, Σλ), ``hutchinson`` and
    ``hutchinson_se``, ``hutchpp`` and ``hutchpp_se`` (``num`` HVPs each, ``trace_hvps``), ``top``
    ``(P, k)`` exact and ``lanczos`` ``(P, k)`` (:func:`top_k` with ``max_iter``, ``tol``; its HVPs
    ``lanczos_hvps`` and ``top_rel_err`` = max_i |θ_i − λ_i|/|λ_i|), ``mean`` = tr(H)/n and
    ``mean_sq`` = tr(H²)/n exact against the SLQ density's first two moments ``slq_mean``,
    ``slq_mean_sq`` (means over the probes) with their standard errors ``slq_mean_se``,
    ``slq_mean_sq_se``. ``examples_per_chunk``: see :func:`objective`. Returns :class:`Audit`."""
    loss_of(f)  # neither a Problem nor a function: refused first
    P = {np.shape(a)[0] if np.ndim(a) else None for a in jax.tree_util.tree_leaves(points)}
    if len(P) != 1 or None in P:
        raise ArgumentError("points", f"must be a pytree of parameters with one leading axis (the points) on every "
                                      f"leaf, got leading sizes {sorted(P, key=str)}")
    first = jax.tree_util.tree_map(lambda a: a[0], points)
    obj, data, leaf, n = _check(f, first, leaf, examples_per_chunk, k=(k, 1, None), num=(num, 8, None),
                                num_probes=(num_probes, 1, None), lanczos_steps=(lanczos_steps, 1, None),
                                max_iter=(max_iter, 1, None))
    for name, v, high in (("k", k, min(max_iter, n)), ("lanczos_steps", lanczos_steps, n)):
        if v > high:
            raise ArgumentError(name, f"must be at most {high} here (n = {n}), got {v}")
    _check_key(key)
    table, lam, d = _audit(obj, data, points, jax.random.split(key, P.pop()), k, num, num_probes, lanczos_steps,
                           max_iter, tol, leaf)
    return Audit({name: np.asarray(v) for name, v in table.items()}, np.asarray(lam),
                 Density(*(np.asarray(a) for a in d)))


def run_points(sharpness, lr: float) -> np.ndarray:
    """Indices into a run's ``T + 1`` points (``Trajectory.params``) ``[0, i, T]``: its start, its
    arrival at the edge of stability (Cohen et al. 2021) and its end. ``i`` is the first step whose
    recorded sharpness (``sharpness`` ``(T,)``, NaN where not measured, as ``Trajectory.sharpness``;
    entry ``i`` measured at point ``i``) is ``≥ 2/lr`` after one below ``2/lr`` (a run that starts
    above the limit and drops first, as gd often does, arrives later); the first ``≥ 2/lr`` if none
    was below. Raises if the sharpness never reaches ``2/lr``."""
    s = np.asarray(sharpness, dtype=float)
    if s.ndim != 1 or s.size == 0:
        raise ArgumentError("sharpness", f"must be a (T,) array of a run's sharpness, got shape {s.shape}")
    limit = 2 / _checks.check_positive_number("lr", lr)
    below = np.flatnonzero(s < limit)
    past = np.flatnonzero(s >= limit)
    after = past[past > below[0]] if below.size else past
    if after.size == 0:
        raise ArgumentError("sharpness", f"never reaches 2/lr = {limit:.4g}" + (" after dropping below it" if past.size else "")
                            + f" (max {np.nanmax(s):.4g})")
    return np.array([0, after[0], s.size])
