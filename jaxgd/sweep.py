"""Sweeps: many runs — learning rates × hyperparameters × seeds × starting points — as one
jitted, vmapped scan, sharded over all JAX devices.

A sweep scans over epochs, and within an epoch over its steps. With ``rng="jax"`` each
run's epoch order is drawn inside the scan by :func:`jaxgd.data.epoch_order` — the very
function :func:`jaxgd.run` uses — so the orders are the same, and no ``(R, T, B)`` order array
is ever held. With ``final_only=True`` nothing per step is kept either, so 10⁴ runs × 10⁴ steps
fit in memory.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgd import _checks, optim
from jaxgd.data import RNGS, SAMPLINGS, Order, epoch_order, numpy_order, order_key, steps_per_epoch
from jaxgd.model import Params
from jaxgd.problems import Problem
from jaxgd.trajectory import _blown_up, _finish, _step


class SweepFinal(NamedTuple):
    """The end of each of R runs: ``params`` (Params of ``(R,)``), ``loss`` ``(R,)``, and
    ``diverged_at`` ``(R,)`` int32 (as in :class:`jaxgd.Trajectory`; −1 if the run stayed sane)."""

    params: Params
    loss: jax.Array
    diverged_at: jax.Array

    @property
    def diverged(self):
        return self.diverged_at >= 0


def _bad(loss, params, loss0):
    finite = jnp.isfinite(loss) & jnp.isfinite(params.w) & jnp.isfinite(params.b)
    return ~finite | _blown_up(loss, loss0)


def _one_run(loss_fn, kind, epochs, batch_size, sampling, final_only, data, hyper, init, source):
    """One run, epoch by epoch. ``source``: a key (rng jax), an Order ``(epochs, spe, B)``, or None."""
    tx = optim.build(kind, hyper)
    m = None if data is None else data[0].shape[0]
    loss0 = loss_fn(init, data, None)

    def epoch(carry, e):
        if batch_size is None:
            xs, length = None, 1
        elif isinstance(source, Order):
            xs, length = jax.tree.map(lambda a: a[e], source), None
        else:
            xs, length = epoch_order(source, e, m, batch_size, sampling), None

        def step(c, x):
            (params, state, div, t) = c
            (params, state), rec = _step(loss_fn, tx, data, (params, state), x)
            div = jnp.where((div < 0) & _bad(rec.loss, rec.params, loss0), t, div)
            return (params, state, div, t + 1), (None if final_only else rec)

        return jax.lax.scan(step, carry, xs, length=length)

    carry0 = (init, tx.init(init), jnp.int32(-1), jnp.int32(0))
    (params, _, div, t), recs = jax.lax.scan(epoch, carry0, jnp.arange(epochs))
    if final_only:
        loss = loss_fn(params, data, None)
        div = jnp.where((div < 0) & _bad(loss, params, loss0), t, div)
        return SweepFinal(params, loss, div)
    recs = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), recs)  # (epochs, spe, ...) -> (T, ...)
    return _finish(loss_fn, data, (params, None), recs)


@partial(jax.jit, static_argnames=("loss_fn", "kind", "epochs", "batch_size", "sampling", "final_only"))
def _sweep_compiled(loss_fn, kind, epochs, batch_size, sampling, final_only, data, hyper, init, source):
    one = partial(_one_run, loss_fn, kind, epochs, batch_size, sampling, final_only, data)
    return jax.vmap(one)(hyper, init, source)


def sweep(
    problem: Problem,
    optimizer: str = "gd",
    lr=0.05,
    epochs: int = 20,
    batch_size: int | None = None,
    init=None,
    sampling: str = "shuffle",
    rng: str = "jax",
    seed=0,
    final_only: bool = False,
    **hyper,
):
    """Run ``R`` configurations at once: the arguments of :func:`jaxgd.run`, but ``lr``,
    ``init`` (``(w, b)`` of arrays), ``seed`` and the hyperparameters may be 1-D arrays; they
    broadcast against each other to ``R`` runs.

    Returns a :class:`jaxgd.Trajectory` whose arrays have a leading axis of ``R``, or with
    ``final_only=True`` a :class:`SweepFinal` (final params, final loss, divergence step).
    Run ``i`` equals ``run`` with run ``i``'s arguments. On several JAX devices the runs are
    sharded over all of them (``R`` is padded to a multiple of the device count and trimmed).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a jaxgd.Problem (e.g. jaxgd.notebook()), got {type(problem).__name__}")
    epochs = _checks.check_int("epochs", epochs, 1)
    sampling = _checks.check_choice("sampling", sampling, SAMPLINGS)
    rng = _checks.check_choice("rng", rng, RNGS)
    if not isinstance(final_only, bool):
        raise TypeError(f"final_only must be True or False, got {final_only!r}")
    lr_a = _checks.check_array("lr", lr, low=0, low_open=True)
    seed_a = _checks.check_array("seed", seed, low=0, high=2**32 - 1, integer=True)
    w0, b0 = problem.init if init is None else _init_pair(init)
    w_a = _checks.check_array("init", w0)
    b_a = _checks.check_array("init", b0)
    h_a = {k: np.asarray(v) for k, v in hyper.items()}
    static = {k: v for k, v in hyper.items() if isinstance(v, (bool, str)) or v is None}
    numeric = {k: v for k, v in h_a.items() if k not in static}
    # every element in its range, then names and kinds checked on the first configuration
    table = optim.BUILTIN.get(optimizer, (None, {}))[1] if isinstance(optimizer, str) else {}
    for k, v in numeric.items():
        lo, lo_open, hi, hi_open = table[k][1:] if k in table else (None, False, None, False)
        numeric[k] = _checks.check_array(k, v, low=lo, low_open=lo_open, high=hi, high_open=hi_open)
    spec = optim.resolve(optimizer, float(lr_a.reshape(-1)[0]),
                         {**{k: v.reshape(-1)[0].item() for k, v in numeric.items()}, **static})
    m = problem.num_examples
    if batch_size is not None:
        if m is None:
            raise ValueError(f"batch_size does not apply to problem {problem.name!r}, which has no data; leave it None")
        batch_size = _checks.check_int("batch_size", batch_size, 1, m)
    arrays = {"lr": lr_a, "init.w": w_a, "init.b": b_a, "seed": seed_a, **numeric}
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items() if a.ndim)
        raise ValueError(f"sweep arrays must have one common length (or be scalars), got {shapes}") from None
    R = int(np.prod(shape))
    b = {k: np.broadcast_to(a, shape).reshape(R) for k, a in arrays.items()}

    dtype = problem.dtype
    hyper_arr = {k: jnp.asarray(v, dtype) for k, v in
                 {"lr": b["lr"], **{k: b[k] for k in numeric}}.items()}
    for k, v in spec.hyper.items():  # defaults of hyperparameters not given
        hyper_arr.setdefault(k, jnp.full((R,), v, dtype))
    p0 = Params(jnp.asarray(b["init.w"], dtype), jnp.asarray(b["init.b"], dtype))
    if batch_size is None:
        source = None
    elif rng == "jax":
        source = jax.vmap(order_key)(jnp.asarray(b["seed"].astype(np.uint32)))
    else:
        uniq, inv = np.unique(b["seed"], return_inverse=True)
        orders = [numpy_order(int(s), m, batch_size, epochs, sampling) for s in uniq]
        spe = steps_per_epoch(m, batch_size)
        source = Order(*(jnp.stack([o[i].reshape(epochs, spe, batch_size) for o in orders])[inv] for i in (0, 1)))
    args = _shard((hyper_arr, p0, source), R)
    out = _sweep_compiled(problem.loss_fn, spec.kind, epochs, batch_size, sampling, final_only,
                          problem.data, *args)
    return jax.tree.map(lambda a: a[:R], out)


def _init_pair(init):
    try:
        w, b = init
    except (TypeError, ValueError):
        raise ValueError(f"init must be a pair (w, b) of numbers or 1-D arrays, got {init!r}") from None
    return w, b


def _shard(tree, R: int):
    """Pad the leading (runs) axis to a multiple of the device count and shard it over all devices."""
    devices = jax.devices()
    n = len(devices)
    if n == 1:
        return tree
    pad = -R % n

    def place(a):
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        return a

    padded = jax.tree.map(place, tree)
    sharding = NamedSharding(Mesh(np.array(devices), ("runs",)), PartitionSpec("runs"))
    return jax.device_put(padded, sharding)


class LRScan(NamedTuple):
    """Final loss against learning rate, one sweep per optimizer (arrays of shape ``(len(lrs),)``)."""

    lrs: np.ndarray
    final_loss: dict
    diverged_at: dict
    stability_limit: float | None  # 2/λmax of the Hessian, for full-batch gd on a quadratic loss
    optimal_lr: float | None  # 2/(λmin + λmax): full-batch gd's fastest rate on a quadratic loss
    epochs: int
    batch_size: int | None


def lr_scan(problem: Problem, optimizers, lrs, epochs: int = 100, batch_size=None, sampling="shuffle",
            rng="jax", seed=0) -> LRScan:
    """``sweep(..., final_only=True)`` over ``lrs`` for each optimizer (one compiled call each)."""
    from jaxgd.theory import theory

    lrs = _checks.check_array("lrs", lrs, low=0, low_open=True).astype(np.float64).reshape(-1)
    final, div = {}, {}
    for opt in optimizers:
        f = sweep(problem, opt, lr=lrs, epochs=epochs, batch_size=batch_size, sampling=sampling, rng=rng, seed=seed,
                  final_only=True)
        final[opt] = np.asarray(f.loss, dtype=np.float64)
        div[opt] = np.asarray(f.diverged_at)
    limit = best = None
    if problem.quadratic:  # its Hessian is the same everywhere, so these hold from any start
        th = theory(problem)
        limit, best = float(th.stability_limit), float(th.optimal_lr)
    return LRScan(lrs, final, div, limit, best, epochs, batch_size)


def divergence_boundary(lrs, diverged_at) -> float | None:
    """The smallest learning rate of the sweep whose run diverged, or None."""
    d = np.asarray(diverged_at) >= 0
    return float(np.min(np.asarray(lrs)[d])) if d.any() else None
