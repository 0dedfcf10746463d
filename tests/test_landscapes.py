"""The classic landscapes: closed-form gradients against jax.grad, minima, and the engine on them."""

import json

import numpy as np
import pytest

import jaxgd
from jaxgd.landscapes import LANDSCAPES
from jaxgd import sweep
from jaxgd import theory

VALUES = {  # f at a few points, by hand
    "rosenbrock": [((1.0, 1.0), 0.0), ((0.0, 0.0), 1.0), ((-1.0, 2.0), 4.0 + 100.0)],
    "beale": [((3.0, 0.5), 0.0), ((0.0, 0.0), 1.5**2 + 2.25**2 + 2.625**2)],
    "himmelblau": [((3.0, 2.0), 0.0), ((0.0, 0.0), 121.0 + 49.0)],
    "rastrigin": [((0.0, 0.0), 0.0), ((1.0, 0.0), 1.0), ((0.5, 0.5), 20 + 0.5 + 20)],
    "ill_conditioned": [((0.0, 0.0), 0.0), ((1.0, 1.0), 2.1)],
    "saddle": [((0.0, 0.0), 0.0), ((1.0, 2.0), -3.0)],
}


@pytest.mark.parametrize("name", sorted(LANDSCAPES))
def test_values_gradient_and_minima(name):
    p = LANDSCAPES[name]()
    assert p.data is None and p.num_examples is None and p.param_names == ("a", "b")
    for (a, b), f in VALUES[name]:
        np.testing.assert_allclose(float(p.loss(jaxgd.Params(a, b))), f, rtol=1e-12, atol=1e-12)
    g = np.linspace(*p.w_range, 23), np.linspace(*p.b_range, 19)
    gc = jaxgd.grad_check(p, *g)
    assert gc.max_rel_error < 1e-12, gc.max_rel_error
    for m in p.minima:  # the gradient vanishes at each known minimum (to their printed digits)
        gm = p.grad(jaxgd.Params(*m))
        assert np.hypot(float(gm.w), float(gm.b)) < 1e-4
    S = np.asarray(jaxgd.loss_surface(p, *g))
    assert S.shape == (23, 19)
    np.testing.assert_allclose(S[3, 5], float(p.loss(jaxgd.Params(g[0][3], g[1][5]))), rtol=1e-13)


def test_engine_runs_on_a_landscape_one_step_per_epoch():
    p = jaxgd.landscapes.ill_conditioned()
    t = jaxgd.run(p, "gd", lr=0.2, epochs=100)
    assert t.steps == 100
    np.testing.assert_allclose(np.asarray(t.params.b)[1:4], 2.5 * (1 - 0.2 * 4) ** np.arange(1, 4), rtol=1e-12)
    with pytest.raises(ValueError, match="batch_size does not apply to problem 'ill_conditioned'"):
        jaxgd.run(p, "gd", batch_size=2)
    s = sweep(p, "gd", lr=np.array([0.1, 0.2, 0.6]), epochs=200, final_only=True)
    assert list(np.asarray(s.diverged_at) >= 0) == [False, False, True]  # 2/λmax = 2/4 = 0.5
    assert theory(p).stability_limit == pytest.approx(0.5, rel=1e-12)
    assert theory(p).condition_number == pytest.approx(20.0, rel=1e-12)


def test_saddle_divergence_is_detected_though_its_loss_goes_negative():
    t = jaxgd.run(jaxgd.landscapes.saddle(), "gd", lr=0.1, epochs=200)
    k = int(t.diverged_at)
    assert k > 0 and float(t.loss[k]) < -1e6  # |loss| blew up, below zero
    assert np.all(np.asarray(t.loss)[:k] > -1e6 * 2.25)


def test_rosenbrock_adam_gets_close():
    t = jaxgd.run(jaxgd.landscapes.rosenbrock(), "adam", lr=0.02, epochs=5000)
    assert float(t.loss[-1]) < 1e-4


# ----------------------------------------------------------------------------- second-order methods


def test_newton_one_step_lands_on_the_minimum_of_a_quadratic(problem):
    t = jaxgd.run(problem, "newton", lr=1.0, epochs=1)
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)], list(problem.minimum), rtol=1e-12)
    q = jaxgd.landscapes.ill_conditioned()
    t = jaxgd.run(q, "newton", lr=1.0, epochs=1)
    np.testing.assert_allclose([float(t.final.w), float(t.final.b)], [0.0, 0.0], atol=1e-15)
    half = jaxgd.run(q, "newton", lr=0.5, epochs=1)  # lr scales the Newton step
    np.testing.assert_allclose([float(half.final.w), float(half.final.b)], [-2.25, 1.25], rtol=1e-12)


def test_newton_damping_and_minibatches(problem):
    t = jaxgd.run(problem, "newton", lr=1.0, epochs=1, batch_size=8, rng="numpy", seed=1)  # batch Hessians
    x, y = (np.asarray(a) for a in problem.data)
    from jaxgd.data import numpy_order

    o = numpy_order(1, 51, 8, 1, "shuffle")
    idx = np.asarray(o.idx)[0]
    w_star, b_star = np.polyfit(x[idx], y[idx], 1)  # the first step solves the first batch exactly
    np.testing.assert_allclose([float(t.params.w[1]), float(t.params.b[1])], [w_star, b_star], rtol=1e-10)
    with pytest.raises(ValueError, match="damping must be a finite number >= 0"):
        jaxgd.run(problem, "newton", damping=-1.0)


def test_lbfgs_solves_rosenbrock():
    t = jaxgd.run(jaxgd.landscapes.rosenbrock(), "lbfgs", lr=1.0, epochs=100)
    assert float(t.loss[-1]) < 1e-12 and int(t.diverged_at) == -1


# ----------------------------------------------------------------------------- CLI and report


def test_cli_problem_flag(tmp_path, cli):

    code, out, err = cli(["run", "--problem", "rosenbrock", "--optimizer", "lbfgs", "--lr", "1", "--epochs", "60",
                           "--json", "-"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["config"]["problem"] == "rosenbrock" and doc["config"]["init"] == [-1.5, 2.5]
    assert abs(doc["final"]["w"] - 1) < 1e-8 and abs(doc["final"]["b"] - 1) < 1e-8
    code, out, err = cli(["report", "--problem", "himmelblau", "--grid", "31", "--no-png", "--no-sweep",
                           "--out", str(tmp_path)])
    assert code == 0, err
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["problem"]["name"] == "himmelblau" and len(res["problem"]["minima"]) == 4
    assert [(r["optimizer"], r["mode"]) for r in res["runs"]] == [(o, "full") for o in ("gd", "momentum", "rmsprop",
                                                                                        "adam")]
    html = (tmp_path / "report.html").read_text()
    assert 'id="data"' not in html and "Known minima" in html and "final a" in html
    assert "a = " in out


# ----------------------------------------------------------------------------- theory against measurement


def _rate(t, minimum, start, stop):
    """Measured per-step contraction of the distance to the minimum, geometric mean over [start, stop)."""
    e = np.hypot(np.asarray(t.params.w) - minimum[0], np.asarray(t.params.b) - minimum[1])
    return (e[stop] / e[start]) ** (1 / (stop - start))


def test_gd_contracts_at_the_predicted_rate(problem):
    th = theory(problem)
    lo, hi = th.eigenvalues
    for lr in (0.05, th.optimal_lr, 0.11):
        t = jaxgd.run(problem, "gd", lr=float(lr), epochs=120)
        predicted = max(abs(1 - lr * lo), abs(1 - lr * hi))
        np.testing.assert_allclose(_rate(t, problem.minimum, 40, 110), predicted, rtol=1e-6)
    kappa = th.condition_number
    np.testing.assert_allclose(max(abs(1 - th.optimal_lr * lo), abs(1 - th.optimal_lr * hi)),
                               (kappa - 1) / (kappa + 1), rtol=1e-12)


def test_heavy_ball_with_polyak_parameters_contracts_at_the_predicted_rate(problem):
    th = theory(problem)
    t = jaxgd.run(problem, "momentum", lr=th.polyak_lr, beta=th.polyak_beta, epochs=300)
    predicted = (np.sqrt(th.condition_number) - 1) / (np.sqrt(th.condition_number) + 1)
    # steps 5 to 40: the error falls from about 1 to about 1e-11, above float64's floor near the
    # minimum. Polyak's parameters give a double eigenvalue ρ, so the error goes as t·ρᵗ and the
    # measured rate lies between ρ and ρ·(40/5)^(1/35).
    measured = _rate(t, problem.minimum, 5, 40)
    assert predicted <= measured <= predicted * (40 / 5) ** (1 / 35) * 1.01, (measured, predicted)
    plain = jaxgd.run(problem, "gd", lr=th.optimal_lr, epochs=300)
    assert measured < _rate(plain, problem.minimum, 5, 40)  # momentum beats the best plain gd
