"""Losses as the ecosystem writes them: a batch loss ``(params, batch, mask)`` equals the per-example
form, the mask of a ragged batch is respected, and a loss with a per-step PRNG key (dropout) is
reproducible by seed, differs across seeds, is the same in run, sweep and the chunked scan, is
measured without a key, and equals a hand-written optax loop over the documented keys."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import engine
from jaxgd.data import jax_order, order_key, step_key

M, D, H = 13, 3, 8  # 13 examples: batches of 5 leave a ragged last batch of 3


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(M, D))
    return x, np.sin(x[:, 0]) + x[:, 1] * x[:, 2]


def _params0():
    rng = np.random.default_rng(1)
    return {"w1": rng.normal(size=(H, D)) / np.sqrt(D), "b1": 0.1 * rng.normal(size=H),
            "w2": rng.normal(size=H) / np.sqrt(H), "b2": np.float64(0.0)}


def _drop(h, key):  # dropout on the hidden layer, the training-time rescaling; off without a key
    return h if key is None else h * jax.random.bernoulli(key, 0.8, h.shape) / 0.8


def mse_example(p, x, y):
    return (jnp.tanh(p["w1"] @ x + p["b1"]) @ p["w2"] + p["b2"] - y) ** 2


def _masked_mean(e, mask):
    if mask is None:
        return jnp.mean(e)
    w = mask.astype(e.dtype)
    return jnp.sum(e * w) / jnp.sum(w)


def mse_batch(p, batch, mask):
    x, y = batch
    h = jnp.tanh(x @ p["w1"].T + p["b1"][None, :])
    return _masked_mean((h @ p["w2"] + p["b2"] - y) ** 2, mask)


def drop_example(p, x, y, key):
    return (_drop(jnp.tanh(p["w1"] @ x + p["b1"]), key) @ p["w2"] + p["b2"] - y) ** 2


def drop_batch(p, batch, mask, key):
    x, y = batch
    h = _drop(jnp.tanh(x @ p["w1"].T + p["b1"][None, :]), key)
    return _masked_mean((h @ p["w2"] + p["b2"] - y) ** 2, mask)


@pytest.fixture(scope="module")
def plain():
    """The MLP's loss per example and as a batch loss."""
    x, y = _data()
    return (jaxgd.model_problem(mse_example, _params0(), (x, y), name="per-example"),
            jaxgd.model_problem(mse_batch, _params0(), (x, y), name="batch", batched=True))


@pytest.fixture(scope="module")
def dropout():
    """The dropout MLP, per example (``{"example": ...}``) and as a batch loss (``{"batch": ...}``)."""
    x, y = _data()
    return {"example": jaxgd.model_problem(drop_example, _params0(), (x, y), takes_key=True),
            "batch": jaxgd.model_problem(drop_batch, _params0(), (x, y), batched=True, takes_key=True)}


def _close(u, v, tol=1e-12):
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _same(u, v):
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _differ(u, v):
    return not np.array_equal(jaxgd_flat(u.final), jaxgd_flat(v.final))


def jaxgd_flat(tree):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree.leaves(tree)])


CASES = [("gd", dict(lr=0.1, epochs=6)), ("adam", dict(lr=0.02, epochs=4, batch_size=5))]


@pytest.mark.parametrize("opt,kw", CASES)
def test_batch_loss_equals_the_per_example_loss(plain, opt, kw):
    per, batch = plain
    assert not batch.takes_key
    a, b = jaxgd.run(per, opt, **kw), jaxgd.run(batch, opt, **kw)
    _close(a, b)
    assert a.steps == (6 if opt == "gd" else 4 * 3)
    s = jaxgd.sweep(batch, opt, **{**kw, "lr": np.array([kw["lr"], kw["lr"] / 2])})
    _close(jax.tree.map(lambda v: v[0], s), a)
    _close(jax.tree.map(lambda v: v[1], s), jaxgd.run(per, opt, **{**kw, "lr": kw["lr"] / 2}))


def test_the_mask_of_a_ragged_batch_is_respected(plain):
    per, batch = plain
    # an explicit order whose padding lanes point at example 12 (masked: they must not count)
    idx = np.array([[0, 1, 2, 12, 12], [3, 4, 5, 6, 7], [8, 9, 10, 11, 12]], np.int32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
    t = jaxgd.run(batch, "gd", lr=0.1, batch_size=5, order=jaxgd.Order(idx, mask))
    p0 = batch.init
    x, y = batch.data
    on_three = lambda p: mse_batch(p, (x[:3], y[:3]), None)  # noqa: E731
    np.testing.assert_allclose(t.batch_loss[0], on_three(p0), rtol=1e-13)
    _close(jax.tree.map(lambda v: v[1], t.params),
           jax.tree.map(lambda p, g: p - 0.1 * g, p0, jax.grad(on_three)(p0)))
    _close(t, jaxgd.run(per, "gd", lr=0.1, batch_size=5, order=jaxgd.Order(idx, mask)))
    unmasked = jaxgd.run(batch, "gd", lr=0.1, batch_size=5, order=jaxgd.Order(idx, np.ones_like(mask)))
    assert not np.allclose(unmasked.batch_loss[0], t.batch_loss[0])


@pytest.mark.parametrize("form", ["example", "batch"])
def test_dropout_runs_are_reproducible_by_seed_and_differ_across_seeds(dropout, form):
    p = dropout[form]
    kw = dict(lr=0.02, epochs=4, batch_size=5)
    a, b = jaxgd.run(p, "adam", seed=3, **kw), jaxgd.run(p, "adam", seed=3, **kw)
    _same(a, b)
    seeds = np.array([3, 4, 5])
    s = jaxgd.sweep(p, "adam", seed=seeds, **kw)
    for r, seed in enumerate(seeds):
        _close(jax.tree.map(lambda v, r=r: v[r], s), jaxgd.run(p, "adam", seed=int(seed), **kw))
    finals = [jaxgd_flat(jax.tree.map(lambda v, r=r: v[r, -1], s.params)) for r in range(3)]
    assert not np.array_equal(finals[0], finals[1]) and not np.array_equal(finals[1], finals[2])
    # the keys, not only the sample order, differ by seed: the same order with another seed's keys differs
    order = jax_order(order_key(3), M, 5, 4, "shuffle")
    with_order = [jaxgd.run(p, "adam", lr=0.02, batch_size=5, order=order, seed=sd) for sd in (3, 4)]
    _close(with_order[0], a)
    assert _differ(*with_order)
    # full batch: no sample order, still a key per step from the seed
    f = [jaxgd.run(p, "gd", lr=0.1, epochs=5, seed=sd) for sd in (0, 0, 1)]
    _same(f[0], f[1])
    assert _differ(f[0], f[2])


@pytest.mark.parametrize("kw", [
    dict(batch_size=np.array([5, 13]), epochs=np.array([2, 3])),  # runs of several shapes: orders drawn in the scan
    dict(batch_size=np.array([5, 13]), epochs=np.array([2, 3]), rng="numpy"),  # the notebook's NumPy orders
    dict(batch_size=5, epochs=2, rng="numpy"),
    dict(batch_size=5, epochs=2, final_only=True),
])
def test_every_kind_of_keyed_sweep_equals_its_runs(dropout, kw):
    # each run's step t gets step_key(seed, t) for its own t, also where the sweep pads or interleaves steps
    p = dropout["batch"]
    seeds = np.array([1, 2])
    s = jaxgd.sweep(p, "adam", lr=0.02, seed=seeds, **kw)
    for r in range(2):
        one = {k: (int(v[r]) if isinstance(v, np.ndarray) else v) for k, v in kw.items() if k != "final_only"}
        t = jaxgd.run(p, "adam", lr=0.02, seed=int(seeds[r]), **one)
        got = jax.tree.map(lambda v, r=r: v[r], s)
        assert int(got.num_steps) == t.steps
        _close(jax.tree.map(lambda v: v[-1], got.params), jax.tree.map(lambda v: v[-1], t.params))
        np.testing.assert_allclose(got.loss[-1], t.loss[-1], rtol=1e-12)
        if not kw.get("final_only") and np.ndim(kw["batch_size"]) == 0:  # the same steps: every record
            _close(got, t)


@pytest.mark.parametrize("opt,batch_size", [("adam", 5), ("gd", None)])
def test_a_keyed_run_in_chunks_is_bit_identical_to_one_scan(dropout, opt, batch_size):
    p = dropout["example"]
    kw = dict(lr=0.02, epochs=7, batch_size=batch_size, seed=11)
    whole = jaxgd.run(p, opt, **kw)
    spe = 1 if batch_size is None else 3
    parts = jaxgd.run(p, opt, chunk=2 * spe - 1 if spe > 1 else 2, **kw)
    _same(whole, parts)


@pytest.mark.parametrize("form", ["example", "batch"])
def test_the_recorded_loss_is_the_deterministic_loss(dropout, form):
    p = dropout[form]
    t = jaxgd.run(p, "adam", lr=0.02, epochs=3, batch_size=5, seed=2)
    plain = (mse_example, {}) if form == "example" else (mse_batch, dict(batched=True))
    off = jaxgd.model_problem(plain[0], _params0(), p.data, **plain[1])  # the same network without dropout
    np.testing.assert_allclose(np.asarray(t.loss), np.asarray(jax.vmap(p.full_loss)(t.params)), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(t.loss), np.asarray(jax.vmap(off.full_loss)(t.params)), rtol=1e-13)
    assert float(p.loss(p.init)) == float(p.loss_fn(p.init, p.data, None))
    assert float(p.loss(p.init, key=step_key(0, 0))) != float(p.loss(p.init))  # with a key, dropout is on
    # the batch losses are the keyed ones: not the deterministic loss on the batch
    order = jax_order(order_key(2), M, 5, 3, "shuffle")
    det = [float(p.loss(jax.tree.map(lambda v, k=k: v[k], t.params), order.idx[k], order.mask[k])) for k in range(3)]
    assert not np.allclose(t.batch_loss[:3], det)


def _reference(form: str, x, y, p0, seed: int, lr: float, epochs: int, B: int):
    """The documented convention by hand: step t's key is step_key(seed, t) (example i of the batch:
    fold_in(step_key, i)), the order jax_order(order_key(seed), ...), optax.adam, a Python loop."""
    order = jax_order(order_key(seed), len(y), B, epochs, "shuffle")
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(p, idx, mask, key):
        if form == "batch":
            return drop_batch(p, (x[idx], y[idx]), mask, key)
        each = [drop_example(p, x[idx[i]], y[idx[i]], jax.random.fold_in(key, i)) for i in range(B)]
        w = mask.astype(x.dtype)
        return sum(e * w[i] for i, e in enumerate(each)) / jnp.sum(w)

    grad = jax.jit(jax.value_and_grad(loss))
    tx = optax.adam(lr)
    p = jax.tree.map(jnp.asarray, p0)
    state = tx.init(p)
    points, batch_losses = [p], []
    for t in range(order.idx.shape[0]):
        v, g = grad(p, order.idx[t], order.mask[t], step_key(seed, t))
        u, state = tx.update(g, state, p)
        p = optax.apply_updates(p, u)
        points.append(p)
        batch_losses.append(v)
    return jax.tree.map(lambda *a: jnp.stack(a), *points), jnp.stack(batch_losses)


@pytest.mark.parametrize("form", ["example", "batch"])
def test_a_keyed_run_equals_a_hand_written_optax_loop(dropout, form):
    p = dropout[form]
    t = jaxgd.run(p, "optax:adam", lr=0.02, epochs=3, batch_size=5, seed=7)
    params, batch_loss = _reference(form, *p.data, p.init, seed=7, lr=0.02, epochs=3, B=5)
    _close(t.params, params)
    _close(t.batch_loss, batch_loss)


def test_step_key_is_the_documented_derivation():
    k = step_key(5, 9)
    want = jax.random.fold_in(jax.random.fold_in(jax.random.key(5), 2), 9)
    np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(want))
    for other in (order_key(5), jax.random.fold_in(jax.random.key(5), 0)):  # apart from order and noise
        assert not np.array_equal(jax.random.key_data(jaxgd.data.run_key(5)), jax.random.key_data(other))


def test_another_seed_does_not_recompile(dropout):
    p = dropout["batch"]
    jaxgd.run(p, "gd", lr=0.1, epochs=2, seed=0)
    n = engine.run_compiled._cache_size()
    jaxgd.run(p, "gd", lr=0.05, epochs=2, seed=1)
    assert engine.run_compiled._cache_size() == n


def _vector_batch_loss(p, batch, mask):
    return (jnp.tanh(batch[0] @ p["w1"].T + p["b1"][None, :]) @ p["w2"] - batch[1]) ** 2


@pytest.mark.parametrize("loss,kw,exc,match", [
    (_vector_batch_loss, dict(batched=True), ValueError,
     r"loss_per_example must return a scalar for a batch, got shape \(13,\)"),
    (lambda p, x, y, key: mse_example(p, x, y) * jax.random.bernoulli(key, 0.8), dict(takes_key=True), ValueError,
     "loss_per_example failed on params0 and one example with key=None .*deterministic"),
    (lambda p, b, mask, key: mse_batch(p, b, mask) * jax.random.bernoulli(key, 0.8),
     dict(batched=True, takes_key=True), ValueError,
     "loss_per_example failed on params0 and the whole data and mask=None with key=None"),
    (mse_example, dict(takes_key=True), ValueError, "loss_per_example failed on params0 and one example with key=None"),
    (mse_batch, dict(batched="yes"), TypeError, "batched must be True or False"),
    (mse_batch, dict(takes_key=1), TypeError, "takes_key must be True or False"),
    (lambda p, b, mask: mse_batch(p, b, None) + mask.sum(), dict(batched=True), ValueError,
     "loss_per_example failed on params0 and the whole data and mask=None: AttributeError"),
])
def test_bad_losses_are_one_line_errors(loss, kw, exc, match):
    with pytest.raises(exc, match=match) as e:
        jaxgd.model_problem(loss, _params0(), _data(), **kw)
    assert isinstance(e.value, (jaxgd.ArgumentError, jaxgd.ArgumentTypeError))
    assert "\n" not in str(e.value)


def test_a_key_for_a_problem_without_one_is_refused(plain):
    with pytest.raises(ValueError, match="key does not apply"):
        plain[0].loss(plain[0].init, key=step_key(0, 0))
