"""The engine: one optimizer step, and one whole run built from it.

Every run — :func:`jaxgd.run`, each run of :func:`jaxgd.sweep`, and a run scanned in chunks for
a progress bar — is the same pure function of a static configuration (:class:`Static`) and
traced numbers::

    one_run = finish ∘ advance ∘ start
    run     = jit(one_run)             sweep = jit(vmap(one_run))
    chunked = jit(start), then jit(advance) per chunk of blocks, then jit(finish)

``advance`` is a ``lax.scan`` over *blocks* (an epoch for minibatches, one step for full batch or
an explicit order) of a ``lax.scan`` over the block's steps, each step being :func:`step`. The
divergence rule is applied inside the scan, so ``final_only`` runs need no per-step arrays.

Parameters are any pytree of arrays (``Params(w, b)`` for the two-parameter problems); the loss is
``loss_fn(params, data, mask)`` with ``data`` a tuple of arrays whose leading axis is the example.
A tree of many leaves runs as one flat vector where that changes no number (:func:`flat`: the
loss a :class:`Flat`, unravelling it), cut back into the tree after the compiled call (:func:`unflat`).
With :attr:`Static.takes_key` the step's loss also gets a PRNG key, ``fold_in(Knobs.key, t)`` for
step ``t`` (the global index, so a chunked run sees the same keys); measurements of the loss
(the full-data loss, the sharpness) pass none. Without it the program is the one it always was.

The traced numbers of a run are its :class:`Knobs`: the optimizer's hyperparameters and, for a
sweep whose runs differ, the engine's own control — which member of a union of optimizers a run
uses (:func:`jaxgd.optim.union`) and its own step count (:attr:`Static.stop`: a run's steps past
its own count, or with an empty batch, change nothing; an order padded to the widest batch, or a
per-run :class:`~jaxgd.data.Draw`). :func:`jaxgd.sweep` stacks them, one column per run.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxgd import optim, trajio
from jaxgd.data import Draw, Order, epoch_order, order_key, varied_epoch_order
from jaxgd.model import Params
from jaxgd.spectrum import top_eigenpairs

DIVERGENCE_FACTOR = 1e6  # a run whose |loss| grows past this many times its start has diverged


class Trajectory(NamedTuple):
    """A run of ``T`` steps; in a sweep every array has a leading axis of ``R`` runs.

    params: the parameter pytree with a step axis of ``T+1`` before each leaf's own shape — the
      start first, the final point last (``Params`` of ``(T+1,)`` arrays for two parameters).
    loss: ``(T+1,)`` full-data loss at each of those points; with ``loss_every = k`` > 1 (asked
      for: the default is 1) only at the steps divisible by k and the last point, and NaN at every
      other — a value not computed, not a divergence.
    batch_loss: ``(T,)`` loss of the batch step t used, at ``params[t]``.
    grad_norm, update_norm: ``(T,)`` Euclidean norms (over all leaves) of step t's batch
      gradient and parameter change.
    diverged_at: int32 — the first index t at which ``params[t]`` or ``loss[t]`` is not finite,
      or ``|loss[t]|`` exceeds ``DIVERGENCE_FACTOR`` (10⁶) times ``max(|loss[0]|, 1)``; −1 if
      neither happens. Where ``loss[t]`` was not measured (``loss_every``) only ``params[t]`` counts. The values from there on are kept as computed (non-finite ones included).
    num_steps: int32 — ``T``.
    first_moment, second_moment: pytrees like params with a ``(T,)`` step axis — the optimizer's
      moment estimates after step t (momentum's velocity / Adam's m; RMSProp's s / Adam's v), or
      None where it keeps none.
    sharpness: ``(T,)`` — with ``sharpness_every = k``, the top eigenvalue of the full-data loss's
      Hessian at ``params[t]`` for every t divisible by k (Lanczos on Hessian-vector products,
      warm-started from the previous measurement's eigenvector), NaN at the other steps; else None.
      With ``sharpness_of="preconditioned"`` the top eigenvalue of P⁻¹H instead, P the diagonal
      preconditioner of step t's update (:func:`preconditioner`, from the state after step t).
    sharpness_hvps: ``(T,)`` int32 — the Hessian-vector products each measurement used (0 where
      none was made); None without sharpness.
    top_eigenvalues: ``(T, k)`` — with ``sharpness_k = k``, the ``k`` largest eigenvalues (descending)
      of the same matrix at the same steps (column 0 is ``sharpness``), NaN rows at the other steps;
      else None.
    reached_at: ``(K,)`` int32 — with K :attr:`Static.targets`, per target the first index t at which
      ``params[t]`` lies within ``target_tol`` of it (Euclidean, over all parameters); −1 if none does;
      else None.

    A sweep with ``final_only=True`` keeps only the last entry of every step axis (length 1):
    the final point and its loss, the last step's records, and the per-run ``diverged_at`` and
    ``num_steps``.
    """

    params: Any
    loss: jax.Array
    batch_loss: jax.Array
    grad_norm: jax.Array
    update_norm: jax.Array
    diverged_at: jax.Array
    num_steps: jax.Array
    first_moment: Any = None
    second_moment: Any = None
    sharpness: jax.Array | None = None
    sharpness_hvps: jax.Array | None = None
    reached_at: jax.Array | None = None
    top_eigenvalues: jax.Array | None = None

    @property
    def steps(self) -> int:
        """``T``, the number of update steps (the same for every run of a sweep)."""
        return int(np.max(np.asarray(self.num_steps)))

    @property
    def diverged(self):
        """True where the run left the finite numbers (or blew up)."""
        return self.diverged_at >= 0

    @property
    def final(self):
        """The last point: each leaf of ``params`` at the last index of its step axis."""
        axis = jnp.ndim(self.diverged_at)  # 0 for one run, 1 in a sweep
        return jax.tree.map(lambda a: jnp.take(a, -1, axis=axis), self.params)

    def model(self, step: int = -1, run: int | None = None, *, problem=None):
        """The model at ``params[step]`` (default ``-1``: the final point; with ``final_only``
        there is one point, ``0`` or ``-1``): for a problem made by an adapter
        (:func:`jaxgd.from_equinox`, :func:`~jaxgd.from_nnx`, :func:`~jaxgd.from_linen`) the user's
        own object — the Equinox module, the NNX module, Linen's variables dict — else the
        parameter pytree at that step. In a sweep ``run`` picks the run (required there, refused
        for one run). A trajectory read by :func:`load` lost what rebuilds the model: pass the
        ``problem`` it came from, whose ``init`` gives the structure."""
        from jaxgd._checks import ArgumentError, ArgumentTypeError, check_int

        sweep = jnp.ndim(self.diverged_at) == 1
        if sweep and run is None:
            raise ArgumentError("run", f"is required for a sweep's trajectory: which of its "
                                       f"{np.shape(self.diverged_at)[0]} runs")
        if not sweep and run is not None:
            raise ArgumentError("run", "is only for a sweep's trajectory; this is one run")
        names, values = (("run", "step"), (run, step)) if sweep else (("step",), (step,))
        lead = np.shape(jax.tree.leaves(self.params)[0])  # (R,) T+1 first
        at = tuple(check_int(name, v, -n, n - 1) for name, v, n in zip(names, values, lead))
        tree = jax.tree.map(lambda a: jnp.asarray(a[at]), self.params)
        if problem is not None:
            if not hasattr(problem, "init"):
                raise ArgumentTypeError("problem", f"must be the jaxgd.Problem the run came from, got "
                                                   f"{type(problem).__name__}")
            structure, leaves = jax.tree.structure(problem.init), jax.tree.leaves(tree)
            if structure.num_leaves != len(leaves):
                raise ArgumentError("problem", f"has {structure.num_leaves} parameter arrays, this trajectory "
                                               f"{len(leaves)}: not the problem it came from")
            tree = jax.tree.unflatten(structure, leaves)
        rebuild = getattr(type(tree), "__jaxgd_model__", None)
        return tree if rebuild is None else rebuild(tree)

    def save(self, path) -> None:
        """Write this trajectory (one run's or a sweep's) to the file ``path`` — the name as given,
        ``.npz`` by convention — for :func:`load`: every array (NaN and inf kept, each in its own
        dtype) and a JSON description of the tree (no pickle). The write is atomic (a temporary file
        renamed over ``path``); a folder is refused."""
        trajio.save_tree(self, path)


def load(path) -> Trajectory:
    """The :class:`Trajectory` saved by :meth:`Trajectory.save` at ``path``, read without pickle.

    Leaves come back as NumPy arrays with their dtypes and shapes; ``Trajectory``, ``Params``,
    dicts (an MLP's layers), lists, tuples and None fields as they were. Another NamedTuple comes
    back as a ``collections.namedtuple`` stand-in of the same name and fields, another pytree
    node (an Equinox module) as one with its attribute names as fields (see
    :func:`jaxgd.trajio.load_tree`): ``jax.tree.unflatten(jax.tree.structure(yours),
    jax.tree.leaves(loaded))`` rebuilds your type. A missing file, a file that is not a saved
    trajectory and one of a newer format version are each an :class:`~jaxgd.ArgumentError` in one
    line, naming ``path``.
    """
    return trajio.load_tree(path, known=(Trajectory, Params, Order))


class Static(NamedTuple):
    """What a compiled run is specialised on (hashable: a ``jit`` static argument).

    loss_fn: ``(params, data, mask) -> scalar``. kind: the optimizer (``optim.Spec.kind``), or
    the union of several (:func:`jaxgd.optim.union_kind`; each run's member in :attr:`Knobs.which`).
    batch_size: None for full batch. block_steps: steps per block. blocks: blocks per run.
    sampling: how orders drawn in the scan sample ("shuffle" or "replacement").
    final_only: keep only the last point and step (see :class:`Trajectory`).
    sharpness_every: measure the sharpness every this many steps (0: never), with at most
    sharpness_iters Lanczos iterations to a residual of sharpness_tol (relative), warm-started
    from the last measurement's eigenvector. sharpness_k: 0 to measure the top eigenvalue alone; k ≥ 1
    to measure the top k (``Trajectory.top_eigenvalues``), by Lanczos with k Ritz pairs warm-started
    from the sum of the last measurement's k Ritz vectors (see :func:`_sharpness`).
    sharpness_examples: None, or the indices (a tuple of ints) of the fixed subset of the examples whose
    loss the sharpness is measured on. sharpness_leaf: None, or ``(offset, size)`` of one leaf in the
    flattened parameters (``jax.tree.leaves`` order): the sharpness of that leaf's diagonal block of the
    Hessian, the other leaves held fixed (per layer).
    loss_every: compute the full-data loss at the points of steps divisible by this (and at the
    last point); NaN at the others. Between them the divergence rule sees only the parameters.
    stop: runs of different lengths in one sweep — a step leaves the run's point, state and count
    unchanged when its batch is empty (every mask entry False: past a :class:`~jaxgd.data.Draw`'s
    epochs or its batch size's steps) or, with :attr:`Knobs.steps` (per run), from that step on.
    targets, target_tol: points (tuples of the flattened parameters) whose first visits within
    ``target_tol`` each run records, one per point (``Trajectory.reached_at``); ``()`` for none.
    takes_key: the loss takes a PRNG key, ``loss_fn(params, batch, mask, key)``; the run's step
    ``t`` (its own index: see :func:`advance`) gets ``fold_in(knobs.key, t)`` (:attr:`Knobs.key`),
    every full-data measurement ``key=None``.
    sharpness_of: what the sharpness is the top eigenvalue of: ``"hessian"``, H; or
    ``"preconditioned"``, P⁻¹H with P the diagonal preconditioner of the step's update
    (:func:`preconditioner`; the identity for an optimizer without one).
    lanes: how a sweep lays its runs over the device (:func:`_many_runs`): 0, all of them vmapped
    side by side; ``k ≥ 1``, ``k`` at a time (``lax.map`` with ``batch_size=k``; 1: one run after
    another), inside the same compiled program. Ignored by a single run.
    """

    loss_fn: Callable
    kind: tuple
    batch_size: int | None
    block_steps: int
    blocks: int
    sampling: str = "shuffle"
    final_only: bool = False
    sharpness_every: int = 0
    sharpness_iters: int = 50
    sharpness_tol: float = 1e-4
    loss_every: int = 1
    stop: bool = False
    targets: tuple = ()
    target_tol: float = 0.0
    takes_key: bool = False
    sharpness_of: str = "hessian"
    lanes: int = 0
    sharpness_k: int = 0
    sharpness_examples: tuple | None = None
    sharpness_leaf: tuple | None = None


class Knobs(NamedTuple):
    """The traced numbers of one run (in a sweep, each with a leading axis of runs).

    hyper: the optimizer's hyperparameters ``{name: number}`` (``lr`` among them); for a union
    kind (:func:`jaxgd.optim.union_kind`) a tuple of such dicts, one per member.
    which: int32, the union member the run uses; None for a single optimizer.
    steps: int32, the run's own step count, with :attr:`Static.stop` (its later steps change
    nothing); None when every step runs (or an empty batch alone stops it).
    key: with :attr:`Static.takes_key`, the run's PRNG key (:func:`jaxgd.data.run_key` of its
    seed), from which step ``t``'s loss key is ``fold_in(key, t)``; else None.
    """

    hyper: Any
    which: Any = None
    steps: Any = None
    key: Any = None


class Record(NamedTuple):
    """What one step records (stacked over steps by ``lax.scan``)."""

    params: Any
    loss: jax.Array
    batch_loss: jax.Array
    grad_norm: jax.Array
    update_norm: jax.Array
    first_moment: Any
    second_moment: Any
    sharpness: jax.Array | None = None
    sharpness_hvps: jax.Array | None = None
    top_eigenvalues: jax.Array | None = None


class Carry(NamedTuple):
    """The state between steps: the point, the optimizer state, the starting loss, the first
    divergent index so far (−1), the step count, (``final_only``) the last step's record, and
    (with sharpness) the last top eigenvector, flat ``(n,)`` (with ``sharpness_k = k``, the last k Ritz
    vectors ``(k, n)``; zeros before the first; for a preconditioned sharpness, of
    ``diag(d)·H·diag(d)``: see :func:`_sharpness`)."""

    params: Any
    opt_state: Any
    loss0: jax.Array
    diverged_at: jax.Array
    t: jax.Array
    last: Record | None
    vec: jax.Array | None = None
    reached: jax.Array | None = None


FLAT_LEAVES = 16
"""A run whose parameters have at least this many leaves runs on one flat vector (see :func:`flat`)."""
ELEMENTWISE = ("gd", "momentum", "nesterov", "rmsprop", "adam", "newton")
"""The built-in optimizers whose numbers do not depend on how the parameters are cut into leaves
(each acts elementwise; newton ravels them itself)."""


class Flat(NamedTuple):
    """A loss on the parameters raveled into one vector ``(n,)`` — each leaf of ``shapes`` flattened
    (C order) and concatenated in ``jax.tree.leaves`` order, all of one dtype:
    ``Flat(loss_fn, ...)(v, *rest) = loss_fn(unravel(v), *rest)``. Hashable, as a :class:`Static`'s
    ``loss_fn`` must be."""

    loss_fn: Callable
    treedef: Any
    shapes: tuple

    def __call__(self, v, *rest):
        return self.loss_fn(self.unravel(v), *rest)

    def unravel(self, v):
        """The pytree of the vector ``v`` ``(n,)`` (traced). Each run of consecutive leaves of one
        shape is cut as one block and unstacked (``lax.unstack``), so the program, and its
        gradient, hold a few operations per shape, not one per leaf."""
        runs = [(s, len(list(g))) for s, g in itertools.groupby(self.shapes)]
        sizes = [k * math.prod(s) for s, k in runs]
        leaves = []
        for part, (s, k) in zip(jnp.split(v, np.cumsum(sizes)[:-1].tolist()), runs):
            leaves += [part.reshape(s)] if k == 1 else jax.lax.unstack(part.reshape(k, *s))
        return self.treedef.unflatten(leaves)

    def unravel_host(self, a):
        """The pytree of the host vectors ``a`` ``(..., n)``, each leaf ``(..., *shape)``, as NumPy views
        (a run of leaves of one shape cut as one block, its views taken at C speed)."""
        a, at, leaves = np.asarray(a), 0, []
        lead = a.shape[:-1]
        for s, k in ((s, len(list(g))) for s, g in itertools.groupby(self.shapes)):
            size = k * math.prod(s)
            block = a[..., at:at + size].reshape(*lead, k, *s)
            leaves += list(np.moveaxis(block, len(lead), 0))
            at += size
        return self.treedef.unflatten(leaves)


def _elementwise(kind: tuple) -> bool:
    if kind[0] == optim.UNION:
        return all(map(_elementwise, kind[1]))
    return isinstance(kind[0], str) and kind[0] in ELEMENTWISE


def flat(static: Static, init, runs: int = 0):
    """``(static, init)`` for the compiled run: its loss on one flat vector (:class:`Flat`) and
    ``init`` raveled on the host (``(n,)``, or ``(R, n)`` with ``runs=1`` for a sweep's leading
    axis of runs) where that changes no number and saves work; else both as they are.

    Each leaf of a tree costs the compiled program its own operations (the update, the norms, the
    checks, the scan's carry, and above all one output per recorded leaf, each its own kernel for
    XLA to compile): a tree of 1,000 scalars took a minute to compile where one vector of 1,000
    took a second. On one vector the program no longer grows with the leaves; the loss gets them
    back by slicing inside it, and :func:`unflat` cuts the trajectory back into the tree on the host
    (NumPy arrays, as a sweep's always are).

    The rule: at least :data:`FLAT_LEAVES` leaves, all of one dtype (one vector would promote
    mixed dtypes), and an optimizer of :data:`ELEMENTWISE` (in a union, every member). A user's
    optimizer (a factory, a built transformation, ``"optax:NAME"``) and lbfgs keep the tree:
    they may depend on it (``optax.masked``, ``multi_transform``, the per-leaf norms of lars and
    lamb), or sum over leaves in their own order. Smaller trees keep the programs they always had."""
    leaves = jax.tree.leaves(init)
    if isinstance(static.loss_fn, Flat) or len(leaves) < FLAT_LEAVES or not _elementwise(static.kind):
        return static, init
    global _RAVELED
    last = _RAVELED  # one read: threads may replace it
    if last[0] is init and last[1] == runs:  # the same start again (Problem.checked_init): raveled once
        treedef, shapes, vec = last[2:]
    else:
        if len({np.dtype(a.dtype) if hasattr(a, "dtype") else np.asarray(a).dtype for a in leaves}) != 1:
            return static, init
        treedef, shapes = jax.tree.structure(init), tuple(tuple(np.shape(a)[runs:]) for a in leaves)
        lead = np.shape(leaves[0])[:runs]
        vec = np.concatenate([np.asarray(a).reshape(*lead, -1) for a in leaves], axis=-1)
        vec.flags.writeable = False
        if vec.size <= RAVEL_CACHE:
            _RAVELED = (init, runs, treedef, shapes, vec)
    return static._replace(loss_fn=Flat(static.loss_fn, treedef, shapes)), vec


RAVEL_CACHE = 2**20
""":func:`flat` keeps its last raveled start (a tree of jax arrays, which do not change) up to this many
numbers: a run from a problem's own start (:meth:`jaxgd.Problem.checked_init`, one tree per problem)
ravels it once. Past it the copy costs more than the leaves' overhead, and a big start is not held
beyond its problem."""
_RAVELED = (None, 0)  # (start tree, runs, treedef, shapes, host vector)


def unflat(static: Static, t: "Trajectory") -> "Trajectory":
    """A trajectory of a :func:`flat` run with its points and moments cut back into the run's tree,
    each leaf a NumPy view of the host copy (one array per leaf made on the device would cost a
    dispatch each, or a program with one output per leaf); any other trajectory as it is."""
    if not isinstance(static.loss_fn, Flat):
        return t
    cut = lambda a: None if a is None else static.loss_fn.unravel_host(a)
    return t._replace(params=cut(t.params), first_moment=cut(t.first_moment), second_moment=cut(t.second_moment))


def norm(tree) -> jax.Array:
    """The Euclidean norm over all leaves of a pytree."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in jax.tree.leaves(tree)))


def _finite(tree) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(tree)]))


def _bad(loss, params, loss0) -> jax.Array:
    """The divergence rule for one point: not finite, or ``|loss| > 10⁶ · max(|loss0|, 1)``."""
    blown = jnp.abs(loss) > DIVERGENCE_FACTOR * jnp.maximum(jnp.abs(loss0), 1)
    return ~(jnp.isfinite(loss) & _finite(params)) | blown


def step(loss_fn, tx, data, params, opt_state, xs, measure=None, key=None):
    """One update. ``xs`` is ``(idx, mask)`` of shape ``(B,)``, or None for the full batch.
    ``measure``: None to compute the full-data loss, else a traced bool — compute it, or NaN.
    ``key``: the step's PRNG key for a loss that takes one (the batch loss and its gradient get it;
    the full-data loss does not), or None.

    Returns ``((new_params, new_state), Record)``; the record holds the point before the update.
    """
    if xs is None:
        batch, mask = data, None
    else:
        idx, mask = xs
        batch = tuple(a[idx] for a in data)
    extra = () if key is None else (key,)
    batch_loss, g = jax.value_and_grad(loss_fn)(params, batch, mask, *extra)
    if measure is None:
        full = loss_fn(params, data, None)
    else:  # a cond, not a select: the step index is the same for every run of a sweep
        full = jax.lax.cond(measure, lambda p: loss_fn(p, data, None).astype(batch_loss.dtype),
                            lambda p: jnp.full((), jnp.nan, batch_loss.dtype), params)
    if isinstance(tx, optax.GradientTransformationExtraArgs):
        value_fn = lambda p: loss_fn(p, batch, mask, *extra)
        updates, opt_state = tx.update(g, opt_state, params, value=batch_loss, grad=g, value_fn=value_fn)
    else:
        updates, opt_state = tx.update(g, opt_state, params)
    new = optax.apply_updates(params, updates)
    first, second = optim.moments(opt_state)
    return (new, opt_state), Record(params, full, batch_loss, norm(g), norm(updates), first, second)


def _sharpness(static: Static, data, params, vec, scale=None):
    """The top Hessian eigenvalue of the full-data loss at ``params``, from ``vec`` (flat ``(n,)``):
    ``(λ₁, its eigenvector (n,), HVPs)``. With :attr:`Static.sharpness_k` = k ≥ 1 the top k,
    ``(λ (k,), Ritz vectors (k, n), HVPs)``, from ``vec`` ``(k, n)``, the last measurement's k Ritz
    vectors: one Lanczos (:func:`~jaxgd.spectrum.top_eigenpairs` with ``k``; not block Lanczos) from
    their sum, which touches each of them, so that along a path it converges in a few HVPs more than
    ``k``. Like any warm start it follows the eigenvalues it holds: one that rises into the top k from
    below is found once Lanczos's Krylov space reaches it (within the residual test, not always at once).

    With ``scale`` (flat ``(n,)``, d = P^(−1/2)): the top eigenvalue(s) of ``diag(d)·H·diag(d)`` — the
    Hessian at y = 0 of ``y ↦ loss(params + d·y)`` — which has the eigenvalues of P⁻¹H; ``vec`` and
    the eigenvectors returned then live in y's coordinates. With :attr:`Static.sharpness_leaf`
    ``(o, s)`` the same of ``y ↦ loss(params + embed(d[o:o+s]·y))``, ``y`` ``(s,)`` placed at
    ``[o, o + s)`` of the flat parameters: the leaf's diagonal block. With
    :attr:`Static.sharpness_examples` the loss is that on those examples."""
    k = max(1, static.sharpness_k)
    v0 = vec if vec.ndim == 1 else jnp.sum(vec, axis=0)
    kw = dict(k=k, max_iter=static.sharpness_iters, tol=static.sharpness_tol)
    if static.sharpness_examples is not None:
        idx = np.asarray(static.sharpness_examples)
        data = tuple(a[idx] for a in data)
    if scale is None and static.sharpness_leaf is None:
        ep = top_eigenpairs(lambda p: static.loss_fn(p, data, None), params, v0, **kw)
        if not static.sharpness_k:
            top = ravel_pytree(jax.tree.map(lambda a: a[0], ep.eigenvectors))[0]
            return ep.eigenvalues[0], top, ep.num_hvps
        return ep.eigenvalues, jax.vmap(lambda e: ravel_pytree(e)[0])(ep.eigenvectors), ep.num_hvps
    x, unravel = ravel_pytree(params)
    if static.sharpness_leaf is None:
        move = lambda y: x + scale * y
    else:
        o, size = static.sharpness_leaf
        d = 1 if scale is None else scale[o:o + size]
        move = lambda y: jax.lax.dynamic_update_slice(x, x[o:o + size] + d * y, (o,))
    ep = top_eigenpairs(lambda y: static.loss_fn(unravel(move(y)), data, None), jnp.zeros_like(v0), v0, **kw)
    if not static.sharpness_k:
        return ep.eigenvalues[0], ep.eigenvectors[0], ep.num_hvps
    return ep.eigenvalues, ep.eigenvectors, ep.num_hvps


PRECONDITIONED = ("rmsprop", "adam")  # the built-in optimizers whose update has a diagonal preconditioner
UNPRECONDITIONED = ("gd", "momentum", "nesterov")  # those whose preconditioner is the identity


def preconditioner(kind: tuple, hyper: dict, state):
    """The diagonal preconditioner ``P`` of a built-in optimizer's update, flat ``(n,)`` (ravel order),
    from its state *after* the step (``state[0]`` the rule's) — None for the identity
    (:data:`UNPRECONDITIONED`) — such that the update is ``−lr·P⁻¹·u``, ``u`` the momentum-form
    state (:mod:`jaxgd.optim`):

    - rmsprop: ``u = g``, ``P = √s + ε``; stable on a quadratic iff λ₁(P⁻¹H) < 2/lr.
    - adam (count t ≥ 1): ``u = m``, ``P = (1 − β₁ᵗ)·(√v̂ + ε)`` with ``v̂ = v/(1 − β₂ᵗ)`` — the
      update ``(−lr·m̂)/(√v̂ + ε)`` with ``m̂ = m/(1 − β₁ᵗ)`` (Cohen et al. 2022's convention, bias
      corrections in P); with P frozen, EMA momentum on P⁻¹H: stable iff λ₁(P⁻¹H) < 2(1+β₁)/((1−β₁)·lr).
    """
    name, rule = kind[0], state[0]
    if name == "rmsprop":
        return ravel_pytree(jax.tree.map(lambda s: jnp.sqrt(s) + hyper["eps"], rule.s))[0]
    if name == "adam":
        t = rule.count.astype(jnp.result_type(hyper["b1"], float))
        c1, c2 = 1 - hyper["b1"] ** t, 1 - hyper["b2"] ** t
        return ravel_pytree(jax.tree.map(lambda v: c1 * (jnp.sqrt(v / c2) + hyper["eps"]), rule.nu))[0]
    return None


def _scale(static: Static, knobs: Knobs, state):
    """``d = P^(−1/2)`` (flat) of the run's update for ``sharpness_of="preconditioned"``: its
    optimizer's :func:`preconditioner`, in a union its member's (ones for a member without one);
    None for the Hessian's sharpness."""
    if static.sharpness_of != "preconditioned":
        return None
    if static.kind[0] != optim.UNION:
        p = preconditioner(static.kind, knobs.hyper, state)
        return None if p is None else jax.lax.rsqrt(p)
    parts = [preconditioner(k, h, s) for k, h, s in zip(static.kind[1], knobs.hyper, state.states)]
    like = next((p for p in parts if p is not None), None)
    if like is None:
        return None
    d = jnp.ones_like(like)
    for i, p in enumerate(parts):
        if p is not None:
            d = jnp.where(state.which == i, jax.lax.rsqrt(p), d)
    return d


def _step_key(static: Static, knobs: Knobs, t):
    """Step ``t``'s PRNG key, ``fold_in(knobs.key, t)``, with :attr:`Static.takes_key`; else None."""
    return jax.random.fold_in(knobs.key, t) if static.takes_key else None


def _update(static: Static, tx, data, c: Carry, t, xs, on=None, key=None, knobs: Knobs | None = None):
    """Step ``t`` of a run (``t`` the step's index in the scan, the same for every run of a sweep):
    the update, the divergence rule, and every ``sharpness_every`` steps the sharpness. ``on``
    (:attr:`Static.stop`): a traced bool, False for a step that changes nothing. ``key``: the
    step's PRNG key (:func:`_step_key`), or None. ``knobs``: the run's (for a preconditioned sharpness)."""
    measure = None if static.loss_every == 1 else t % static.loss_every == 0
    (params, state), rec = step(static.loss_fn, tx, data, c.params, c.opt_state, xs, measure, key)
    after = state  # the state after step t, whose preconditioner a preconditioned sharpness uses
    bad = _bad(rec.loss, rec.params, c.loss0)
    if measure is not None:
        bad = jnp.where(measure, bad, ~_finite(rec.params))
    div = jnp.where((c.diverged_at < 0) & bad, c.t, c.diverged_at)
    count = c.t + 1
    if on is not None:  # a skipped step: keep the point, the state and the count
        params, state, div = _keep(on, params, c.params), _keep(on, state, c.opt_state), _keep(on, div, c.diverged_at)
        count = c.t + on.astype(c.t.dtype)
    vec = c.vec
    if static.sharpness_every:
        nan = jnp.full(static.sharpness_k or (), jnp.nan, rec.loss.dtype)
        lam, vec, hvps = jax.lax.cond(
            t % static.sharpness_every == 0, lambda v: _sharpness(static, data, c.params, v, _scale(static, knobs, after)),
            lambda v: (nan, v, jnp.int32(0)), c.vec)
        if static.sharpness_k:
            rec = rec._replace(sharpness=lam[0], sharpness_hvps=hvps, top_eigenvalues=lam)
        else:
            rec = rec._replace(sharpness=lam, sharpness_hvps=hvps)
    last = rec if static.final_only else None
    if last is not None and on is not None:
        last = _keep(on, last, c.last)
    reached = c.reached
    if static.targets:
        reached = _reach(static, c.reached, rec.params, c.t, on)
    return Carry(params, state, c.loss0, div, count, last, vec, reached), (None if static.final_only else rec)


def _reach(static: Static, reached, params, t, on=None):
    """``reached`` ``(K,)`` with ``t`` for each target still at −1 that ``params`` lies within ``target_tol`` of."""
    flat = ravel_pytree(params)[0]
    targets = jnp.asarray(static.targets, flat.dtype)
    hit = jnp.sqrt(jnp.sum(jnp.square(flat[None] - targets), axis=1)) < static.target_tol
    if on is not None:
        hit = hit & on
    return jnp.where((reached < 0) & hit, t, reached)


def _keep(on, new, old):
    """``new`` where ``on``, else ``old`` (leaf by leaf)."""
    return jax.tree.map(lambda a, b: jnp.where(on, a, b), new, old)


def _tx(static: Static, knobs: Knobs):
    """The optimizer of a run: its kind built at its :class:`Knobs` (a union's at the run's member)."""
    if static.kind[0] == optim.UNION:
        return optim.union(static.kind[1], knobs.hyper, knobs.which)
    return optim.build(static.kind, knobs.hyper)


def start(static: Static, data, knobs: Knobs, init) -> Carry:
    """The carry before step 0."""
    tx = _tx(static, knobs)
    vec = None
    if static.sharpness_every:
        vec = jnp.zeros_like(ravel_pytree(init)[0])
        vec = vec if static.sharpness_leaf is None else vec[:static.sharpness_leaf[1]]
        vec = jnp.tile(vec, (static.sharpness_k, 1)) if static.sharpness_k else vec
    reached = jnp.full(len(static.targets), -1, jnp.int32) if static.targets else None
    carry = Carry(init, tx.init(init), static.loss_fn(init, data, None), jnp.int32(-1), jnp.int32(0), None, vec,
                  reached)
    if static.final_only:  # a zero record of the right shapes, replaced at every step
        shape = jax.eval_shape(lambda: _update(static, tx, data, carry, jnp.int32(0), _first_xs(static),
                                               key=_step_key(static, knobs, 0), knobs=knobs)[0].last)
        carry = carry._replace(last=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape))
    return carry


def _first_xs(static: Static):
    if static.batch_size is None:
        return None
    return jnp.zeros(static.batch_size, jnp.int32), jnp.ones(static.batch_size, bool)


def advance(static: Static, data, knobs: Knobs, carry: Carry, source, blocks):
    """Scan the blocks ``blocks`` (int array, e.g. ``arange(first, first + n)``) of one run.

    ``source`` says which examples each step sees: None (full batch); a PRNG key, from which
    block e's order is drawn by :func:`jaxgd.data.epoch_order` (``fold_in(key, e)``); or an
    :class:`Order` of shape ``(len(blocks), block_steps, B)``, the slice for these blocks.
    Returns the new carry and the records, stacked ``(len(blocks) · block_steps, ...)`` (None
    with ``final_only``). The step index ``t = e · block_steps + j`` is built from the scanned
    block and position, not carried, so under ``vmap`` it stays one number for all runs. A loss
    key (:attr:`Static.takes_key`) is folded from the run's own step index: ``t``, or with a
    :class:`Draw` ``e · ceil(m / batch) + j`` (its steps of an epoch come first in the block).
    """
    tx = _tx(static, knobs)
    m = None if static.batch_size is None else data[0].shape[0]

    def block(c, xs):
        e, order = xs
        if isinstance(source, Draw):  # per-run batch size, sampling and epochs
            order = varied_epoch_order(order_key(source.seed), e, m, static.batch_size, static.block_steps,
                                       source.batch, source.replace)
            order = Order(order.idx, order.mask & (e < source.epochs))
        elif static.batch_size is not None and order is None:
            order = epoch_order(source, e, m, static.batch_size, static.sampling)
        t0 = e * static.block_steps
        own = t0  # the run's own index of the block's first step, for its loss keys
        if static.takes_key and isinstance(source, Draw):
            own = e * ((m + source.batch - 1) // source.batch)

        def update(c, xs):
            j, o = xs
            on = None
            if static.stop:
                on = jnp.bool_(True) if knobs.steps is None else t0 + j < knobs.steps
                on = on if o is None else on & jnp.any(o[1])
            return _update(static, tx, data, c, t0 + j, o, on, _step_key(static, knobs, own + j), knobs)

        return jax.lax.scan(update, c, (jnp.arange(static.block_steps), order))

    orders = source if isinstance(source, Order) else None
    carry, recs = jax.lax.scan(block, carry, (blocks, orders))
    if recs is not None:
        recs = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), recs)  # (blocks, steps, ...) -> (T, ...)
    return carry, recs


def finish(static: Static, data, carry: Carry, recs: Record | None) -> Trajectory:
    """Append the final point and its loss, and apply the divergence rule to it."""
    last = static.loss_fn(carry.params, data, None)
    div = jnp.where((carry.diverged_at < 0) & _bad(last, carry.params, carry.loss0), carry.t, carry.diverged_at)
    if static.final_only:
        recs = jax.tree.map(lambda a: a[None], carry.last)
        params = jax.tree.map(lambda p: p[None], carry.params)
        loss = last[None]
    else:
        params = jax.tree.map(lambda r, p: jnp.concatenate([r, p[None]]), recs.params, carry.params)
        loss = jnp.concatenate([recs.loss, last[None]])
    reached = _reach(static, carry.reached, carry.params, carry.t) if static.targets else None
    return Trajectory(params, loss, recs.batch_loss, recs.grad_norm, recs.update_norm, div, carry.t,
                      recs.first_moment, recs.second_moment, recs.sharpness, recs.sharpness_hvps, reached,
                      recs.top_eigenvalues)


def one_run(static: Static, data, knobs: Knobs, init, source) -> Trajectory:
    """A whole run: ``finish(advance(start(...)))`` over all ``static.blocks`` blocks."""
    carry = start(static, data, knobs, init)
    carry, recs = advance(static, data, knobs, carry, source, jnp.arange(static.blocks))
    return finish(static, data, carry, recs)


def _many_runs(static: Static, data, knobs: Knobs, init, source) -> Trajectory:
    """``R`` runs (a leading axis on ``knobs``, ``init``, ``source``), laid out by
    :attr:`Static.lanes`: all vmapped, or ``lanes`` at a time by ``lax.map`` — where each lane's
    work is big, a CPU runs them as fast one after another, and a lane's Lanczos loop (sharpness)
    then stops when that lane has converged instead of running until the slowest one has."""
    one = partial(one_run, static, data)
    if static.lanes == 0:
        return jax.vmap(one)(knobs, init, source)
    return jax.lax.map(lambda a: one(*a), (knobs, init, source), batch_size=static.lanes if static.lanes > 1 else None)


run_compiled = jax.jit(one_run, static_argnums=0)
"""``jit(one_run)``: one run in one compiled call."""
sweep_compiled = jax.jit(_many_runs, static_argnums=0)
"""``jit(_many_runs)``: ``R`` runs (leading axis of ``knobs``, ``init``, ``source``) in one call, vmapped or
mapped as :attr:`Static.lanes` says."""

_start, _advance, _finish = (jax.jit(f, static_argnums=0) for f in (start, advance, finish))

_hook: list = []  # at most one function installed by an application (the jaxgd command's disk cache)


def set_compiled_call(fn: Callable | None) -> None:
    """Install ``fn(jitted, name, statics, *args)`` as the way the library calls its compiled programs
    (None: plainly). An application may use it for a disk cache; the library installs none."""
    _hook[:] = [] if fn is None else [fn]


def compiled_call(jitted, name: str, statics: tuple, *args):
    """``jitted(*statics, *args)`` — ``statics`` its leading static arguments, ``name`` a stable name
    for the program — through the installed hook, if any (:func:`set_compiled_call`)."""
    if _hook:
        return _hook[0](jitted, name, statics, *args)
    return jitted(*statics, *args)


def run_chunked(static: Static, data, knobs: Knobs, init, source, chunk_blocks: int, callback=None) -> Trajectory:
    """The same run as :data:`run_compiled`, scanned ``chunk_blocks`` blocks per compiled call,
    calling ``callback(steps_done, steps_total)`` after each is computed. Bit for bit the result of
    one scan."""
    total = static.blocks * static.block_steps
    carry = _start(static, data, knobs, init)
    recs = []
    for first in range(0, static.blocks, chunk_blocks):
        n = min(chunk_blocks, static.blocks - first)
        part = jax.tree.map(lambda a: a[first:first + n], source) if isinstance(source, Order) else source
        carry, rec = _advance(static, data, knobs, carry, part, jnp.arange(first, first + n))
        recs.append(rec)
        if callback is not None:  # when the chunk is computed, not when it is dispatched
            jax.block_until_ready(carry)
            callback((first + n) * static.block_steps, total)
    rec = None if static.final_only else jax.tree.map(lambda *a: jnp.concatenate(a), *recs)
    return _finish(static, data, carry, rec)
