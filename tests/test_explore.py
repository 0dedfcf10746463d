"""The report's explorables: the heavy-ball phase diagram against its theory boundary, what-if
sliders, the seed cloud and the basins of attraction (each from compiled sweeps)."""

import numpy as np
import pytest

import jaxgd
from jaxgd import runs
from jaxgd import explore
from jaxgd.runs import sweep
from jaxgd.app.presets import MODES
from jaxgd.curvature import theory

import helpers


def test_heavy_ball_boundary_is_where_momentum_starts_to_diverge(problem):
    """EMA heavy ball v ← βv + (1−β)g, θ ← θ − lr·v is stable on a quadratic iff
    lr·(1−β)·λmax < 2(1+β): every run below the boundary stays, every run above it (from 1.01×)
    diverges within 1,000 steps."""
    lam = float(theory(problem).eigenvalues[-1])
    betas = np.array([0.0, 0.3, 0.6, 0.8, 0.9, 0.95])
    factors = np.geomspace(0.8, 1.25, 24)
    limits = np.array([explore.lr_limit("momentum", lam, b) for b in betas])
    np.testing.assert_allclose(limits, 2 * (1 + betas) / ((1 - betas) * lam), rtol=1e-12)
    lr = (limits[:, None] * factors[None, :]).reshape(-1)
    beta = np.repeat(betas, len(factors))
    t = jaxgd.sweep(problem, "momentum", lr=lr, beta=beta, epochs=1000, final_only=True)
    d = (np.asarray(t.diverged_at) >= 0).reshape(len(betas), len(factors))
    assert not d[:, factors < 1].any() and d[:, factors > 1].all()
    assert explore.lr_limit("gd", lam) == pytest.approx(2 / lam) and explore.lr_limit("adam", lam) is None


def test_lr_sweeps_feed_scan_whatif_and_phase(problem):
    lrs = np.geomspace(1e-3, 10, 12)
    sweeps, extra = explore.lr_sweeps(problem, ["gd", "momentum"], lrs, 30, extra={"gd": [0.05]})
    mo = sweeps["momentum"]
    assert mo.w.shape == (12, 50, 31) and mo.values[mo.default] == 0.9
    # one run of the grid equals run() with its lr and β
    t = jaxgd.run(problem, "momentum", lr=lrs[4], beta=float(mo.values[10]), epochs=30)
    np.testing.assert_allclose(mo.w[4, 10], np.asarray(t.params.w), rtol=1e-12)
    np.testing.assert_allclose(runs.truncate(extra["gd"][0], 20).loss,
                               np.asarray(jaxgd.run(problem, "gd", lr=0.05, epochs=20).loss), rtol=1e-12)
    th = theory(problem)
    scan = explore.scan_from(sweeps, 30, th)
    np.testing.assert_array_equal(scan.final_loss["momentum"], mo.loss[:, mo.default, 30])
    wf = explore.whatif(mo, float(th.eigenvalues[-1]), points=6)
    assert wf["w"].shape == (6, 5, 31) and list(wf["values"]) == [0.0, 0.5, 0.8, 0.9, 0.98]
    assert wf["limit"][3] == pytest.approx(explore.lr_limit("momentum", float(th.eigenvalues[-1]), 0.9))
    for lim, at in zip(wf["limit"], wf["limit_at"]):  # the slider's mark: between the stops around the limit
        inside = wf["lrs"][0] < lim < wf["lrs"][-1]
        assert (at is not None) == inside and (not inside or wf["lrs"][int(at)] <= lim <= wf["lrs"][int(at) + 1])
    ph = explore.phase(mo, float(th.eigenvalues[-1]))
    assert ph["final_loss"].shape == (12, 50) and len(ph["boundary"]) == 50


def test_stop_at_places_an_lr_among_the_slider_stops_in_log():
    """The what-if's limit mark (issue 22): stops uneven in log lr, the mark interpolated in log between two."""
    lrs = np.array([0.01, 0.1, 1.0, 100.0])
    assert explore.stop_at(lrs, 10 ** -1.5) == pytest.approx(0.5) and explore.stop_at(lrs, 1.0) == pytest.approx(2)
    assert explore.stop_at(lrs, 10.0) == pytest.approx(2.5)  # halfway in log between 1 and 100, not 2 + 9/99
    assert [explore.stop_at(lrs, v) for v in (None, 0.01, 100.0, 1e-3, 1e3)] == [None] * 5


def test_seed_cloud_epochs_are_cut_so_every_run_fits_its_steps(problem):
    """With many epochs (``report --epochs 4000``), every run of the cloud, the spread's batch-1 runs
    included, and the lr × batch diagram's batch-1 row stay within ``max_steps``: their sample orders
    grow with steps × batch (10 GB before, where the minibatch mode's 714 epochs ran at batch 1)."""
    modes = [m for m in MODES if m.batch_size]
    cloud, ph = explore.seed_cloud(problem, modes, lambda m: (0.01, 4000), seeds=3, spread_seeds=2, max_steps=200,
                                   batch_phase=True)
    assert [cloud[m.name]["epochs"] for m in modes] == [200 // 51] * 2 and ph["epochs"] == 200 // 51
    assert ph["steps"].max() <= 200
    again, ph2 = explore.seed_cloud(problem, modes, lambda m: (0.01, 3), seeds=3, spread_seeds=2, max_steps=200,
                                    batch_phase=True)  # the same as asking for those epochs
    np.testing.assert_array_equal(cloud["minibatch"]["w"], again["minibatch"]["w"])
    np.testing.assert_array_equal(ph["final_loss"], ph2["final_loss"])


def test_seed_cloud(problem):
    modes = [m for m in MODES if m.batch_size]
    cloud = explore.seed_cloud(problem, modes[:1], lambda m: (0.01, 2), seeds=100, spread_seeds=50)
    sgd = cloud["sgd"]
    assert sgd["w"].shape == (100,) and sgd["epochs"] == 2 and not sgd["diverged"].any()
    assert len(np.unique(np.round(sgd["w"], 12))) > 75  # different seeds, different ends
    # the spread at lr × 0.5 is the RMS distance to the centre of those 50 runs: recompute them
    t = jaxgd.sweep(problem, "gd", lr=0.005, epochs=2, batch_size=1, sampling="replacement", seed=np.arange(50),
                    rng="numpy", final_only=True)  # the cloud's orders: the notebook's np.random streams
    w, b = np.asarray(t.params.w[:, -1]), np.asarray(t.params.b[:, -1])
    np.testing.assert_allclose(sgd["spread"][2], np.sqrt(np.mean((w - w.mean()) ** 2 + (b - b.mean()) ** 2)),
                               rtol=1e-12)
    # noiseless data: every example's gradient vanishes at the minimum, so a larger lr gathers the seeds there
    assert sgd["spread"][-1] < 0.05 * sgd["spread"][0]
    # the exercise cards' batch readouts: the centre and mean final loss of the 50 seeds at batch size 4
    t = jaxgd.sweep(problem, "gd", lr=0.01, epochs=2, batch_size=4, sampling="replacement", seed=np.arange(50),
                    rng="numpy", final_only=True)
    w, b, loss = np.asarray(t.params.w[:, -1]), np.asarray(t.params.b[:, -1]), np.asarray(t.loss[:, -1])
    j = list(sgd["spread_batches"]).index(4)
    np.testing.assert_allclose(sgd["centre_by_batch"][j], [w.mean(), b.mean(), loss.mean()], rtol=1e-9)
    np.testing.assert_allclose(sgd["spread_by_batch"][j], np.sqrt(np.mean((w - w.mean()) ** 2 + (b - b.mean()) ** 2)), rtol=1e-9)
    w, b, loss, div = _reference(0.01, 0.0, 5, "gd")
    one = dict(optimizer="gd", lrs=np.array([0.01]), knob=None, values=np.zeros(1), default=0, w=w[None, None],
               b=b[None, None], loss=loss[None, None], diverged_at=np.array([[div]]), limit=[None])
    e = {c["id"]: c for c in explore.exercises([one], cloud, 0.0)["cards"]}["e"]
    sp = np.array(sgd["spread_by_batch"])
    assert e["modes"] == [dict(mode="sgd", sampling="replacement", lr=0.01, epochs=2, largest=sgd["spread_batches"][sp.argmax()],
                               smallest=sgd["spread_batches"][sp.argmin()], spread_largest=sp.max(), spread_smallest=sp.min())]


def test_batch_phase_full_batch_row_is_gd_with_its_boundary(problem):
    """SGD's lr × batch size diagram: the batch = m row (one shuffled step over every example per
    epoch) is full-batch gd, run for run, and its loss grows past the theory's 2/λmax and falls below."""
    modes = [m for m in MODES if m.batch_size]
    _, ph = explore.seed_cloud(problem, modes, lambda m: (0.01, 10), seeds=10, spread_seeds=5, batch_phase=True)
    lrs, E = ph["lrs"], ph["epochs"]
    assert ph["final_loss"].shape == (100, 51) and list(ph["batch_sizes"]) == list(range(1, 52)) and E == 10
    np.testing.assert_array_equal(ph["steps"][0], [E * -(-51 // s) for s in range(1, 52)])
    f = jaxgd.sweep(problem, "gd", lr=lrs, epochs=E, final_only=True)
    ok = np.asarray(f.diverged_at) < 0
    np.testing.assert_array_equal(ph["diverged_at"][:, -1] < 0, ok)
    np.testing.assert_allclose(ph["final_loss"][ok, -1], np.asarray(f.loss[ok, -1]), rtol=1e-9)
    limit = 2 / float(theory(problem).eigenvalues[-1])
    start = float(problem.loss_fn(problem.init, problem.data, None))
    row = ph["final_loss"][:, -1]
    grows = (row > start) | (ph["diverged_at"][:, -1] >= 0)
    assert not grows[(lrs > 0.1 * limit) & (lrs < 0.95 * limit)].any() and grows[lrs > 1.2 * limit].all()


def test_basins_of_himmelblau_find_all_four_minima():
    p = jaxgd.problem("himmelblau")
    b = explore.basins(p, ["gd"], lambda o: (1e-2, 300), n=21)
    lab, steps = b["labels"]["gd"], b["steps"]["gd"]
    assert lab.shape == (21, 21) and set(np.unique(lab)) >= {0, 1, 2, 3}
    # steps taken: the first step within the tolerance of the minimum, as read off that start's path
    for i, j in [(2, 3), (10, 10), (18, 5)]:
        r = jaxgd.run(p, "gd", lr=1e-2, epochs=300, init=(float(b["w"][i]), float(b["b"][j])))
        d = np.hypot(np.asarray(r.params.w) - b["minima"][lab[i, j], 0], np.asarray(r.params.b) - b["minima"][lab[i, j], 1])
        assert steps[i, j] == np.flatnonzero(d < b["tol"])[0]
    # a start at a minimum stays in its basin
    for k, (mw, mb) in enumerate(b["minima"]):
        i, j = np.argmin(np.abs(b["w"] - mw)), np.argmin(np.abs(b["b"] - mb))
        assert lab[i, j] == k
    assert explore.basins(jaxgd.notebook(), ["gd"], lambda o: (0.05, 20)) is None  # one minimum: no section


def test_basin_steps_count_to_the_minimum_the_run_ends_at():
    """The steps of the basin map are the first visit of the minimum the run ends at, not of any
    minimum (issue 22): every start of a 21² grid against a NumPy heavy ball (v ← βv + (1−β)g,
    θ ← θ − lr·v) at the page's himmelblau momentum settings (lr 0.01, β 0.9, 500 steps). From
    (−5, 3) the path passes minimum 2 at step 4 and ends at minimum 1, first reached at step 62."""
    p = jaxgd.problem("himmelblau")
    b = explore.basins(p, ["momentum"], lambda o: (1e-2, 500), n=21)
    lab, steps = b["labels"]["momentum"], b["steps"]["momentum"]
    W, B = np.meshgrid(b["w"], b["b"], indexing="ij")
    x, v, path = np.stack([W, B]), np.zeros((2, 21, 21)), []
    for _ in range(501):
        path.append(x)
        u, s = x[0] ** 2 + x[1] - 11, x[0] + x[1] ** 2 - 7
        v = 0.9 * v + 0.1 * np.stack([4 * x[0] * u + 2 * s, 2 * u + 4 * x[1] * s])
        x = x - 1e-2 * v
    path = np.stack(path)  # (501, 2, 21, 21)
    d = np.hypot(path[:, None, 0] - b["minima"][:, 0, None, None], path[:, None, 1] - b["minima"][:, 1, None, None])
    end = np.argmin(d[-1], axis=0)  # (21, 21): the minimum each run ends nearest
    ok = np.take_along_axis(d[-1], end[None], 0)[0] < b["tol"]
    np.testing.assert_array_equal(lab, np.where(ok, end, -1))
    near = np.take_along_axis(d, end[None, None], 1)[:, 0] < b["tol"]  # (501, 21, 21): near the final minimum
    np.testing.assert_array_equal(steps, np.where(ok, np.argmax(near, axis=0), -1))
    i, j = 0, 16  # the start (−5, 3)
    assert (b["w"][i], b["b"][j]) == (-5.0, 3.0) and lab[i, j] == 0 and steps[i, j] == 62
    assert np.argmax(d[:, 1, i, j] < b["tol"]) == 4  # the first minimum it passes: what the page said


def _reference(lr, beta, T, rule):
    """A full-batch run of the notebook's NumPy loop (helpers.gd_loop): w, b, loss (T+1) and where it diverged."""
    with np.errstate(all="ignore"):
        w, b, loss, _ = helpers.gd_loop([np.arange(51)] * T, lr, rule=rule, hyper={"beta": beta})
    bad = ~np.isfinite(loss) | (np.abs(loss) > 1e6 * max(abs(loss[0]), 1))
    return w, b, loss, int(np.argmax(bad)) if bad.any() else -1


def test_exercise_readouts_against_a_numpy_loop(problem):
    """The cards' readouts (issue 22) of every what-if stop of gd and heavy ball, against the notebook's NumPy loop:
    steps to 1 % (from there on within 1 % of the start's height above the minimum, 0 here), final loss, W, b (none
    past a divergence: there they are rounding noise) and where the run diverged."""
    lrs = np.geomspace(1e-3, 10, 12)
    sweeps, _ = explore.lr_sweeps(problem, ["gd", "momentum"], lrs, 30, extra={"gd": [0.05]})  # the same call as above
    for opt, rule in [("gd", "gd"), ("momentum", "momentum")]:
        wf = explore.whatif(sweeps[opt], None, points=12)
        r = explore.readouts(wf, 0.0)
        assert r["steps"].shape == (12, len(wf["values"]))
        for i, lr in enumerate(wf["lrs"]):
            for k, beta in enumerate(wf["values"]):
                w, b, loss, div = _reference(lr, beta, 30, rule)
                assert r["diverged_at"][i, k] == div, (opt, lr, beta)
                assert r["steps"][i, k] == (helpers.settled_steps(loss) if div < 0 else -1), (opt, lr, beta)
                final = [r["loss"][i, k], r["w"][i, k], r["b"][i, k]]
                np.testing.assert_allclose(final, [loss[-1], w[-1], b[-1]] if div < 0 else [np.nan] * 3, rtol=1e-9, atol=1e-12)
    assert (explore.readouts(wf, 0.0)["steps"] >= 0).any() and (explore.readouts(wf, 0.0)["steps"] < 0).any()
    # a loss that swings through 1 % and out again has not settled; one that starts at the minimum has, at 0
    loss = np.array([[10, 0.05, 5, 0.05, 0.05], [10, 0.05, 0.05, 0.05, 5], [0, 0, 0, 0, 0], [10, 0.05, 0.05, 0.05, 0.05]])
    np.testing.assert_array_equal(explore.steps_to(loss, 0.0, np.array([-1, -1, -1, 3])), [3, -1, 0, -1])
    np.testing.assert_array_equal(explore.steps_to(loss + 7, 7.0, np.full(4, -1)), [3, -1, 0, 1])  # above a floor of 7


def test_exercise_cards_pick_their_stops():
    """Which stop answers each card, against a brute force over what-if-shaped records of the NumPy loop (100 steps):
    (a) gd's fewest steps to 1 %, (b) its smallest lr that gets there, (c) its first lr that diverges, (d) heavy
    ball's fastest lr at the default β, then at the largest β; none without a minimum's loss."""
    lrs, betas, T = np.geomspace(1e-3, 10, 13), np.array([0.0, 0.9, 0.98]), 100

    def record(opt, values, default):
        runs = [[_reference(lr, v, T, opt) for v in values] for lr in lrs]
        arr = lambda j: np.array([[run[j] for run in row] for row in runs])  # noqa: E731
        return dict(optimizer=opt, lrs=lrs, knob="β" if opt == "momentum" else None, values=values, default=default,
                    w=arr(0), b=arr(1), loss=arr(2), diverged_at=arr(3), limit=[None] * len(values))

    gd, hb = record("gd", np.zeros(1), 0), record("momentum", betas, 1)
    ex = explore.exercises([gd, hb], None, 0.0)
    cards = {c["id"]: c for c in ex["cards"]}
    assert set(cards) == set("abcd") and ex["steps"] == T and ex["batch"] is None
    steps = [helpers.settled_steps(loss[0]) if d[0] < 0 else -1 for loss, d in zip(gd["loss"], gd["diverged_at"])]
    ok = [i for i, s in enumerate(steps) if s >= 0]
    assert cards["a"]["answer"]["lr"] == min(ok, key=lambda i: (steps[i], gd["loss"][i, 0, -1]))
    assert cards["b"]["answer"]["lr"] == ok[0] and cards["b"]["crawl"]["lr"] == 0
    first = next(i for i in range(len(lrs)) if gd["diverged_at"][i, 0] >= 0)
    assert cards["c"]["answer"]["lr"] == first and cards["c"]["below"]["lr"] == first - 1
    hs = np.array([[helpers.settled_steps(hb["loss"][i, k]) if hb["diverged_at"][i, k] < 0 else -1 for k in range(3)] for i in range(13)])
    fastest = lambda k: min((i for i in range(13) if hs[i, k] >= 0), key=lambda i: (hs[i, k], hb["loss"][i, k, -1]))  # noqa: E731
    at = lambda v: (v["lr"], v["knob"])  # noqa: E731
    assert at(cards["d"]["start"]) == (fastest(1), 1) and at(cards["d"]["answer"]) == (fastest(1), 2)
    d = cards["d"]["answer"]  # a view carries its values and readouts
    assert (d["lr_value"], d["knob_value"], d["steps"], d["diverged_at"]) == (lrs[fastest(1)], 0.98, -1, -1)
    np.testing.assert_allclose([d["loss"], d["w"], d["b"], d["left"]], [*(hb[k][fastest(1), 2, -1] for k in ("loss", "w", "b")),
                               hb["loss"][fastest(1), 2, -1] / hb["loss"][fastest(1), 2, 0]], rtol=1e-12)
    assert (hs[:, 2] < 0).all()  # β 0.98 swings on: its loss shrinks by about β per step (√β its swing), 0.98¹⁰⁰ = 0.13
    np.testing.assert_array_equal(ex["readouts"][1]["steps"], hs)
    assert explore.exercises([gd], None, None) is None and explore.exercises([], None, 0.0) is None
    fast = {k: (v[ok[0]:] if k in ("lrs", "w", "b", "loss", "diverged_at") else v) for k, v in gd.items()}
    assert [c["id"] for c in explore.exercises([fast], None, 0.0)["cards"]] == ["a", "c"]  # even the smallest lr gets there: no (b)


def test_seed_cloud_split_by_batch_size_gives_the_same_cloud(problem, monkeypatch):
    """Past ORDER_BYTES of padded sample orders the small-batch call runs one call per batch size
    (report --epochs 4000: batch-1 runs of 5,000 steps beside batch-8 ones padded to them) one call per
    octave of batch sizes: the same numbers."""
    modes = [m for m in MODES if m.batch_size]
    kw = dict(seeds=3, spread_seeds=2, max_steps=200, batch_phase=True)
    one, ph1 = explore.seed_cloud(problem, modes, lambda m: (0.01, 4000), **kw)
    calls = []
    monkeypatch.setattr(explore, "ORDER_BYTES", 0)
    monkeypatch.setattr(explore, "sweep", lambda *a, **k: calls.append(k["batch_size"]) or sweep(*a, **k))
    split, ph2 = explore.seed_cloud(problem, modes, lambda m: (0.01, 4000), **kw)
    assert [sorted(set(c.tolist())) for c in calls[:-1]] == [[1], [2], [3, 4], [5, 6, 7, 8]] and min(calls[-1]) > 8
    for name in one:
        for k in ("w", "b", "spread"):
            np.testing.assert_allclose(split[name][k], one[name][k], rtol=1e-13, atol=1e-15)
    # a batch padded to 4 lanes where it was padded to 8 sums in another order: rounding, grown over 200
    # steps near divergence (5e-13 relative seen, on a loss of 2.8e7)
    np.testing.assert_allclose(ph2["final_loss"], ph1["final_loss"], rtol=1e-11)
