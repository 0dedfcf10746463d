"""The report's explorables: the heavy-ball phase diagram against its theory boundary, what-if
sliders, the seed cloud and the basins of attraction (each from compiled sweeps)."""

import numpy as np
import pytest

import jaxgd
from jaxgd import runs
from jaxgd import explore
from jaxgd.app.presets import MODES
from jaxgd.curvature import theory


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
