"""Data and sample orders: every order a run can see is built here.

The order in which examples are seen is data, built before the run and fed to the scan:
an :class:`Order` holds, for each of ``T`` steps, ``B`` example indices and a mask that is
False on the padding of a ragged last minibatch. The same order can then be given to every
optimizer, and a test can feed in the notebook's own ``np.random`` stream.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SAMPLINGS = ("shuffle", "replacement")
RNGS = ("jax", "numpy")

# Purposes folded into a seed (its JAX key, or the noise's NumPy seed), so that data noise, sample
# order and the loss's per-step keys never share a stream.
_NOISE, _ORDER, _STEP = 0, 1, 2


class Order(NamedTuple):
    """Which examples each step sees: ``idx`` int32 ``(T, B)``, ``mask`` bool ``(T, B)`` (NumPy or JAX arrays)."""

    idx: jax.Array
    mask: jax.Array


def notebook_data(noise: float = 0.0, seed: int = 0, dtype=None) -> tuple[jax.Array, jax.Array]:
    """The notebook's data: ``x = linspace(-5, 5, 51)``, ``y = 2x + 3``.

    With ``noise > 0``, ``y`` gets ``noise`` times i.i.d. standard normals added, drawn on the
    host by :func:`noise_normals` (NumPy, float64, then rounded to ``dtype``: reproducible, no
    compiled program, and a stream of its own). ``dtype`` defaults to JAX's default float
    (float64 under x64).
    Returns ``(x, y)``, each of shape ``(51,)``. A noise whose ``y`` overflows ``dtype`` is an
    ``ArgumentError`` named ``"noise"``.
    """
    from jaxgd._checks import check_dtype, check_nonneg_number, check_seed

    noise = check_nonneg_number("noise", noise)
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    x_np = np.linspace(-5, 5, num=51)  # NumPy's float64 points, exactly the notebook's
    x_np, y_np = x_np.astype(dtype), (2 * x_np + 3).astype(dtype)  # rounded to the dtype on the host
    if noise > 0:
        with np.errstate(over="ignore"):  # y + noise · N(0, 1): a product, then a sum
            y_np = y_np + np.asarray(noise, dtype) * noise_normals(seed, x_np.size).astype(dtype)
        if not np.all(np.isfinite(y_np)):
            from jaxgd._checks import ArgumentError

            raise ArgumentError("noise", f"{noise!r} is too large for {jnp.dtype(dtype).name}: the noisy y "
                                         "overflows; use a smaller noise")
    return jax.device_put(x_np), jax.device_put(y_np)


def noise_normals(seed: int, n: int) -> np.ndarray:
    """``n`` standard normals (float64) for the data noise of ``seed``:
    ``np.random.default_rng([0, seed]).standard_normal(n)``. The ``0`` sets this stream apart
    from the sample orders of the same seed (a JAX key, or ``np.random.RandomState(seed)``)."""
    return np.random.default_rng([_NOISE, int(seed)]).standard_normal(n)


def steps_per_epoch(m: int, batch_size: int) -> int:
    """``ceil(m / batch_size)``: the last minibatch of an epoch may be ragged."""
    return math.ceil(m / batch_size)


def order_key(seed) -> jax.Array:
    """The key a run's sample order is drawn from (``seed`` may be traced)."""
    return jax.random.fold_in(jax.random.key(seed), _ORDER)


def run_key(seed) -> jax.Array:
    """The key a run's per-step loss keys come from: ``fold_in(key(seed), 2)``, a stream apart
    from the sample order's (:func:`order_key`) and the noise's (``seed`` may be traced)."""
    return jax.random.fold_in(jax.random.key(seed), _STEP)


def step_key(seed, t) -> jax.Array:
    """The PRNG key step ``t`` (0-based, counted over the whole run) of a run with ``seed`` hands
    to a loss that takes one (``model_problem(..., takes_key=True)``): ``fold_in(run_key(seed), t)``.
    The same for every optimizer, batch size and sampling, and for a run scanned in chunks; the
    per-example form's example ``i`` of the batch gets ``fold_in(step_key(seed, t), i)``."""
    return jax.random.fold_in(run_key(seed), t)


def epoch_order(key: jax.Array, epoch, m: int, batch_size: int, sampling: str) -> Order:
    """One epoch of :func:`jax_order`: ``(ceil(m / batch_size), batch_size)``, from ``fold_in(key, epoch)``.

    ``epoch`` may be traced, so a scan can draw each epoch's order when it starts.
    """
    spe = steps_per_epoch(m, batch_size)
    k = jax.random.fold_in(key, epoch)
    if sampling == "replacement":
        idx = jax.random.randint(k, (spe, batch_size), 0, m, dtype=jnp.int32)
        return Order(idx, jnp.ones(idx.shape, bool))
    return _cut(jax.random.permutation(k, m)[None].astype(jnp.int32), spe, batch_size, jnp)


class Draw(NamedTuple):
    """How a run of a sweep whose runs differ in batch size draws its order inside the scan (one
    value per run): ``seed`` (uint32; the key is :func:`order_key` of it), ``batch`` (its batch size,
    ≤ the sweep's largest), ``epochs`` (its passes; later epochs are skipped) and ``replace``
    (sampling "replacement")."""

    seed: jax.Array
    batch: jax.Array
    epochs: jax.Array
    replace: jax.Array


def varied_epoch_order(key: jax.Array, epoch, m: int, width: int, steps: int, batch, replace) -> Order:
    """:func:`epoch_order` for a traced ``batch`` (≤ ``width``) and sampling, as ``(steps, width)``
    with ``steps ≥ ceil(m / batch)``: lanes ``< batch`` of the first ``ceil(m / batch)`` steps hold
    exactly the indices and mask of ``epoch_order(key, epoch, m, batch, sampling)``; every other
    entry is masked (index 0). (``jax.random``'s draws for a shape are a prefix of those for a
    longer one, so the ``m + width`` draws here begin with ``epoch_order``'s.)
    """
    k = jax.random.fold_in(key, epoch)
    j, lane = jnp.arange(steps)[:, None], jnp.arange(width)[None, :]
    pos = j * batch + lane
    on = lane < batch
    spe = (m + batch - 1) // batch
    draws = jax.random.randint(k, (m + width,), 0, m, dtype=jnp.int32)
    perm = jax.random.permutation(k, m).astype(jnp.int32)
    shuffle_mask = on & (pos < m)
    repl_mask = on & (j < spe)
    idx = jnp.where(replace, jnp.where(repl_mask, draws[jnp.minimum(pos, m + width - 1)], 0),
                    jnp.where(shuffle_mask, perm[jnp.minimum(pos, m - 1)], 0))
    return Order(idx, jnp.where(replace, repl_mask, shuffle_mask))


def jax_order(key: jax.Array, m: int, batch_size: int, epochs: int, sampling: str) -> Order:
    """A sample order from ``jax.random``; pure, so it can be vmapped over keys.

    ``shuffle``: each epoch a fresh permutation of ``range(m)`` cut into
    ``ceil(m / batch_size)`` consecutive batches, the last one padded and masked.
    ``replacement``: every step draws ``batch_size`` indices independently and uniformly.
    Epoch ``e`` draws from ``fold_in(key, e)`` (:func:`epoch_order`), so a longer run extends
    a shorter one's order.
    """
    per_epoch = jax.vmap(lambda e: epoch_order(key, e, m, batch_size, sampling))(jnp.arange(epochs))
    return Order(*(a.reshape(-1, batch_size) for a in per_epoch))


def numpy_order(seed: int, m: int, batch_size: int, epochs: int, sampling: str) -> Order:
    """The notebook's own stream: ``np.random.seed(seed)``, then per epoch
    ``np.random.permutation(m)`` (shuffle) or per draw ``np.random.randint(0, m)``
    (replacement, one call per index, as the notebook's SGD loop does).

    Uses a private ``RandomState(seed)`` (the same stream) and leaves NumPy's global one alone.
    """
    rs = np.random.RandomState(seed)
    spe = steps_per_epoch(m, batch_size)
    if sampling == "replacement":
        n = epochs * spe * batch_size
        # one call for n draws: the same stream as n calls (tests/test_run.py checks it against the notebook's loop)
        idx = rs.randint(0, m, size=n).astype(np.int32).reshape(-1, batch_size)
        return Order(idx, np.ones(idx.shape, bool))
    perms = np.stack([rs.permutation(m) for _ in range(epochs)]).astype(np.int32)
    return _cut(perms, spe, batch_size, np)


def _cut(perms, spe: int, batch_size: int, xp) -> Order:
    """``(epochs, m)`` permutations → an Order of ``(epochs * spe, batch_size)``, padding masked."""
    epochs, m = perms.shape
    idx = pad(perms, (epochs, spe * batch_size), xp)
    mask = pad(xp.ones((epochs, m), bool), (epochs, spe * batch_size), xp)
    return Order(idx.reshape(-1, batch_size), mask.reshape(-1, batch_size))


def pad(a, shape: tuple, xp=np):
    """``a`` padded at the end of each axis with zeros (False for a mask) to ``shape`` (NumPy or ``jnp``):
    the one way an order grows to a ragged last batch, a wider batch or more steps."""
    return xp.pad(a, [(0, s - n) for n, s in zip(a.shape, shape)])


def numpy_orders(m: int, seeds, sizes, epochs, replace) -> Order:
    """:func:`numpy_order` of ``R`` runs (1-D arrays ``seeds``, ``sizes``, ``epochs`` and bool
    ``replace``, one value per run), padded into ``(R, T, B)`` (T: the most steps, B: the largest
    batch; padding masked, a padded step empty). Each seed's stream is drawn once: its permutations
    (shuffle) do not depend on the batch size, and its draws (replacement) for a shorter run are
    the first of a longer one's."""
    seeds, sizes, epochs, replace = (np.asarray(a).reshape(-1) for a in (seeds, sizes, epochs, replace))
    steps = epochs * -(-m // sizes)
    R, T, B = len(sizes), int(steps.max()), int(sizes.max())
    idx, mask = np.zeros((R, T, B), np.int32), np.zeros((R, T, B), bool)

    def longest(sel, need):  # per distinct seed among ``sel``, the most of ``need``
        u, inv = np.unique(seeds[sel], return_inverse=True)
        most = np.zeros(len(u), np.int64)
        np.maximum.at(most, inv, need[sel])
        return zip(u.tolist(), most.tolist())

    rs = np.random.RandomState(0)  # reseeded per seed: the stream of RandomState(seed), made 100× faster
    perms, draws = {}, {}
    for s, ep in longest(~replace, epochs):
        rs.seed(s)
        perms[s] = np.stack([rs.permutation(m) for _ in range(ep)]).astype(np.int32)
    for s, n in longest(replace, steps * sizes):
        rs.seed(s)
        draws[s] = rs.randint(0, m, size=n).astype(np.int32)
    for bs, ep, rep in set(zip(sizes.tolist(), epochs.tolist(), replace.tolist())):
        rows = np.flatnonzero((sizes == bs) & (epochs == ep) & (replace == rep))
        n = ep * -(-m // bs)
        if rep:
            o = Order(np.stack([draws[s][:n * bs] for s in seeds[rows]]).reshape(-1, bs), np.ones((len(rows) * n, bs), bool))
        else:
            o = _cut(np.concatenate([perms[s][:ep] for s in seeds[rows]]), n // ep, bs, np)
        idx[rows], mask[rows] = (pad(a.reshape(len(rows), n, bs), (len(rows), T, B)) for a in o)
    return Order(idx, mask)


def sample_order(m: int, batch_size: int, epochs: int, sampling: str, rng: str, seed: int) -> Order:
    """The order of a minibatch run: from ``jax.random`` (rng="jax") or NumPy (rng="numpy")."""
    if rng == "numpy":
        return numpy_order(seed, m, batch_size, epochs, sampling)
    return jax_order(order_key(seed), m, batch_size, epochs, sampling)
