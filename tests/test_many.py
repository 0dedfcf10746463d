"""Several runs in one compiled call: sweep's per-run columns (optimizers, lengths, batch sizes,
samplings, starts), the union optimizer, the orders they draw, and the first visit of a target."""

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import optim, runs
from jaxgd._checks import ArgumentError
from jaxgd.data import epoch_order, order_key, varied_epoch_order


def _close(a, b, rtol=1e-10):
    """Every leaf of two trajectories equal up to rounding (NaN where the other is NaN), None where None."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("sampling", ["shuffle", "replacement"])
def test_varied_order_is_epoch_order_in_its_lanes(sampling):
    """A run of batch b in a sweep padded to width 8 and 51 steps sees exactly epoch_order's examples."""
    m = 51
    for seed, epoch, b in [(0, 0, 1), (3, 2, 3), (7, 1, 8), (11, 4, 5)]:
        key = order_key(seed)
        want = epoch_order(key, epoch, m, b, sampling)
        got = varied_epoch_order(key, epoch, m, 8, 51, b, sampling == "replacement")
        spe = -(-m // b)
        np.testing.assert_array_equal(np.asarray(got.idx)[:spe, :b], np.asarray(want.idx))
        np.testing.assert_array_equal(np.asarray(got.mask)[:spe, :b], np.asarray(want.mask))
        assert not np.asarray(got.mask)[spe:].any() and not np.asarray(got.mask)[:, b:].any()


def _columns(cfgs, full=False):
    """The sweep columns of checked runs, and the runs split back."""
    names = [c.optimizer for c in cfgs]
    t = jaxgd.sweep(cfgs[0].problem, names, [c.spec.hyper["lr"] for c in cfgs], [c.epochs for c in cfgs],
                    None if full else [c.batch_size for c in cfgs], sampling=[c.sampling for c in cfgs],
                    rng=cfgs[0].rng, seed=[c.seed for c in cfgs])
    return runs.split(t, names)


def test_sweep_columns_equal_each_run(problem):
    """Four optimizers × two minibatch modes of different lengths and batches, one call: each run is
    run_checked's, cut to its own length, with its own optimizer's moments only."""
    cfgs = [runs.check_run_args(problem, o, lr=lr, epochs=e, batch_size=b, sampling=s, rng="numpy", seed=sd)
            for o, lr, e, b, s, sd in [("gd", .01, 2, 1, "replacement", 2), ("momentum", .02, 5, 1, "replacement", 2),
                                       ("rmsprop", .1, 3, 8, "shuffle", 1), ("adam", .3, 4, 8, "shuffle", 1),
                                       ("gd", 3.0, 3, 8, "shuffle", 1)]]
    many = _columns(cfgs)
    for c, m in zip(cfgs, many):
        r = jax.tree.map(np.asarray, runs.run_checked(c))
        assert int(m.num_steps) == c.steps == len(m.batch_loss)
        assert int(m.diverged_at) == int(r.diverged_at)
        if int(r.diverged_at) < 0:
            _close(m, r)
        else:  # past divergence the numbers are huge and free to differ; up to it they agree
            d = int(r.diverged_at)
            np.testing.assert_allclose(m.params.w[:d], r.params.w[:d], rtol=1e-9)
    assert many[0].first_moment is None and many[1].first_moment is not None and many[2].second_moment is not None
    full = [runs.check_run_args(problem, o, lr=.05, epochs=e) for o, e in [("gd", 20), ("nesterov", 40)]]
    for c, m in zip(full, _columns(full, full=True)):
        _close(m, jax.tree.map(np.asarray, runs.run_checked(c)))


def test_sweep_refuses_columns_that_cannot_share_a_call(problem):
    with pytest.raises(ArgumentError, match="full batch .* or all minibatch"):
        jaxgd.sweep(problem, "gd", epochs=3, batch_size=[None, 4])
    with pytest.raises(ArgumentError, match="common length"):
        jaxgd.sweep(problem, ["gd", "adam"], lr=[0.1, 0.2, 0.3], epochs=3)
    with pytest.raises(ArgumentError, match="optimizer"):
        jaxgd.sweep(problem, [], epochs=3)
    with pytest.raises(ArgumentError, match="none of the optimizers"):
        jaxgd.sweep(problem, ["gd", "adam"], epochs=3, beta=0.5)


def test_sweep_of_several_optimizers_equals_each_sweep(problem):
    lrs = np.geomspace(1e-3, 0.1, 7)  # all stable: past divergence the numbers are free to differ
    names = ["gd"] * 7 + ["momentum"] * 7 + ["adam"] * 3
    beta = np.r_[np.full(14, 0.5), np.full(3, 0.7)]  # applies to momentum's runs only
    b2 = np.r_[np.full(14, 0.3), [0.9, 0.99, 0.999]]  # applies to adam's runs only
    t = jaxgd.sweep(problem, names, np.r_[lrs, lrs, lrs[:3]], 30, beta=beta, b2=b2)
    assert t.params.w.shape == (17, 31)
    _close(jax.tree.map(lambda a: a[:7], t)._replace(first_moment=None, second_moment=None),
           jax.tree.map(np.asarray, jaxgd.sweep(problem, "gd", lr=lrs, epochs=30)))
    mo = jaxgd.sweep(problem, "momentum", lr=lrs, beta=0.5, epochs=30)
    np.testing.assert_allclose(t.params.b[7:14], np.asarray(mo.params.b), rtol=1e-10)
    ad = jaxgd.sweep(problem, "adam", lr=lrs[:3], b2=np.array([0.9, 0.99, 0.999]), epochs=30)
    np.testing.assert_allclose(t.loss[14:], np.asarray(ad.loss), rtol=1e-10)
    np.testing.assert_allclose(t.second_moment.w[14:], np.asarray(ad.second_moment.w), rtol=1e-10)
    with pytest.raises(ArgumentError, match="beta"):
        jaxgd.sweep(problem, "momentum", lrs, 5, beta=[0.5, 0.9, 1.5, 0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ArgumentError, match="beta"):  # out of range on a momentum run of a mixed sweep
        jaxgd.sweep(problem, ["gd", "momentum"], 0.1, 5, beta=[1.5, 1.5])
    jaxgd.sweep(problem, ["gd", "momentum"], 0.1, 5, beta=[1.5, 0.5])  # ignored on gd's run


def test_sweep_broadcasts_columns_as_numpy(problem):
    """optimizers × lrs × batch sizes as three broadcast axes: R = 2·3·2 runs in C order."""
    opts, lrs, bs = np.array(["gd", "adam"])[:, None, None], np.array([0.01, 0.02, 0.05])[None, :, None], [[[1, 8]]]
    t = jaxgd.sweep(problem, opts, lrs, 2, bs, rng="numpy", final_only=True)
    assert t.params.w.shape == (12, 1)
    i = 1 * 6 + 2 * 2 + 1  # adam, lr 0.05, batch 8
    r = jaxgd.run(problem, "adam", lr=0.05, epochs=2, batch_size=8, rng="numpy")
    assert int(t.num_steps[i]) == int(r.num_steps)
    np.testing.assert_allclose(t.params.w[i, -1], float(r.params.w[-1]), rtol=1e-10)


@pytest.mark.parametrize("rng", ["jax", "numpy"])
def test_sweep_of_batch_sizes_ends_where_each_run_ends(problem, rng):
    bs = np.array([1, 8, 51, 17, 1])
    ep = np.array([2, 3, 4, 2, 3])
    sm = ["replacement", "shuffle", "shuffle", "replacement", "replacement"]
    lr = np.array([0.01, 0.05, 0.1, 0.04, 0.02])
    seed = np.array([0, 1, 3, 4, 0])  # seed 0 twice: a shorter and a longer draw of one stream
    t = jaxgd.sweep(problem, "momentum", lr=lr, batch_size=bs, epochs=ep, sampling=sm, seed=seed, rng=rng,
                    final_only=True)
    for i in (range(5) if rng == "numpy" else (0, 1, 2)):  # each run compiles alone: the jax rng checks three
        r = jaxgd.run(problem, "momentum", lr=lr[i], epochs=int(ep[i]), batch_size=int(bs[i]), sampling=sm[i],
                      seed=int(seed[i]), rng=rng)
        assert int(t.num_steps[i]) == int(r.num_steps) == ep[i] * -(-51 // bs[i])
        np.testing.assert_allclose([t.params.w[i, -1], t.params.b[i, -1], t.loss[i, -1]],
                                   [float(r.params.w[-1]), float(r.params.b[-1]), float(r.loss[-1])], rtol=1e-10)
    with pytest.raises(ArgumentError, match="batch_size"):
        jaxgd.sweep(problem, lr=0.01, batch_size=[1, 52])
    with pytest.raises(ArgumentError, match="rng"):
        jaxgd.sweep(problem, lr=0.01, batch_size=[5, 6], rng="torch")
    with pytest.raises(ArgumentError, match="no data"):
        jaxgd.sweep(jaxgd.problem("himmelblau"), lr=0.01, batch_size=[1, 2])


def test_union_moments_are_the_members():
    kinds = [optim.resolve(o, 0.1, {}).kind for o in ("gd", "momentum", "adam")]
    hypers = ({"lr": 0.1}, {"lr": 0.1, "beta": 0.9}, {"lr": 0.1, "b1": 0.9, "b2": 0.999, "eps": 1e-8})
    tx = optim.union(tuple(kinds), hypers, np.int32(1))
    p = jaxgd.Params(np.float64(1.0), np.float64(2.0))
    g = jaxgd.Params(np.float64(0.5), np.float64(-1.0))
    u, s = tx.update(g, tx.init(p), p)
    u1, s1 = optim.momentum(0.1, 0.9).update(g, optim.momentum(0.1, 0.9).init(p), p)
    assert float(u.w) == float(u1.w) and float(u.b) == float(u1.b)
    first, second = optim.moments(s)
    assert float(first.w) == float(s1[0].v.w) and np.isnan(float(second.w))  # momentum keeps no second moment


def test_reached_at_is_the_first_visit(problem):
    """sweep's targets: per target the first step within the tolerance of it, as read off the path."""
    h = jaxgd.problem("himmelblau")
    mins = np.array([list(m) for m in h.minima])
    starts = (np.array([-4.0, 0.0, 4.5, 1.0]), np.array([-4.0, 0.0, 4.5, -3.0]))
    t = jaxgd.sweep(h, "gd", 0.01, 300, init=starts, final_only=True, targets=mins, target_tol=0.16)
    for i in range(4):
        r = jaxgd.run(h, "gd", lr=0.01, epochs=300, init=(starts[0][i], starts[1][i]))
        d = np.hypot(np.asarray(r.params.w)[:, None] - mins[:, 0], np.asarray(r.params.b)[:, None] - mins[:, 1])
        hits = [np.flatnonzero(d[:, k] < 0.16) for k in range(len(mins))]
        np.testing.assert_array_equal(t.reached_at[i], [h[0] if h.size else -1 for h in hits])
    assert runs.truncate(jax.tree.map(np.asarray, jaxgd.run(problem, "gd", epochs=10)), 5).reached_at is None
