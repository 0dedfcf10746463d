"""The curvature audit (jaxgd.spectrum's trace, density and top-k estimators) against the truth:
dense float64 Hessians from jax.hessian and NumPy's eigh, and the estimators' own sampling error."""

from __future__ import annotations

import io

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import mlp_loss_on, mlp_params
from jaxgd import spectrum as sp
from jaxgd._checks import ArgumentError, ArgumentTypeError

pytestmark = pytest.mark.xdist_group("spectrum_audit")  # its module fixtures are made once (make test: --dist loadgroup)

# --- problems (data from NumPy: nothing compiles at import) ----------------------------------

_rng = np.random.default_rng(20)
X = _rng.standard_normal((64, 4))
Y = np.sin(2 * X[:, :1]) + X[:, 1:2]
mlp_loss = mlp_loss_on(X, Y)
PARAMS = mlp_params(4, (4, 12, 8, 1))  # 173 parameters, leaves layer0/b, layer0/w, layer1/b, ...

N_LOW = 100
_U = np.linalg.qr(_rng.standard_normal((N_LOW, N_LOW)))[0]
_LAM_LOW = np.r_[100.0, 60.0, 40.0, 25.0, 10.0, 0.01 * _rng.random(N_LOW - 5)]  # 5 dominate tr(H) and ‖H‖_F
_A_LOW = (_U * _LAM_LOW) @ _U.T


def low_rank_loss(x):
    """½ xᵀAx, A with five large eigenvalues and 95 below 0.01: tr(A) ≈ 235.5."""
    return 0.5 * x @ _A_LOW @ x


SEEDS = jax.random.split(jax.random.key(2020), 200)


@pytest.fixture(scope="module")
def dense():
    """The MLP's dense (n, n) Hessian (jax.hessian of the flat vector, directly) and its
    eigenvalues, descending, by NumPy (float64)."""
    x, unravel = ravel_pytree(PARAMS)
    H = np.asarray(jax.jit(jax.hessian(lambda y: mlp_loss(unravel(y))))(x))
    return H, np.linalg.eigvalsh(H)[::-1]


@pytest.fixture(scope="module")
def slq():
    """One SLQ run on the MLP: 30 probes of 12 Lanczos steps, and its key."""
    key = jax.random.key(4)
    return key, sp.slq_density(mlp_loss, PARAMS, key, num_probes=30, lanczos_steps=12)


def leaf_offsets(params):
    """``(path, offset, size)`` of every leaf in ``ravel_pytree`` order."""
    out, o = [], 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        out.append((jax.tree_util.keystr(path, simple=True, separator="/"), o, leaf.size))
        o += leaf.size
    return out


# --- the dense truth, per leaf -----------------------------------------------------------------

def test_dense_leaf_blocks_are_slices_of_the_full_hessian(dense):
    H, lam = dense
    np.testing.assert_allclose(sp.dense_hessian(mlp_loss, PARAMS), H, rtol=0, atol=1e-13)
    offsets = leaf_offsets(PARAMS)
    path, o, size = offsets[1]  # layer0/w, by its path
    np.testing.assert_allclose(sp.dense_hessian(mlp_loss, PARAMS, leaf=path), H[o:o + size, o:o + size],
                               rtol=0, atol=1e-13)
    _, o, size = offsets[-2]  # layer2/b, by a negative index: its block's spectrum and eigenvectors
    block = H[o:o + size, o:o + size]
    lam_b, V = map(np.asarray, sp.dense_spectrum(mlp_loss, PARAMS, leaf=-2))
    np.testing.assert_allclose(lam_b, np.linalg.eigvalsh(block)[::-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(block @ V, V * lam_b, rtol=0, atol=1e-12)


# --- top-k -------------------------------------------------------------------------------------

def test_top5_within_60_hvps(dense):
    """Top-5 eigenvalues to rel 1e-6 (float64) after at most 60 HVPs, whole model and one layer."""
    H, lam = dense
    r = sp.top_k(mlp_loss, PARAMS, jax.random.key(0), k=5, max_iter=60)
    assert bool(r.converged) and int(r.num_hvps) <= 60
    np.testing.assert_allclose(r.eigenvalues, lam[:5], rtol=1e-6, atol=0)
    Y, theta = np.asarray(jax.vmap(lambda v: ravel_pytree(v)[0])(r.eigenvectors)), np.asarray(r.eigenvalues)
    np.testing.assert_array_less(np.linalg.norm(Y @ H - theta[:, None] * Y, axis=1), 1e-5 * lam[0])
    path, o, size = leaf_offsets(PARAMS)[3]  # layer1/w, 96 parameters
    block_lam = np.linalg.eigvalsh(H[o:o + size, o:o + size])[::-1]
    r = sp.top_k(mlp_loss, PARAMS, jax.random.key(1), k=5, max_iter=60, leaf=path)
    assert bool(r.converged) and int(r.num_hvps) <= 60 and r.eigenvectors.shape == (5, 8, 12)
    np.testing.assert_allclose(r.eigenvalues, block_lam[:5], rtol=1e-6, atol=0)
    compiled = sp._top_k._cache_size()  # a new key and new numbers of the same shapes: no new program
    sp.top_k(mlp_loss, jax.tree_util.tree_map(lambda a: 0.9 * a, PARAMS), jax.random.key(2), k=5, max_iter=60, leaf=path)
    assert sp._top_k._cache_size() == compiled


# --- trace -------------------------------------------------------------------------------------

def coverage(est, truth):
    """Share of seeds whose estimate is within 3 standard errors of the truth."""
    return float(np.mean(np.abs(np.asarray(est.estimate) - truth) <= 3 * np.asarray(est.standard_error)))


def test_trace_within_3_standard_errors_in_95_percent_of_200_seeds(dense):
    """Hutchinson on the MLP (Hutch++'s coverage: the low-rank test below, where its residual is small)."""
    truth = float(np.trace(dense[0]))
    est = jax.jit(jax.vmap(lambda k: sp.hutchinson_trace(mlp_loss, PARAMS, k, num=30)))(SEEDS)
    assert est.estimate.shape == (200,) and np.all(np.asarray(est.num_hvps) == 30)
    assert coverage(est, truth) >= 0.95, coverage(est, truth)
    e = np.asarray(est.estimate)
    assert abs(e.mean() - truth) <= 4 * e.std() / np.sqrt(200)  # unbiased
    assert e.std() > 0  # the seeds differ


def test_hutchpp_beats_hutchinson_on_a_low_rank_dominated_hessian():
    """Same budget (30 HVPs): Hutch++ finds the five large eigenvalues' part exactly; its errors
    are far smaller, and its standard errors still cover them."""
    truth = float(np.sum(_LAM_LOW))
    x = jnp.asarray(_rng.standard_normal(N_LOW))
    h = jax.jit(jax.vmap(lambda k: sp.hutchinson_trace(low_rank_loss, x, k, num=30)))(SEEDS)
    hp = jax.jit(jax.vmap(lambda k: sp.hutchpp_trace(low_rank_loss, x, k, num=30)))(SEEDS)
    rms = lambda e: float(np.sqrt(np.mean((np.asarray(e.estimate) - truth) ** 2)))  # noqa: E731
    assert rms(hp) < 1e-3 * rms(h), (rms(hp), rms(h))
    assert coverage(h, truth) >= 0.95 and coverage(hp, truth) >= 0.95, (coverage(h, truth), coverage(hp, truth))


def test_hutchpp_is_exact_on_a_leaf_it_sketches_whole(dense):
    """num = 3·size: the sketch spans the leaf's block, so Hutch++ returns its trace exactly."""
    H = dense[0]
    path, o, size = leaf_offsets(PARAMS)[0]  # layer0/b, 12 parameters
    r = sp.hutchpp_trace(mlp_loss, PARAMS, jax.random.key(3), num=3 * size, leaf=path)
    np.testing.assert_allclose(r.estimate, np.trace(H[o:o + size, o:o + size]), rtol=1e-10)
    assert float(r.standard_error) < 1e-10


# --- stochastic Lanczos quadrature -----------------------------------------------------------

def test_slq_weights_are_squared_first_components(dense, slq):
    """Each probe's weights are the squared first components of the eigenvectors of its tridiagonal
    matrix (an independent NumPy eigh), sum to 1, and give a Gauss rule exact for zᵀHᵖz/‖z‖², p ≤ 3,
    with the probes rebuilt by the documented rule and the dense Hessian."""
    H = dense[0]
    key, d = slq
    n, (probes, steps) = H.shape[0], d.nodes.shape
    assert (probes, steps) == (30, 12) and d.weights.shape == d.alpha.shape == (probes, steps)
    assert d.beta.shape == (probes, steps - 1) and int(d.num_hvps) == probes * steps
    np.testing.assert_allclose(np.sum(d.weights, axis=1), 1.0, rtol=0, atol=1e-12)
    Z = np.asarray(jax.vmap(lambda k: jax.random.rademacher(k, (n,), jnp.float64))(jax.random.split(key, probes)))
    powers = [np.linalg.matrix_power(H, p) for p in range(4)]
    for p in range(probes):
        T = np.diag(d.alpha[p]) + np.diag(d.beta[p], 1) + np.diag(d.beta[p], -1)
        theta, S = np.linalg.eigh(T)
        order = np.argsort(np.asarray(d.nodes[p]))
        np.testing.assert_allclose(np.asarray(d.nodes[p])[order], theta, rtol=0, atol=1e-12 * theta.max())
        np.testing.assert_allclose(np.asarray(d.weights[p])[order], S[0] ** 2, rtol=0, atol=1e-12)
        z = Z[p] / np.linalg.norm(Z[p])
        for power, Hp in enumerate(powers):
            np.testing.assert_allclose(np.sum(d.weights[p] * d.nodes[p] ** power), z @ Hp @ z, rtol=1e-9)


def test_slq_density_moments_match_the_truth(dense, slq):
    """The density's first two moments against tr(H)/n and tr(H²)/n, within 3 standard errors over
    the probes; the smoothed density integrates to 1, and so does the exact one, to mean tr(H)/n."""
    H, lam = dense
    n, d = H.shape[0], slq[1]
    for power, truth in ((1, np.trace(H) / n), (2, np.sum(lam ** 2) / n)):
        m = np.sum(np.asarray(d.weights) * np.asarray(d.nodes) ** power, axis=1)  # (probes,)
        assert abs(m.mean() - truth) <= 3 * m.std(ddof=1) / np.sqrt(m.size), (power, m.mean(), truth)
    grid = np.linspace(lam[-1] - 1, lam[0] + 1, 4001)
    phi = np.asarray(sp.smooth_density(d.nodes, d.weights, grid, 0.05))
    np.testing.assert_allclose(np.sum(phi) * (grid[1] - grid[0]), 1.0, rtol=1e-6)
    exact = np.asarray(sp.smooth_density(lam, np.full(n, 1 / n), grid, 0.05))
    np.testing.assert_allclose(np.sum(exact * grid) * (grid[1] - grid[0]), np.trace(H) / n, rtol=1e-6)


# --- the audit table ---------------------------------------------------------------------------

def bumpy_loss(x):
    """½ xᵀAx + ¼ Σ c·x_i⁴ (A the low-rank-dominated matrix): Hessian A + 3c·diag(x²)."""
    return 0.5 * x @ _A_LOW @ x + 0.25 * 0.1 * jnp.sum(x ** 4)


BUMPY_POINTS = _rng.standard_normal((2, N_LOW))


@pytest.fixture(scope="module")
def bumpy_audit():
    """The audit of :func:`bumpy_loss` at two points."""
    return sp.audit(bumpy_loss, jnp.asarray(BUMPY_POINTS), jax.random.key(6), num=30, num_probes=4, lanczos_steps=20)


def test_audit_table_against_numpy(bumpy_audit):
    a, points = bumpy_audit, BUMPY_POINTS
    t = a.table
    assert a.eigenvalues.shape == (2, N_LOW) and a.density.weights.shape == (2, 4, 20)
    assert t["top"].shape == t["lanczos"].shape == (2, 5) and t["trace"].shape == (2,)
    lam = np.stack([np.linalg.eigvalsh(_A_LOW + np.diag(0.3 * np.asarray(x) ** 2))[::-1] for x in points])
    np.testing.assert_allclose(a.eigenvalues, lam, rtol=0, atol=1e-11)
    np.testing.assert_allclose(t["trace"], lam.sum(1), rtol=1e-12)
    np.testing.assert_allclose(t["lanczos"], lam[:, :5], rtol=1e-6)
    assert np.all(t["top_rel_err"] <= 1e-6) and np.all(t["lanczos_hvps"] <= 60)
    np.testing.assert_allclose(t["mean"], lam.mean(1), rtol=1e-12)
    np.testing.assert_allclose(t["mean_sq"], np.mean(lam ** 2, axis=1), rtol=1e-12)
    assert np.all(np.abs(t["slq_mean"] - t["mean"]) <= 5 * t["slq_mean_se"])
    assert np.all(t["hutchinson_se"] > 0) and np.all(t["trace_hvps"] == 30)
    assert np.all(np.abs(t["hutchpp"] - t["trace"]) <= 5 * t["hutchpp_se"])



def test_audit_figure(bumpy_audit):
    """One log-density panel per point: the exact histogram, the exact and SLQ smoothed densities,
    the top-5 ticks and Lanczos's crosses, the trace estimates in the title."""
    import jaxgd.plots

    fig = jaxgd.plots.audit_figs.density(bumpy_audit, ["a", "b"])
    axes = fig.get_axes()
    assert len(axes) == 2 and all(ax.get_yscale() == "log" for ax in axes)
    for ax, tr in zip(axes, bumpy_audit.table["trace"]):
        assert len(ax.patches) == 60 and len(ax.lines) == 4
        assert ax.get_title().startswith(("a\n", "b\n")) and f"tr H = {tr:.4g}" in ax.get_title()
        xs, ys = ax.lines[1].get_data()  # the SLQ density integrates to 1 on its grid
        assert abs(np.sum(ys) * (xs[1] - xs[0]) - 1) < 1e-3
    fig.savefig(io.BytesIO(), format="png")
    with pytest.raises(ValueError, match="^labels: must be 2 names"):
        jaxgd.plots.audit_figs.density(bumpy_audit, ["only one"])


def test_run_points():
    s = np.array([1.0, np.nan, 3.0, np.nan, 5.0, 4.0])
    np.testing.assert_array_equal(sp.run_points(s, lr=0.45), [0, 4, 6])  # 2/lr = 4.44
    np.testing.assert_array_equal(sp.run_points(s, lr=0.8), [0, 2, 6])  # 2.5: 1.0 below it first
    np.testing.assert_array_equal(sp.run_points(s[2:], lr=0.8), [0, 0, 4])  # never below: the first past it
    np.testing.assert_array_equal(sp.run_points([6.0, 4.0, 5.0], lr=0.4), [0, 2, 3])  # starts above, drops, arrives
    with pytest.raises(ArgumentError, match="^sharpness never reaches 2/lr"):
        sp.run_points(s, lr=0.1)
    with pytest.raises(ArgumentError, match="^sharpness never reaches 2/lr = 4 after dropping below it"):
        sp.run_points([6.0, 3.0], lr=0.5)


# --- bad arguments -------------------------------------------------------------------------------

BAD = [
    (sp.hutchinson_trace, dict(num=1), ArgumentError, "num must be an integer >= 2"),
    (sp.hutchpp_trace, dict(num=5), ArgumentError, "num must be an integer >= 8"),
    (sp.hutchinson_trace, dict(num=10.0), ArgumentTypeError, "num must be an integer"),
    (sp.slq_density, dict(lanczos_steps=174), ArgumentError, "lanczos_steps must be at most the number of parameters n = 173"),
    (sp.slq_density, dict(leaf="layer0/b", lanczos_steps=13), ArgumentError, "lanczos_steps .* n = 12"),
    (sp.top_k, dict(k=6, max_iter=5), ArgumentError, r"k must be at most min\(max_iter, n\) = 5"),
    (sp.top_k, dict(leaf="layer9/w"), ArgumentError, r"leaf must be one of the leaves \['layer0/b'"),
    (sp.top_k, dict(leaf=6), ArgumentError, r"leaf must be an index in \[-6, 6\)"),
    (sp.top_k, dict(leaf=1.0), ArgumentTypeError, "leaf must be None, an int index or a path"),
    (sp.hutchinson_trace, dict(key=0), ArgumentTypeError, "key must be one JAX PRNG key"),
    (sp.audit, dict(points=PARAMS), ArgumentError, "points must be a pytree of parameters with one leading axis"),
]


@pytest.mark.parametrize("fn,kw,exc,match", BAD)
def test_bad_arguments(fn, kw, exc, match):
    args = dict(key=jax.random.key(0)) | kw
    points = args.pop("points", PARAMS)
    with pytest.raises(exc, match=f"^{match}"):
        fn(mlp_loss, points, args.pop("key"), **args)
