"""Preconditioned sharpness in the scan (``sharpness_of="preconditioned"``): λ₁(P⁻¹H) with P the
update's diagonal preconditioner, against dense eigenvalues with P rebuilt from the recorded second
moments, under a sweep of several optimizers, and Adam's edge of stability at 38/lr (Cohen et al. 2022)."""

from types import SimpleNamespace

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxgd
import jaxgd.plots
from jaxgd import survey
from jaxgd.curvature import sharpness_limit
from helpers import digits_mse_problem, iris_mlp_problem

pytestmark = pytest.mark.xdist_group("preconditioned_sharpness")  # its module fixtures are made once (make test: --dist loadgroup)

EVERY, EPOCHS = 3, 30
# one sweep of three optimizers (one program, a union): adam and rmsprop preconditioned, gd by the identity
OPTS, LRS = ["adam", "rmsprop", "gd", "adam"], [0.05, 0.01, 0.5, 0.02]


@pytest.fixture(scope="module")
def small():
    """A 4-10-3 tanh MLP (83 parameters) on 60 iris flowers, cross-entropy (test_sharpness's)."""
    return iris_mlp_problem()


@pytest.fixture(scope="module")
def swept(small):
    return jaxgd.sweep(small, OPTS, lr=LRS, epochs=EPOCHS, sharpness_every=EVERY, sharpness_of="preconditioned")


def _dense_hessians(problem, path):
    """The dense Hessians ``(K, n, n)`` at the ``K`` points of ``path`` (leaves with a leading axis)."""
    def hess(params):
        flat, unravel = ravel_pytree(params)
        return jax.hessian(lambda f: problem.loss_fn(unravel(f), problem.data, None))(flat)

    return np.asarray(jax.jit(jax.vmap(hess))(path))


def _preconditioner(opt, second, step, b1=0.9, b2=0.999, decay=0.9, eps=1e-8):
    """P of step ``step``'s update from the second moment recorded after it (flat), by optim.py's rules:
    rmsprop's d = g/(√s + ε) is P⁻¹g; adam's m̂/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ) is P⁻¹m for
    P = (1 − β₁ᵗ)(√v̂ + ε), t = step + 1."""
    t = step + 1
    if opt == "rmsprop":
        return np.sqrt(second) + eps
    if opt == "adam":
        return (1 - b1**t) * (np.sqrt(second / (1 - b2**t)) + eps)
    return np.ones_like(second)


def test_recorded_sharpness_equals_the_dense_top_eigenvalue_of_p_inverse_h(small, swept):
    assert small.num_params <= 500 and swept.sharpness.shape == (len(OPTS), EPOCHS)
    steps = np.arange(0, EPOCHS, EVERY)
    H = _dense_hessians(small, jax.tree.map(lambda a: a[:, :EPOCHS:EVERY].reshape(-1, *a.shape[2:]), swept.params))
    H = H.reshape(len(OPTS), len(steps), *H.shape[1:])
    second = swept.second_moment
    for r, opt in enumerate(OPTS):
        for i, t in enumerate(steps):
            v = np.asarray(ravel_pytree(jax.tree.map(lambda a: a[r, t], second))[0])
            P = _preconditioner(opt, v, t)
            dense = np.max(np.linalg.eigvals(H[r, i] / P[:, None]).real)  # eig(P⁻¹H), not symmetrised
            assert swept.sharpness[r, t] == pytest.approx(dense, rel=1e-6), (opt, t)
        top = np.linalg.eigvalsh(H[r])[:, -1]
        if opt == "gd":  # the identity: the Hessian's own top eigenvalue
            np.testing.assert_allclose(swept.sharpness[r, steps], top, rtol=1e-6)
        else:  # not the Hessian's
            assert (np.abs(swept.sharpness[r, steps] / top - 1) > 0.1).all()
    assert np.isnan(swept.sharpness[:, 1::EVERY]).all() and (swept.sharpness_hvps[:, 1::EVERY] == 0).all()
    assert (np.mean(swept.sharpness_hvps[:, EVERY::EVERY], axis=1) < swept.sharpness_hvps[:, 0]).all()  # warm starts


@pytest.mark.parametrize("r", [0, 1])
def test_sweep_equals_runs(small, swept, r):
    one = jaxgd.run(small, OPTS[r], lr=LRS[r], epochs=EPOCHS, sharpness_every=EVERY, sharpness_of="preconditioned")
    np.testing.assert_allclose(swept.sharpness[r], np.asarray(one.sharpness), rtol=1e-10)


@pytest.mark.parametrize("opt", ["gd", "momentum"])
def test_without_a_preconditioner_it_is_the_hessians_program(small, opt):
    """gd and momentum have P = I: asking for the preconditioned sharpness gives the same engine
    configuration (so the same program, and bit-identical numbers) as the Hessian's."""
    plan = lambda **kw: jaxgd.runs._plan(jaxgd.runs.check_run_args(small, opt, 0.1, 5, sharpness_every=2, **kw))[0]
    assert plan(sharpness_of="preconditioned") == plan() and plan().sharpness_of == "hessian"
    batch = jaxgd.runs.stack(small, [opt, "gd"], lr=0.1, epochs=5, sharpness=(2, 50, 1e-4), sharpness_of="preconditioned")
    assert batch.static.sharpness_of == "hessian"


def test_the_landscape_draws_adams_limit_and_says_what_it_measured(small, swept):
    """jaxgd.landscape's limits and settings for runs measured preconditioned (its own helpers, on the
    checked runs, so nothing compiles), and its sharpness figure of the swept runs: adam's limit is
    38/lr, its curve is labelled λ₁(P⁻¹H) and the title says so; gd's stays 2/lr."""
    check = lambda opt, lr: jaxgd.runs.check_run_args(small, opt, lr, EPOCHS, sharpness_every=EVERY,
                                                      sharpness_of="preconditioned")
    rcs = {"gd": check("gd", LRS[2]), "adam": check("adam", LRS[0])}
    ls = SimpleNamespace(limits={k: survey._limit(rc) for k, rc in rcs.items()},
                         settings={k: survey._settings(rc) for k, rc in rcs.items()},
                         trajectories=dict(zip(["adam", "gd"], jaxgd.runs.split(swept, OPTS, runs=[0, 2]))))
    assert ls.limits == {"gd": 2 / LRS[2], "adam": pytest.approx(38 / LRS[0], rel=1e-12)}
    assert ls.settings["adam"]["sharpness_of"] == "preconditioned" and "sharpness_of" not in ls.settings["gd"]
    fig = jaxgd.plots.sharpness(ls)
    names = [t.name for t in fig.data]  # adam's limit is far above its curve here: named, hidden
    assert names[:2] == ["adam: λ₁(P⁻¹H)", "adam stable below 760 (off the scale)"] and names[2:] == ["gd", "gd stable below 4"]
    assert "adam: λ₁(P⁻¹H), P the update's diagonal preconditioner" in fig.layout.title.text
    assert survey._limit(jaxgd.runs.check_run_args(small, "adam", LRS[0], EPOCHS, sharpness_every=EVERY)) is None


def test_limits():
    assert sharpness_limit("adam", 0.01, preconditioned=True) == pytest.approx(38 / 0.01, rel=1e-12)
    assert sharpness_limit("adam", 0.5, b1=0.5, preconditioned=True) == pytest.approx((2 + 1) / (0.5 * 0.5))
    assert sharpness_limit("rmsprop", 0.02, preconditioned=True) == pytest.approx(100.0)
    for opt, lr in [("gd", 0.5), ("momentum", 0.1)]:  # P = I: the Hessian's limits
        assert sharpness_limit(opt, lr, preconditioned=True) == sharpness_limit(opt, lr)
    assert sharpness_limit("adam", 0.01) is None and sharpness_limit("rmsprop", 0.01) is None  # λ₁(H): none
    assert sharpness_limit("newton", 0.1, preconditioned=True) is None


@pytest.mark.parametrize("kw,match", [
    (dict(optimizer="adam", sharpness_of="fisher"), "sharpness_of must be one of 'hessian', 'preconditioned'"),
    (dict(optimizer="newton", sharpness_of="preconditioned"), "sharpness_of 'preconditioned' knows the "
                                                              "preconditioners of rmsprop, adam, .*; not of newton"),
    (dict(optimizer="optax:adam", sharpness_of="preconditioned"), "not of optax:adam"),
])
def test_bad_sharpness_of(problem, kw, match):
    with pytest.raises(ValueError, match=match):
        jaxgd.run(problem, epochs=2, sharpness_every=1, **kw)
    with pytest.raises(ValueError, match=match):
        jaxgd.sweep(problem, [kw["optimizer"], "gd"], epochs=2, sharpness_every=1, sharpness_of=kw["sharpness_of"])


# Adam's edge of stability: β₁ = 0.9, β₂ = 0.99, ε = 1e-8, full batch on the edge-of-stability MLP
# (test_sharpness.digits_mse_problem: 64-32-32-10 tanh, 500 digits, squared error), 8 learning rates
# in one sweep, the preconditioned sharpness every 10 steps.
EOS_LRS, EOS_STEPS, EOS_EVERY, EOS_B2 = np.geomspace(2e-2, 1.2e-1, 8), 600, 10, 0.99


def test_adam_edge_of_stability():
    """λ₁(P⁻¹H) first lies far below 38/lr, rises to it, and then hovers there: within 10 % of 38/lr
    at every measurement of the second half of the run for at least 6 of the 8 learning rates."""
    p = digits_mse_problem()
    t = jaxgd.sweep(p, "adam", lr=EOS_LRS, epochs=EOS_STEPS, sharpness_every=EOS_EVERY,
                    sharpness_of="preconditioned", b1=0.9, b2=EOS_B2)
    ratio = t.sharpness[:, ::EOS_EVERY] * EOS_LRS[:, None] / 38  # λ₁(P⁻¹H) / (2 + 2β₁)/((1 − β₁)·lr)
    assert (ratio[:, 1:5] < 0.7).all()  # below the limit after the first step ...
    late = ratio[:, ratio.shape[1] // 2:]
    settled = np.all(np.abs(late - 1) < 0.1, axis=1)
    assert settled.sum() >= 6, np.round(late, 3)  # ... then at it
    assert (np.abs(late - 1) < 0.2).all()
    # at the edge of stability the loss spikes: the largest lr's last 100 steps span 0.4-6.9 % of the start,
    # and which value the last step lands on is decided by rounding (vmapped lanes and lanes one after
    # another agree to 1e-10 until steps 180-400, then part). Their median is 1.6 % in both layouts.
    assert (t.diverged_at == -1).all() and (np.median(t.loss[:, -100:], axis=1) < 0.02 * t.loss[:, 0]).all()
