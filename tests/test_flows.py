"""Flows beside gd (jaxgd.flows): gradient flow and the modified flow against their closed forms
on the notebook's quadratic, the orders of the gd–flow gaps (O(η) and O(η²), fitted log–log
slopes), and the central flow on a small edge-of-stability MLP, where it tracks gd past the 2/η
crossing while gradient flow leaves it."""

import jax
import numpy as np
import pytest
from scipy.linalg import expm

import jaxgd
from jaxgd import flows
from jaxgd.datasets import load
from jaxgd.models import mlp

pytestmark = pytest.mark.xdist_group("flows")  # its module fixtures are made once (make test: --dist loadgroup)

LRS = np.array([1e-3, 2e-3, 4e-3, 8e-3])  # η·λmax from 0.017 to 0.14 (λmax = 17.3)
HORIZON = 0.5  # time t = k·η over which the gaps are measured; the gaps peak before it (at 1/λ)
STEPS = int(round(HORIZON / LRS[0]))


@pytest.fixture(scope="module")
def quadratic(problem):
    """gd, gradient flow and the modified flow on the notebook, each one vmapped call over LRS."""
    gd = jaxgd.sweep(problem, "gd", lr=LRS, epochs=STEPS)
    return {"gd": gd, "gradient": flows.gradient_flow(problem, lr=LRS, steps=STEPS),
            "modified": flows.modified_flow(problem, lr=LRS, steps=STEPS)}


@pytest.mark.parametrize("kind", ["gradient", "modified"])
def test_flows_equal_their_closed_forms(problem, quadratic, kind):
    """On L = ½(θ−θ*)ᵀH(θ−θ*) gradient flow is θ* + e^{−Ht}(θ₀−θ*), the modified flow the same with
    H + (η/2)H² (the gradient of L + (η/4)‖∇L‖²): an independent reference (scipy's expm)."""
    H = jaxgd.hessian(problem, problem.init)
    star, start = np.array(problem.minimum), np.array(problem.init)
    t = quadratic[kind]
    for i, lr in enumerate(LRS):
        M = H if kind == "gradient" else H + lr / 2 * H @ H
        k = np.arange(0, STEPS + 1, STEPS // 10)
        exact = np.stack([star + expm(-M * j * lr) @ (start - star) for j in k])
        got = np.stack([t.params.w[i, k], t.params.b[i, k]], axis=1)
        np.testing.assert_allclose(got, exact, atol=1e-5 * (lr / LRS[-1]) ** 3 + 1e-9)  # RK4: O(η⁴) a unit time


def _slope(kind, quadratic):
    d = flows.distance(quadratic["gd"].params, quadratic[kind].params, axes=2)
    gaps = np.array([d[i, :int(round(HORIZON / lr)) + 1].max() for i, lr in enumerate(LRS)])
    return np.polyfit(np.log(LRS), np.log(gaps), 1)[0], gaps


@pytest.mark.parametrize("kind,order,tol", [("gradient", 1, 0.1), ("modified", 2, 0.2)])
def test_gd_follows_gradient_flow_to_order_one_and_the_modified_flow_to_order_two(quadratic, kind, order, tol):
    """max over t = kη ≤ 0.5 of ‖θ_gd(k) − θ_flow(kη)‖ against η: a log–log line of slope 1 (gradient
    flow) and 2 (the modified flow: backward error analysis, Barrett & Dherin 2021)."""
    slope, gaps = _slope(kind, quadratic)
    print(f"\n{kind} flow: gaps {np.array2string(gaps, precision=3)} at η = {LRS}, slope {slope:.3f}")
    assert abs(slope - order) <= tol, (slope, gaps)


def test_a_scalar_lr_is_one_run_of_the_sweep(problem, quadratic):
    one = flows.gradient_flow(problem, lr=float(LRS[1]), steps=50)
    assert one.params.w.shape == (51,)
    np.testing.assert_allclose(one.params.w, quadratic["gradient"].params.w[1, :51], rtol=1e-12)


def test_a_bare_function_compiles_once():
    """A function of the parameters (any pytree) with its start; a second call at other learning
    rates of the same shape traces nothing again (the count of traces of f does not change)."""
    traced = []

    def f(p):
        traced.append(1)
        return 0.5 * (p["x"] ** 2).sum() + 2.0 * p["y"] ** 2

    init = {"x": np.array([1.0, -2.0]), "y": np.array(0.5)}
    a = flows.gradient_flow(f, init, lr=np.array([0.01, 0.02]), steps=20, c=0.05)
    n = len(traced)
    b = flows.gradient_flow(f, init, lr=np.array([0.03, 0.05]), steps=20, c=0.05)  # c is traced too
    assert len(traced) == n
    for t, lrs in ((a, [0.01, 0.02]), (b, [0.03, 0.05])):
        times = np.asarray(lrs)[:, None] * np.arange(21)
        np.testing.assert_allclose(t.params["x"], np.exp(-times)[..., None] * init["x"], rtol=1e-6)  # RK4, h·λ ≤ 0.05
        np.testing.assert_allclose(t.params["y"], np.exp(-4 * times) * 0.5, rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda p: flows.flow("euler", p), "kind must be one of"),
    (lambda p: flows.gradient_flow(p, lr=lambda k: 0.1), "not a schedule"),
    (lambda p: flows.gradient_flow(p, lr=-0.1), "lr must hold"),
    (lambda p: flows.central_flow(p, steps=0), "steps must be an integer"),
    (lambda p: flows.gradient_flow(lambda q: q ** 2), "init is required"),
    (lambda p: flows.gradient_flow(p, c=3.0), "c must be"),
])
def test_bad_arguments(problem, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(problem)


def test_distance_of_paths():
    a = {"w": np.zeros((2, 3, 4)), "b": np.zeros((2, 3))}
    b = {"w": np.full((2, 3, 4), 2.0), "b": np.full((2, 3), 3.0)}  # √(4·2² + 3²) = 5
    np.testing.assert_allclose(flows.distance(a, b, axes=2), np.full((2, 3), 5.0))
    with pytest.raises(ValueError, match="shape"):
        flows.distance(a, {"w": np.ones((2, 3, 5)), "b": b["b"]}, axes=2)


def test_time_average():
    a = {"w": np.arange(10.0).reshape(2, 5)}
    np.testing.assert_allclose(flows.time_average(a, 2, axes=2)["w"], [[0.5, 1.5, 2.5, 3.5], [5.5, 6.5, 7.5, 8.5]])
    np.testing.assert_allclose(flows.time_average({"w": np.arange(5.0)}, 3)["w"], [1.0, 2.0, 3.0])


# --- the central flow at the edge of stability ----------------------------------------------------
EOS_LR, EOS_WARM, EOS_STEPS, EOS_EVERY = 0.3, 340, 460, 10


@pytest.fixture(scope="module")
def eos():
    """A 64-16-16-10 tanh MLP (1,482 parameters) on 100 digits with the squared error (Cohen et
    al.'s MSE set-up, small: test_sharpness.digits_mse_problem with m=100, hidden=16). gd at η = 0.3
    (2/η = 6.67): the sharpness drops from 25.8 to 5.3 in the first steps (a catapult), sharpens,
    crosses 2/η near step 110, overshoots to 7.8 and settles at 2/η by step ~300. The flows start at
    gd's iterate EOS_WARM = 340 (past the crossing, at the edge) and run EOS_STEPS = 460 steps
    beside gd."""
    d = load("digits")
    model = mlp((64, 16, 16, 10), "tanh", "classification", loss="mse")
    p = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:100], d.y[:100]))
    gd = jaxgd.run(p, "gd", lr=EOS_LR, epochs=EOS_WARM + EOS_STEPS, sharpness_every=EOS_EVERY)
    start = jax.tree.map(lambda a: a[EOS_WARM], gd.params)
    kw = dict(lr=EOS_LR, steps=EOS_STEPS, sharpness_every=EOS_EVERY)
    return dict(gd=gd, path=jax.tree.map(lambda a: a[EOS_WARM:], gd.params),
                gradient=flows.gradient_flow(p, start, **kw), central=flows.central_flow(p, start, **kw))


def test_the_central_flow_holds_the_sharpness_at_2_over_lr_and_gradient_flow_leaves_it(eos):
    edge = 2 / EOS_LR
    k = flows.crossing(eos["gd"].sharpness, EOS_LR)
    assert k is not None and k < EOS_WARM - 100  # gd crossed well before the flows start ...
    s_gd = np.asarray(eos["gd"].sharpness)[EOS_WARM::EOS_EVERY]
    assert np.all(np.abs(s_gd - edge) < 0.05 * edge)  # ... and hovers at 2/η beside them
    s_cf = np.asarray(eos["central"].sharpness)[::EOS_EVERY]
    assert np.all(s_cf <= edge * (1 + 1e-3))  # the central flow never passes the edge: it starts below
    np.testing.assert_allclose(s_cf[3:], edge, rtol=1e-3)  # (at 6.44), reaches it by step 30 and rides it
    assert np.asarray(eos["gradient"].sharpness)[-EOS_EVERY] > 1.05 * edge  # gradient flow sharpens past it


def test_past_the_crossing_gd_follows_the_central_flow_not_gradient_flow(eos):
    """gd's time-averaged path (over its period-2 oscillation) against each flow's: the central flow
    within 20 % of gradient flow's distance from step 150 of the comparison on (after gd's first
    self-stabilisation cycle beside the flows), and on average from step 100. The raw distances
    (gd's iterates, oscillation included): within 20 % over the last 60 steps, once gradient flow
    has gone far enough that gd's oscillation (~0.02) is small beside its distance."""
    avg = lambda t: flows.time_average(t, 2)
    d_cf = flows.distance(avg(eos["path"]), avg(eos["central"].params))
    d_gf = flows.distance(avg(eos["path"]), avg(eos["gradient"].params))
    raw = flows.distance(eos["path"], eos["central"].params) / np.maximum(flows.distance(eos["path"], eos["gradient"].params), 1e-300)
    ratio = d_cf / d_gf
    last = EOS_STEPS - 60
    print(f"\ntime-averaged gd–central / gd–gradient: steps 150..{EOS_STEPS} max {ratio[150:].max():.3f}, steps "
          f"100..{EOS_STEPS} mean {ratio[100:].mean():.3f} (max {ratio[100:].max():.3f}); at the end {d_cf[-1]:.4f} / "
          f"{d_gf[-1]:.4f}; raw ratio (gd's oscillation included): steps 150..{EOS_STEPS} max {raw[150:].max():.3f}, "
          f"steps {last}..{EOS_STEPS} max {raw[last:].max():.3f}, at the end {raw[-1]:.3f}")
    assert ratio[150:].max() <= 0.2 and ratio[100:].mean() <= 0.2
    assert raw[last:].max() <= 0.2
    assert d_gf[-1] > 2 * d_gf[100 // 2]  # gradient flow keeps leaving gd


def test_the_figures_draw_gd_and_each_flow(problem, quadratic):
    """flow_contour: gd as dots, each flow as a line (the central flow dashed); flow_gaps: one curve
    per flow and the 2/η line. (Looked at as PNGs: see the README's flows section.)"""
    plots = pytest.importorskip("jaxgd.plots")
    one = lambda t, label: plots.Path(label, t.params.w[1, :40], t.params.b[1, :40], t.loss[1, :40])
    w, b = np.linspace(-8, 8, 21), np.linspace(-8, 8, 23)
    S = np.asarray(jaxgd.loss_surface(problem, w, b))
    fig = plots.flow_contour(w, b, S, one(quadratic["gd"], "gd"),
                             [one(quadratic["gradient"], "gradient flow"), one(quadratic["modified"], "modified flow")])
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert {"gd", "gradient flow", "modified flow"} <= set(labels)
    d = {"gradient flow": np.linspace(1, 2, 10), "central flow": np.linspace(0.1, 0.2, 10)}
    fig = plots.flow_gaps(d, 0.3, {"gd": np.full(10, 6.6), "central flow": np.full(10, 6.67)}, crossing=3)
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) == 3  # two curves and the crossing


@pytest.mark.parametrize("kind,lam,want", [("gradient", 10.0, 2), ("gradient", 0.1, 1), ("gradient", -5.0, 1),
                                           ("modified", 10.0, 3), ("central", np.nan, 1),
                                           ("gradient", np.inf, flows.MAX_SUBSTEPS)])
def test_substeps_keep_h_times_stiffness_at_most_c(kind, lam, want):
    """η = 0.1, c = 0.5: n = ceil(η·λ̃/c), λ̃ = λ (gradient, central) or λ + (η/2)λ² (modified: 15)."""
    assert int(flows.substeps(kind, lam, 0.1, 0.5)) == want
