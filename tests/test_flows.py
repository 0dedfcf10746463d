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
    a = flows.gradient_flow(f, init, lr=np.array([0.01, 0.02]), steps=20)
    n = len(traced)
    b = flows.gradient_flow(f, init, lr=np.array([0.03, 0.05]), steps=20)
    assert len(traced) == n
    for t, lrs in ((a, [0.01, 0.02]), (b, [0.03, 0.05])):
        times = np.asarray(lrs)[:, None] * np.arange(21)
        np.testing.assert_allclose(t.params["x"], np.exp(-times)[..., None] * init["x"], rtol=2e-6)  # RK4, h·λ ≤ 0.2
        np.testing.assert_allclose(t.params["y"], np.exp(-4 * times) * 0.5, rtol=2e-6)


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
    b = {"w": np.ones((2, 3, 4)), "b": np.full((2, 3), 3.0)}
    np.testing.assert_allclose(flows.distance(a, b, axes=2), np.full((2, 3), 5.0))
    with pytest.raises(ValueError, match="shape"):
        flows.distance(a, {"w": np.ones((2, 3, 5)), "b": b["b"]}, axes=2)
