"""run(): sample orders, trajectories, divergence, dtypes and argument errors."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import Params, data

import helpers as ref


@pytest.mark.parametrize("rng", ["jax", "numpy"])
def test_shuffle_order_is_a_permutation_per_epoch_with_ragged_mask(rng):
    o = data.sample_order(51, 8, 3, "shuffle", rng, 5)
    assert o.idx.shape == o.mask.shape == (21, 8)
    idx, mask = np.asarray(o.idx), np.asarray(o.mask)
    for e in range(3):
        rows = slice(7 * e, 7 * (e + 1))
        assert sorted(idx[rows][mask[rows]].tolist()) == list(range(51))
        assert mask[rows].sum(axis=1).tolist() == [8] * 6 + [3]


@pytest.mark.parametrize("rng", ["jax", "numpy"])
def test_replacement_order(rng):
    o = data.sample_order(51, 4, 2, "replacement", rng, 5)
    idx = np.asarray(o.idx)
    assert idx.shape == (26, 4) and np.asarray(o.mask).all()
    assert idx.min() >= 0 and idx.max() < 51
    assert len(set(idx.ravel().tolist())) < idx.size  # with replacement, repeats among 104 draws of 51


def test_numpy_order_is_the_notebooks_stream():
    o = data.numpy_order(2, 51, 1, 2, "replacement")
    expected = np.concatenate(ref.notebook_sgd_batches(2, 2))
    np.testing.assert_array_equal(np.asarray(o.idx)[:, 0], expected)


@pytest.mark.parametrize("sampling", ["shuffle", "replacement"])
@pytest.mark.parametrize("rng", ["jax", "numpy"])
def test_a_longer_run_extends_a_shorter_runs_order(sampling, rng):
    short = data.sample_order(51, 8, 2, sampling, rng, 9)
    long = data.sample_order(51, 8, 5, sampling, rng, 9)
    np.testing.assert_array_equal(np.asarray(long.idx)[:14], np.asarray(short.idx))


def test_jax_orders_differ_by_seed_and_repeat_by_seed():
    a = np.asarray(data.sample_order(51, 8, 2, "shuffle", "jax", 0).idx)
    b = np.asarray(data.sample_order(51, 8, 2, "shuffle", "jax", 0).idx)
    c = np.asarray(data.sample_order(51, 8, 2, "shuffle", "jax", 1).idx)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_every_optimizer_sees_the_same_order(problem):
    # Fed the order of seed 4 explicitly, a run must equal the run drawn from seed 4.
    order = data.sample_order(51, 8, 3, "shuffle", "jax", 4)
    for opt in ("gd", "adam", "lbfgs"):  # a stateless rule, a stateful one, one that calls the loss again
        a = jaxgd.run(problem, opt, lr=0.03, epochs=3, batch_size=8, seed=4)
        b = jaxgd.run(problem, opt, lr=0.03, batch_size=8, order=order)
        np.testing.assert_array_equal(np.asarray(a.params.w), np.asarray(b.params.w))


def test_explicit_order_is_what_the_steps_see(problem):
    batches = [np.array([0, 50, 7]), np.array([3, 3, 3]), np.array([10, 20, 30])]
    order = jaxgd.Order(np.stack(batches), np.ones((3, 3), bool))
    t = jaxgd.run(problem, "gd", lr=0.01, batch_size=3, order=order)
    ws, bs, losses, bl = ref.gd_loop(batches, 0.01)
    np.testing.assert_allclose(np.asarray(t.params.w), ws, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(t.batch_loss), bl, rtol=1e-12)


def test_trajectory_fields(problem):
    t = jaxgd.run(problem, "momentum", lr=0.05, epochs=2, batch_size=8)
    T = 14
    assert t.steps == T
    assert t.params.w.shape == t.params.b.shape == t.loss.shape == (T + 1,)
    assert t.batch_loss.shape == t.grad_norm.shape == t.update_norm.shape == (T,)
    assert (float(t.params.w[0]), float(t.params.b[0])) == (-4.0, -7.0)
    assert int(t.diverged_at) == -1 and not bool(t.diverged)
    steps = np.hypot(np.diff(np.asarray(t.params.w)), np.diff(np.asarray(t.params.b)))
    np.testing.assert_allclose(np.asarray(t.update_norm), steps, rtol=1e-10)
    x, y = problem.data
    np.testing.assert_allclose(float(t.loss[5]), float(jaxgd.mse(Params(t.params.w[5], t.params.b[5]), x, y)),
                               rtol=1e-13)


def test_divergence_is_recorded_not_raised(problem):
    # Full-batch gd on this quadratic diverges for lr > 2/λmax = 2/(2·mean(x²)) ≈ 0.1154.
    t = jaxgd.run(problem, "gd", lr=1.0, epochs=400)
    k = int(t.diverged_at)
    assert 0 < k <= 400 and bool(t.diverged)
    loss = np.asarray(t.loss)
    assert np.all(loss[:k] <= 1e6 * loss[0]) and loss[k] > 1e6 * loss[0]  # grown a millionfold
    assert np.all(np.isfinite(loss[:100])) and np.all(~np.isfinite(loss[-10:]))  # non-finite kept at the end
    stable = jaxgd.run(problem, "gd", lr=0.11, epochs=400)
    assert int(stable.diverged_at) == -1 and float(stable.loss[-1]) < 1e-10


def test_float32_run_with_its_own_tolerance():
    p32 = jaxgd.notebook(dtype="float32")
    t = jaxgd.run(p32, "gd", lr=1e-2, epochs=2, batch_size=1, sampling="replacement", rng="numpy", seed=2)
    assert t.params.w.dtype == np.float32 and t.loss.dtype == np.float32
    ws, bs, *_ = ref.gd_loop(ref.notebook_sgd_batches(2, 2), 1e-2)
    # float32 eps ≈ 1.2e-7 and |θ| ≤ 7: the steps contract, so errors stay a few ulps of θ
    # (measured 2.4e-7 in w and 3.8e-7 in b); 2e-6 is about 2 ulps of 7 plus margin
    np.testing.assert_allclose(np.asarray(t.params.w), ws, rtol=0, atol=2e-6)
    np.testing.assert_allclose(np.asarray(t.params.b), bs, rtol=0, atol=2e-6)


def test_other_data(problem):
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, 30)
    y = -1.5 * x + 0.5 + rng.normal(0, 0.1, 30)
    p = jaxgd.linear_regression(x, y)
    w_star, b_star = np.polyfit(x, y, 1)
    np.testing.assert_allclose([p.minimum.w, p.minimum.b], [w_star, b_star], rtol=1e-10)
    t = jaxgd.run(p, "gd", lr=0.1, epochs=300)
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)], [w_star, b_star], rtol=1e-8)


def test_noisy_notebook_data_is_reproducible():
    x1, y1 = jaxgd.notebook_data(noise=1.0, seed=3)
    x2, y2 = jaxgd.notebook_data(noise=1.0, seed=3)
    _, y3 = jaxgd.notebook_data(noise=1.0, seed=4)
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
    assert not np.array_equal(np.asarray(y1), np.asarray(y3))
    resid = np.asarray(y1) - (2 * np.asarray(x1) + 3)
    assert 0.5 < resid.std() < 1.5
    # the documented stream: float64 draws, then y rounded to the dtype (here float32)
    _, y4 = jaxgd.notebook_data(noise=2.0, seed=5, dtype="float32")
    x64 = np.linspace(-5, 5, 51)
    want = (2 * x64 + 3).astype(np.float32) + np.float32(2.0) * np.random.default_rng([0, 5]).standard_normal(51).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(y4), want)
    # and apart from the sample orders of the same seed (np.random.RandomState(seed), as the notebook)
    assert not np.allclose(resid, np.random.RandomState(3).standard_normal(51))


BAD_RUN = [
    (dict(lr=0.0), ValueError, "lr must be a finite number > 0, got 0.0"),
    (dict(lr=-1), ValueError, "lr must be a finite number > 0, got -1.0"),
    (dict(lr=float("nan")), ValueError, "lr must be a finite number > 0, got nan"),
    (dict(lr=float("inf")), ValueError, "lr must be a finite number > 0, got inf"),
    (dict(lr="0.1"), TypeError, "lr must be a finite number > 0, got '0.1'"),
    (dict(lr=True), TypeError, "lr must be"),
    (dict(epochs=0), ValueError, "epochs must be an integer >= 1, got 0"),
    (dict(epochs=-1), ValueError, "epochs must be an integer >= 1, got -1"),
    (dict(epochs=2.5), TypeError, "epochs must be an integer >= 1, got 2.5"),
    (dict(batch_size=0), ValueError, r"batch_size must be an integer in \[1, 51\], got 0"),
    (dict(batch_size=52), ValueError, r"batch_size must be an integer in \[1, 51\], got 52"),
    (dict(batch_size=8, sampling="random"), ValueError, "sampling must be one of 'shuffle', 'replacement'; got 'random'"),
    (dict(rng="torch"), ValueError, "rng must be one of 'jax', 'numpy'; got 'torch'"),
    (dict(seed=-1), ValueError, "seed must be an integer in"),
    (dict(seed=1.5), TypeError, "seed must be an integer in"),
    (dict(init=(1.0,)), ValueError, r"init must be two finite numbers \(w, b\), got 1 value"),
    (dict(init=(1.0, 2.0, 3.0)), ValueError, "init must be two finite numbers"),
    (dict(init=(1.0, np.inf)), ValueError, "init must be two finite numbers"),
    (dict(init=("a", 1.0)), TypeError, "init must be two finite numbers"),
    (dict(init=5.0), TypeError, "init must be two finite numbers"),
    (dict(optimizer="sgd"), ValueError, "optimizer must be one of 'gd', 'momentum'.*optax:NAME"),
    (dict(optimizer="optax:nope"), ValueError, "optax has no optimizer named 'nope'"),
    (dict(optimizer="optax:tree"), ValueError, "no optimizer named .tree."),
    (dict(optimizer="optax:apply_updates"), ValueError, "not an optimizer taking learning_rate"),
    (dict(optimizer="optax:adam", bogus=1.0), TypeError, "rejected its arguments"),
    (dict(optimizer="gd", beta=0.9), TypeError, "beta is not a hyperparameter of optimizer 'gd'"),
    (dict(optimizer="momentum", beta=1.0), ValueError, r"beta must be a finite number in \[0.0, 1.0\)"),
    (dict(optimizer="rmsprop", eps=-1.0), ValueError, "eps must be a finite number >= 0"),
    (dict(optimizer="adam", b2=float("nan")), ValueError, "b2 must be"),
    (dict(optimizer="adam", b1="x"), TypeError, "b1 must be"),
    (dict(optimizer=3), TypeError, "optimizer must be a string"),
    (dict(callback=5), TypeError, "callback must be a function"),
    (dict(chunk=0), ValueError, "chunk must be an integer >= 1, got 0"),
    (dict(callback=5, chunk=1), TypeError, "callback must be a function"),
    (dict(optimizer="optax:adamw", weight_decay="x"), TypeError,
     r"weight_decay must be a number \(optax.adamw's default is 0.0001\), got 'x'"),
    (dict(optimizer="optax:adamw", weight_decay=float("nan")), ValueError, "weight_decay must be a finite number"),
]


@pytest.mark.parametrize("kw,exc,match", BAD_RUN, ids=[str(k) for k, *_ in BAD_RUN])
def test_bad_run_arguments_raise_before_compiling(problem, kw, exc, match):
    from jaxgd import engine

    n = engine.run_compiled._cache_size()
    with pytest.raises(exc, match=match):
        jaxgd.run(problem, **kw)
    assert engine.run_compiled._cache_size() == n


@pytest.mark.parametrize("x,y,exc,match", [
    ([1.0, 2.0], [1.0], ValueError, "same length, got 2 and 1"),
    ([], [], ValueError, "x must hold at least one point"),
    ([1.0, np.nan], [1.0, 2.0], ValueError, "x must be finite, got nan at index 1"),
    ([1.0, 2.0], [1.0, np.inf], ValueError, "y must be finite, got inf at index 1"),
    ([[1.0, 2.0]], [1.0, 2.0], ValueError, "x must be a 1-D array"),
    (["a", "b"], [1.0, 2.0], TypeError, "x must be a 1-D array of finite numbers"),
    ([1 + 2j, 2.0], [1.0, 2.0], TypeError, "x must be a 1-D array of finite real numbers, got complex values"),
    ([1.0, 2.0], np.array([1.0, 2.0], complex), TypeError, "y must be .* got complex values"),
    ([1e308, 1.0], [1.0, 2.0], ValueError, r"x and y make the loss overflow float64 at \(W, b\) = \(-8.0, -8.0\)"),
])
def test_bad_data(x, y, exc, match):
    with pytest.raises(exc, match=match):
        jaxgd.linear_regression(x, y)


def test_problem_type_is_checked():
    with pytest.raises(TypeError, match="problem must be a jaxgd.Problem"):
        jaxgd.run("notebook")


def test_float64_needs_x64(restore_x64):
    import jax

    jax.config.update("jax_enable_x64", False)
    with pytest.raises(ValueError, match="x64"):
        jaxgd.notebook(dtype="float64")


# full batch, minibatches (shuffle) and SGD (replacement); a fourth case, momentum on minibatches of 8,
# took adam's path with a smaller optimizer state
@pytest.mark.parametrize("opt,batch_size", [("gd", None), ("adam", 8), ("optax:adamw", 1)])
def test_chunked_scan_is_bit_identical_to_one_scan(problem, opt, batch_size):
    # 7 epochs of 1, 7 or 51 steps; chunks of 2·spe − 1 steps round up to 2 whole epochs, so the
    # last chunk (1 epoch) is short
    kw = dict(lr=0.05, epochs=7, batch_size=batch_size, sampling="replacement" if batch_size == 1 else "shuffle")
    whole = jaxgd.run(problem, opt, **kw)
    spe = 1 if batch_size is None else -(-51 // batch_size)
    seen = []
    parts = jaxgd.run(problem, opt, chunk=2 * spe - 1 if spe > 1 else 2,
                      callback=lambda done, total: seen.append((done, total)), **kw)
    T = whole.steps
    assert seen == [(min(k, 7) * spe, T) for k in (2, 4, 6, 8)]
    for u, v in zip(jax.tree.leaves(whole), jax.tree.leaves(parts)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_moments_are_recorded_after_each_step(problem):
    g0 = problem.grad(jaxgd.Params(-4.0, -7.0))
    t = jaxgd.run(problem, "adam", lr=0.1, epochs=5, b1=0.8, b2=0.99)
    np.testing.assert_allclose(float(t.first_moment.w[0]), 0.2 * float(g0.w), rtol=1e-12)
    np.testing.assert_allclose(float(t.second_moment.b[0]), 0.01 * float(g0.b) ** 2, rtol=1e-12)
    m = jaxgd.run(problem, "momentum", lr=0.05, epochs=3, beta=0.5)
    np.testing.assert_allclose(float(m.first_moment.b[0]), 0.5 * float(g0.b), rtol=1e-12)
    assert m.second_moment is None
    r = jaxgd.run(problem, "rmsprop", lr=0.05, epochs=3)
    assert r.first_moment is None and r.second_moment.w.shape == (3,)
    assert jaxgd.run(problem, "gd", epochs=2).first_moment is None
    o = jaxgd.run(problem, "optax:adam", lr=0.1, epochs=5, b1=0.8, b2=0.99)  # optax's own state is read too
    np.testing.assert_allclose(np.asarray(o.first_moment.w), np.asarray(t.first_moment.w), rtol=1e-12)


def test_a_learning_rate_must_survive_the_working_dtype():
    p32 = jaxgd.linear_regression([0.0, 1.0, 2.0], [1.0, 3.0, 5.0], dtype="float32")
    with pytest.raises(ValueError, match="lr 1e-50 is 0.0 in float32: a learning rate must lie between"):
        jaxgd.run(p32, lr=1e-50)
    with pytest.raises(ValueError, match="lr 1e-50 at index 1 is 0.0 in float32"):
        jaxgd.sweep(p32, lr=[0.1, 1e-50])
    with pytest.raises(ValueError, match="lr 1e[+]39 is inf in float32"):
        jaxgd.run(p32, lr=1e39)


def test_noise_that_overflows_is_named():
    with pytest.raises(ValueError, match=r"noise 1e\+308 is too large for float64: the noisy y overflows"):
        jaxgd.notebook(noise=1e308)
    with pytest.raises(ValueError, match=r"noise 1e\+155 makes the loss overflow float64"):
        jaxgd.problem("notebook", noise=1e155)


def test_optax_takes_a_callable_hyperparameter(problem):
    mask = lambda p: jax.tree.map(lambda _: True, p)  # noqa: E731
    t = jaxgd.run(problem, "optax:adamw", lr=0.1, epochs=2, mask=mask, weight_decay=0.0)
    ref_t = jaxgd.run(problem, "optax:adamw", lr=0.1, epochs=2, weight_decay=0.0)
    np.testing.assert_array_equal(np.asarray(t.loss), np.asarray(ref_t.loss))


@pytest.mark.parametrize("call", [
    lambda P: jax.jit(lambda lr: jaxgd.run(P, lr=lr, epochs=2).loss)(0.1),
    lambda P: jax.vmap(lambda lr: jaxgd.run(P, lr=lr, epochs=2).loss)(np.array([0.1, 0.2])),
    lambda P: jax.jit(lambda w: jaxgd.run(P, init=(w, 0.0), epochs=2).loss)(1.0),
], ids=["jit-lr", "vmap-lr", "jit-init"])
def test_a_traced_run_points_to_sweep(problem, call):
    with pytest.raises(TypeError, match="is a traced value .* use jaxgd.sweep for many runs"):
        call(problem)


def test_a_float64_problem_after_x64_is_switched_off_is_refused(problem, restore_x64):
    jax.config.update("jax_enable_x64", False)
    with pytest.raises(ValueError, match="'notebook' holds float64 arrays, but JAX's x64 mode is off now"):
        jaxgd.run(problem, epochs=2)
    with pytest.raises(ValueError, match="x64 mode is off now"):
        jaxgd.loss_surface(problem, [0.0, 1.0], [0.0, 1.0])


def test_loss_surface_and_lr_scan_name_their_arguments(problem):
    with pytest.raises(TypeError, match=r"problem must be a jaxgd.Problem \(e.g. jaxgd.notebook\(\)\), got \['a'\]"):
        jaxgd.loss_surface(["a"])
    sc = jaxgd.lr_scan(problem, "gd", [0.1, 0.2], epochs=2)  # a string is one optimizer
    assert list(sc.final_loss) == ["gd"] and sc.final_loss["gd"].shape == (2,)
    with pytest.raises(ValueError, match="optimizers must name at least one optimizer"):
        jaxgd.lr_scan(problem, [], [0.1])


def test_loss_every_measures_some_steps_and_changes_nothing_else():
    p = jaxgd.notebook()
    full = jaxgd.run(p, "adam", lr=0.2, epochs=3, batch_size=1, loss_every=1)
    some = jaxgd.run(p, "adam", lr=0.2, epochs=3, batch_size=1, loss_every=10)
    np.testing.assert_array_equal(np.asarray(some.params.w), np.asarray(full.params.w))
    np.testing.assert_array_equal(np.asarray(some.batch_loss), np.asarray(full.batch_loss))
    loss, ref = np.asarray(some.loss), np.asarray(full.loss)
    measured = np.isfinite(loss)
    assert measured.tolist() == [t % 10 == 0 or t == 153 for t in range(154)]  # and the last point
    np.testing.assert_array_equal(loss[measured], ref[measured])
    s = jaxgd.sweep(p, "adam", lr=[0.2, 0.3], epochs=3, batch_size=1, loss_every=10)
    np.testing.assert_allclose(np.asarray(s.loss[0]), loss, rtol=1e-12)  # NaN where run has NaN
    # divergence between measurements: seen by the parameters, or at the next measured step
    d = jaxgd.run(p, "gd", lr=100.0, epochs=3, batch_size=1, loss_every=7)
    assert 0 < int(d.diverged_at) <= 7


def test_every_loss_is_recorded_by_default_whatever_the_data_size():
    # issue 21: 442 examples, batch 1 (one step in four used to be NaN, silently)
    x = np.linspace(-1.0, 1.0, 442)
    p = jaxgd.linear_regression(x, 2 * x + 3 + 0.1 * np.sin(7 * x))
    t = jaxgd.run(p, optimizer="gd", lr=0.01, epochs=1, batch_size=1)
    loss = np.asarray(t.loss)
    assert loss.shape == (443,) and np.isfinite(loss).all()
    ref = jax.vmap(lambda w, b: p.loss_fn(Params(w, b), p.data, None))(t.params.w, t.params.b)  # each point's
    np.testing.assert_allclose(loss, np.asarray(ref), rtol=1e-12)
    s = jaxgd.sweep(p, "gd", lr=[0.01, 0.02], epochs=1, batch_size=1)
    assert np.isfinite(np.asarray(s.loss)).all()
    np.testing.assert_allclose(np.asarray(s.loss[0]), loss, rtol=1e-12)


@pytest.mark.parametrize("m, batch, steps, expected", [
    (51, 1, 255, 1), (51, None, 10**6, 1), (None, None, 10, 1),  # small, full batch, no data: never thinned
    (10**4, 10**4, 9_999, 1),  # 10⁴ points of 10⁴ examples: 10⁸ evaluations, within the budget
    (10**4, 10**4, 10_000, 2),  # one step more: thinned
    (10**6, 1, 10**6, 10_102), (10**6, 8, 125_000, 1_263)])  # an epoch of 10⁶ examples: ≤ 100 measured points
def test_auto_loss_every_thins_only_past_1e8_example_evaluations(m, batch, steps, expected):
    from jaxgd.runs import LOSS_BUDGET, auto_loss_every, check_loss_every

    k = auto_loss_every(m, batch, steps)
    assert k == expected and check_loss_every("auto", m, batch, steps) == k
    if k > 1:  # the measured points (every k-th, the last) cost at most the budget; with k - 1 they would not
        points = lambda k: steps // k + 1 + (steps % k != 0)  # noqa: E731
        assert points(k) * m <= LOSS_BUDGET < points(k - 1) * m
    assert check_loss_every(3) == 3
    for bad in (0, None, 2.5, "automatic"):
        with pytest.raises((jaxgd.ArgumentError, TypeError), match="loss_every"):
            check_loss_every(bad)


def test_auto_loss_every_of_a_sweep_is_its_longest_runs(monkeypatch):
    monkeypatch.setattr(jaxgd.runs, "LOSS_BUDGET", 510)  # 10 losses of the notebook's 51 points a run
    s = jaxgd.sweep(jaxgd.notebook(), "gd", lr=0.01, epochs=1, batch_size=[1, 2], loss_every="auto")
    assert [t for t in range(52) if np.isfinite(s.loss[0, t])] == [0, 6, 12, 18, 24, 30, 36, 42, 48, 51]
