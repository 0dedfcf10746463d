"""The comparison's statistics (jaxgd.compare_stats) against independent brute-force references:
quantiles against np.quantile, time to target against a loop, profile areas against a fine τ grid,
the expected best against enumerating every subset, Kendall's τ against a hand count."""

import itertools
import math

import numpy as np
import pytest

from jaxgd import compare_stats as cs
from jaxgd._checks import ArgumentError

INF = np.inf


# --- sensitivity -------------------------------------------------------------------------------

def test_sensitivity_matches_np_quantile_on_finite_scores():
    x = np.random.default_rng(0).lognormal(size=(4, 7, 5))
    for axis in (-1, 1):
        med, q1, q3 = cs.sensitivity(x, axis=axis)
        for got, q in ((med, 0.5), (q1, 0.25), (q3, 0.75)):
            np.testing.assert_allclose(got, np.quantile(x, q, axis=axis), rtol=1e-14)


def test_sensitivity_counts_diverged_seeds_as_inf():
    med, q1, q3 = cs.sensitivity(np.array([[1.0, 2.0, np.nan, 4.0, 5.0],      # one failure: q3 stays finite
                                           [1.0, np.nan, INF, -INF, 5.0],     # three of five: the median is inf
                                           [np.nan] * 5]))
    np.testing.assert_array_equal(med, [4.0, INF, INF])  # sorted: 1 2 4 5 inf
    np.testing.assert_array_equal(q1, [2.0, 5.0, INF])
    np.testing.assert_array_equal(q3, [5.0, INF, INF])
    # between a finite value and inf the quantile is inf, never NaN
    _, _, q3 = cs.sensitivity([1.0, 2.0, 3.0, np.nan])
    assert q3 == INF


# --- time to target ----------------------------------------------------------------------------

def _ttt_loop(curves, evals, target, k):
    out = np.empty(curves.shape[:-2])
    for idx in np.ndindex(*curves.shape[:-2]):
        times = []
        for seed in curves[idx]:
            t = INF
            for m, loss in enumerate(seed):
                if loss <= target:
                    t = evals[m]
                    break
            times.append(t)
        out[idx] = sorted(times)[k - 1]
    return out


@pytest.mark.parametrize("k", [1, 3, 5])
def test_time_to_target_matches_a_loop(k):
    rng = np.random.default_rng(1)
    steps = rng.integers(1, 4, size=12)
    evals = np.cumsum(steps).astype(float)  # uneven charges per point (line searches cost more)
    speed = rng.uniform(0.2, 1.2, size=(3, 4, 5, 1))  # per seed: some never reach the target
    curves = np.exp(-np.cumsum(rng.uniform(0, 0.5, size=(3, 4, 5, 12)) * speed, axis=-1))
    curves[0, 0, 1, 5:] = np.nan  # a seed that diverges
    got = cs.time_to_target(curves, evals, 0.2, k)
    assert got.shape == (3, 4)
    np.testing.assert_array_equal(got, _ttt_loop(curves, evals, 0.2, k))
    # both cases are exercised: some seeds reach the target, some never
    assert np.isinf(cs.time_to_target(curves, evals, 0.2, 5)).any() and np.isfinite(cs.time_to_target(curves, evals, 0.2, 1)).all()


def test_time_to_target_k_of_n_and_per_task_targets():
    curves = np.array([[[5, 3, 1, 0.5]] * 2 + [[5, 5, 5, 5]]] * 2, dtype=float)  # (2 tasks, 3 seeds, 4 points)
    evals = [0, 10, 20, 30]
    np.testing.assert_array_equal(cs.time_to_target(curves, evals, [3, 1], 2), [10, 20])
    np.testing.assert_array_equal(cs.time_to_target(curves, evals, 3, 3), [INF, INF])  # only 2 of 3 reach it


def test_time_to_target_refuses_k_above_n_and_bad_evals():
    curves = np.ones((2, 3, 4))
    with pytest.raises(ArgumentError, match=r"^k must be an integer in \[1, 3\]"):
        cs.time_to_target(curves, np.arange(4), 1.0, 4)
    with pytest.raises(ArgumentError, match="^k "):
        cs.time_to_target(curves, np.arange(4), 1.0, 0)
    with pytest.raises(ArgumentError, match="^evals .*nondecreasing"):
        cs.time_to_target(curves, [0, 2, 1, 3], 1.0, 1)
    with pytest.raises(ArgumentError, match=r"^evals must have shape \(4,\)"):
        cs.time_to_target(curves, np.arange(5), 1.0, 1)


# --- performance profiles ----------------------------------------------------------------------

COSTS = np.array([[10, 20, INF, 30, 5, INF],
                  [12, 10, 40, np.nan, 5, INF],
                  [30, 25, 50, 31, 6, INF]], dtype=float)  # last problem: nobody solves it


def test_profile_by_hand():
    rho = cs.performance_profile(COSTS, [1.0, 1.2, 2.0, 10.0])
    # ratios: solver 0: 1, 2, inf, 1, 1, inf; solver 1: 1.2, 1, 1, inf, 1, inf; solver 2: 3, 2.5, 1.25, 31/30, 1.2, inf
    np.testing.assert_allclose(rho, np.array([[3, 3, 4, 4], [3, 4, 4, 4], [0, 2, 3, 5]]) / 6, rtol=1e-15)


def test_profile_area_matches_numerical_integration():
    rng = np.random.default_rng(2)
    costs = rng.lognormal(3, 0.6, size=(4, 25))
    costs[rng.random(costs.shape) < 0.15] = INF
    for tau_max in (4.0, 2.5):
        taus = np.linspace(1, tau_max, 200_001)
        rho = cs.performance_profile(costs, taus)
        numeric = np.trapezoid(rho, taus, axis=-1) / (tau_max - 1)
        np.testing.assert_allclose(cs.profile_area(costs, tau_max), numeric, atol=2e-5)


def test_profile_edge_cases():
    assert (cs.profile_area(np.full((3, 4), INF)) == 0).all()  # all fail
    np.testing.assert_array_equal(cs.profile_area(np.full((3, 4), 7.0)), [1, 1, 1])  # ties: everyone is the best
    zero = cs.performance_profile([[0.0, 5.0], [0.0, 10.0], [1.0, 5.0]], [1.0, 3.0])  # a zero cost is the best
    np.testing.assert_array_equal(zero, [[1, 1], [0.5, 1], [0.5, 0.5]])
    with pytest.raises(ArgumentError, match="^costs must be non-negative"):
        cs.profile_area([[1.0, -1.0]])
    with pytest.raises(ArgumentError, match="^tau_max "):
        cs.profile_area(COSTS, 1.0)


def test_bootstrap_interval_holds_the_area_and_shrinks_with_more_problems():
    rng = np.random.default_rng(3)
    costs = rng.lognormal(3, 0.5, size=(3, 12)) * np.array([[1.0], [1.3], [2.0]])
    area = cs.profile_area(costs)
    low, high = cs.bootstrap_area(costs, n_boot=2000, seed=1)
    assert low.shape == high.shape == (3,)
    assert (low <= area).all() and (area <= high).all() and (low < high).all()
    more = np.tile(costs, 9)  # the same problems nine times: same area, interval about 3× narrower
    np.testing.assert_allclose(cs.profile_area(more), area, rtol=1e-12)
    low9, high9 = cs.bootstrap_area(more, n_boot=2000, seed=1)
    ratio = (high9 - low9) / (high - low)
    assert (ratio > 0.2).all() and (ratio < 0.5).all(), ratio
    # deterministic in the seed
    np.testing.assert_array_equal(cs.bootstrap_area(costs, n_boot=50, seed=4)[0], cs.bootstrap_area(costs, n_boot=50, seed=4)[0])


# --- expected best against tuning budget -------------------------------------------------------

def test_expected_best_matches_enumerating_every_subset():
    rng = np.random.default_rng(5)
    scores = np.round(rng.lognormal(size=9), 1)  # rounding makes ties
    scores[[2, 6]] = [np.nan, INF]
    scores[4] = scores[3]
    for failed in (INF, 50.0):
        got = cs.expected_best(scores, np.arange(1, 10), failed=failed)
        x = np.where(np.isfinite(scores), scores, failed)
        want = [np.mean([min(x[list(c)]) for c in itertools.combinations(range(9), b)]) for b in range(1, 10)]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isinf(cs.expected_best(scores, [1, 7])).tolist() == [True, False]  # 7 of 9 always draws a success


def test_expected_best_large_grid_is_stable_and_monotone():
    x = np.random.default_rng(6).lognormal(size=2000)
    e = cs.expected_best(x, [1, 2, 10, 100, 2000])
    np.testing.assert_allclose(e[[0, -1]], [x.mean(), x.min()], rtol=1e-12)
    assert (np.diff(e) < 0).all()
    b = 2  # E[min of 2] = sum over pairs / C(N,2)
    s = np.sort(x)
    np.testing.assert_allclose(e[1], (s * (len(s) - 1 - np.arange(len(s)))).sum() / math.comb(len(s), b), rtol=1e-12)


def test_expected_best_refuses_budgets_outside_the_grid():
    with pytest.raises(ArgumentError, match=r"^budgets must be integers in \[1, 3\]"):
        cs.expected_best([1.0, 2.0, 3.0], [4])
    with pytest.raises(ArgumentError, match="^budgets "):
        cs.expected_best([1.0, 2.0, 3.0], [0])
    with pytest.raises(ArgumentError, match="^budgets "):
        cs.expected_best([1.0, 2.0, 3.0], [1.5])
    np.testing.assert_array_equal(cs.expected_best([1.0, 2.0, 3.0], np.array([1.0, 3.0])), [2.0, 1.0])  # whole floats


# --- ranking stability -------------------------------------------------------------------------

def test_kendall_tau_by_hand():
    # x ranks a<b<c<d; y ranks b<a<c<d: one discordant pair of six -> (5 - 1) / 6
    assert cs.kendall_tau([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(4 / 6, abs=1e-15)
    assert cs.kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    # tau-b with a tie in y: pairs (a,b) tie; concordant 5, discordant 0, n0=6, ties_y=1 -> 5/sqrt(6*5)
    assert cs.kendall_tau([1, 2, 3, 4], [1, 1, 3, 4]) == pytest.approx(5 / math.sqrt(30), abs=1e-15)
    assert cs.kendall_tau([1, INF, INF], [1, 5, 5]) == 1.0  # inf ties with inf
    assert math.isnan(cs.kendall_tau([2, 2, 2], [1, 2, 3]))


def test_best_in_window_searches_the_second_axis_and_refuses_an_empty_window():
    lrs = np.array([1e-3, 1e-2, 1e-1, 1.0])
    final = np.array([[5.0, 4.0], [3.0, np.nan], [1.0, 2.0], [INF, INF]])
    assert cs.best_in_window(final, lrs, 1e-3, 1.0) == (1.0, 0.1, (2, 0))
    assert cs.best_in_window(final, lrs, 1e-3, 1e-2) == (3.0, 1e-2, (1, 0))
    b = cs.best_in_window(final, lrs, 0.5, 2.0)
    assert b.score == INF and math.isnan(b.lr)
    with pytest.raises(ArgumentError, match="^lo and hi hold no learning rate"):
        cs.best_in_window(final, lrs, 2.0, 3.0)


def test_ranking_flips_when_the_search_space_shifts():
    lrs = np.logspace(-4, 0, 9)
    u = np.log10(lrs)
    final = {"gd": 1 + (u + 1) ** 2,                  # best at 1e-1
             "adam": 0.5 + (u + 3) ** 2,              # best (overall) at 1e-3
             "momentum": np.stack([2 + (u + 2) ** 2, 0.8 + (u + 2) ** 2], axis=1)}  # (L, 2): second axis searched
    final["gd"][-1] = np.nan  # lr = 1 diverges
    rep = cs.ranking_stability(final, lrs)
    assert rep["full"]["ranking"] == ["adam", "momentum", "gd"] and rep["full"]["winner"] == "adam"
    assert rep["full"]["kendall_tau"] == 1.0
    low, high = rep["windows"]["low"], rep["windows"]["high"]
    assert (low["winner"], low["winner_changed"], low["kendall_tau"]) == ("adam", False, 1.0)
    # high = [1e-2, 1]: adam 0.5+1=1.5, momentum 0.8+0=0.8, gd 1+0=1 -> momentum, gd, adam: τ = (1 - 2)/3
    assert high["ranking"] == ["momentum", "gd", "adam"] and high["winner_changed"]
    assert high["kendall_tau"] == pytest.approx(-1 / 3, abs=1e-15)
    assert high["lr"]["gd"] == pytest.approx(0.1) and high["best"]["momentum"] == pytest.approx(0.8)
    assert set(rep["windows"]) == {"full", "middle", "low", "high", "narrow"}
    # explicit windows; per-optimizer lr grids
    rep2 = cs.ranking_stability({"a": [1.0, 2.0], "b": [2.0, 1.0]}, {"a": [1e-2, 1e-1], "b": [1e-1, 1.0]}, [(1e-2, 1e-1)])
    assert rep2["windows"]["0"]["best"] == {"a": 1.0, "b": 2.0}
    rep3 = cs.ranking_stability({"a": [1.0, 2.0], "b": [2.0, 0.5]}, {"a": [1e-2, 1e-1], "b": [1e-1, 1.0]}, {"top": (0.5, 1.0)})
    top = rep3["windows"]["top"]  # a's grid has no lr there: it scores inf, and b wins
    assert top["best"] == {"a": INF, "b": 0.5} and math.isnan(top["lr"]["a"]) and top["ranking"] == ["b", "a"]
    assert rep3["full"]["winner"] == "b" and not top["winner_changed"]
    with pytest.raises(ArgumentError, match="^hi must be"):
        cs.ranking_stability({"a": [1.0, 2.0]}, [1e-2, 1e-1], [(1e-1, 1e-2)])


# --- the figures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def figs():
    pytest.importorskip("plotly")
    from jaxgd.plots import compare_figs

    return compare_figs


def test_profile_figure_draws_each_row_as_steps_with_its_area(figs):
    taus = np.linspace(1, 4, 31)
    rho = cs.performance_profile(COSTS, taus)
    area, (lo, hi) = cs.profile_area(COSTS), cs.bootstrap_area(COSTS, n_boot=100)
    names = ["gd", "adam", "mine"]
    fig = figs.performance_profiles(taus, dict(zip(names, rho)), dict(zip(names, area)),
                                    {n: (a, b) for n, a, b in zip(names, lo, hi)})
    assert len(fig.data) == 3
    for tr, row, a in zip(fig.data, rho, area):
        np.testing.assert_array_equal(tr.y, row)
        assert tr.line.shape == "hv" and f"area {a:.3f}" in tr.name
    assert fig.data[0].line.color == "#d62728" and fig.data[1].line.color == "#ff7f0e"  # the shared colours


def test_sensitivity_figure_shows_failures_as_gaps_and_markers(figs):
    lrs = np.array([1e-3, 1e-2, 1e-1, 1.0])
    final = np.array([[1e-2, 2e-2, 3e-2], [0.0, 1e-40, 1e-3], [1e-1, 2e-1, np.nan], [np.nan, np.inf, 5.0]])
    med, q1, q3 = cs.sensitivity(final)  # the median fails at lr = 1, q3 at lr = 0.1
    fig = figs.lr_sensitivity(lrs, {"adam": med}, {"adam": q1}, {"adam": q3}, task="quadratic")
    band, line, marks = fig.data
    y = np.array(line.y, dtype=float)
    assert np.isnan(y[3]) and line.connectgaps is False
    np.testing.assert_allclose(y[:3], [2e-2, 1e-30, 2e-1])  # 1e-40 drawn at the floor
    np.testing.assert_array_equal(marks.x, [1.0])
    top = marks.y[0]
    assert marks.marker.symbol == "x" and top >= 10 * 2e-1
    assert band.fill == "toself" and band.y[2] == top  # the band over lrs 1e-3..1e-1 reaches the top where q3 fails
    assert list(band.x) == [1e-3, 1e-2, 1e-1, 1e-1, 1e-2, 1e-3, None]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log" and "quadratic" in fig.layout.title.text


def test_expected_best_figure_leaves_a_gap_for_an_infinite_expectation(figs):
    scores = np.array([1.0, 0.5, np.nan, 0.2])
    b = np.arange(1, 5)
    fig = figs.expected_best_curve(b, {"gd": cs.expected_best(scores, b)})
    y = np.array(fig.data[0].y, dtype=float)
    assert np.isnan(y[0]) and np.isfinite(y[1:]).all()
    np.testing.assert_allclose(y[-1], 0.2)


def test_ranking_heatmap_gives_tied_failures_one_rank(figs):
    lrs = np.array([1e-2, 1e-1, 1.0])
    rep = cs.ranking_stability({"a": [3.0, 2.0, 1.0], "b": [1.5, np.nan, np.nan], "c": [np.nan, np.nan, 0.5]}, lrs,
                               {"low": (1e-2, 1e-1)})
    hm = figs.ranking_heatmap(rep).data[0]
    np.testing.assert_array_equal(hm.z, [[2, 2], [3, 1], [1, 3]])  # full: c, a, b; low: b, a, then c failed
    assert hm.text[2][1].endswith("failed") and "★" in hm.x[1] and hm.y == ("a", "b", "c")
