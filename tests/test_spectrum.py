"""jaxgd.spectrum against dense float64 Hessians (``jax.hessian`` of the flattened loss + ``eigh``)."""

from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import flat, mlp_loss_on
from helpers import mlp_params as shared_mlp_params
from jaxgd.spectrum import hvp, top_eigenpairs


# --- problems (data from NumPy: no XLA compilation at import) ---------------------------------

def mlp_params(seed, sizes=(4, 12, 8, 1)):
    """A tanh MLP's params, weights (out, in): 173 parameters for the default sizes."""
    return shared_mlp_params(seed, sizes)


_rng = np.random.default_rng(1)
X_MLP = _rng.standard_normal((64, 4))
Y_MLP = np.sin(2 * X_MLP[:, :1]) + X_MLP[:, 1:2]


mlp_loss = mlp_loss_on(X_MLP, Y_MLP)


X_LINE = np.linspace(-5.0, 5.0, 51)
Y_LINE = 0.7 * X_LINE - 1.3 + 0.1 * np.sin(3 * X_LINE)


def line_loss(params):
    """MSE of a line; Hessian 2·[[mean(x²), mean(x)], [mean(x), 1]] = diag(52/3, 2) on this x."""
    return jnp.mean((params["w"] * X_LINE + params["b"] - Y_LINE) ** 2)


H_DIAG = np.array([-10.0, 3.0, 1.0, 0.5, 2.5, -1.0, 0.2, -0.3, 1.5, 0.7])


def indefinite_loss(params):
    """½ Σ h_i x_i² with a diagonal Hessian whose largest |λ| (−10) is negative."""
    x = ravel_pytree(params)[0]
    return 0.5 * jnp.sum(H_DIAG * x * x)


N_QUARTIC = 100
_U = np.linalg.qr(_rng.standard_normal((N_QUARTIC, N_QUARTIC)))[0]
_A = (_U * np.r_[6.0, np.linspace(-2.0, 3.0, N_QUARTIC - 1)][None, :]) @ _U.T
_B = _rng.standard_normal((8, N_QUARTIC)) / np.sqrt(N_QUARTIC)


def quartic_loss(params):
    """½ xᵀAx + 0.025 Σ (Bx)⁴ on 100 parameters: smooth, top eigenvalue ≈ 6 with a clear gap."""
    x = ravel_pytree(params)[0]
    return 0.5 * x @ _A @ x + 0.025 * jnp.sum((_B @ x) ** 4)


PROBLEMS = {
    "mlp": (mlp_loss, mlp_params(0)),
    "line": (line_loss, {"w": jnp.asarray(0.3), "b": jnp.asarray(-2.0)}),
    "indefinite": (indefinite_loss, {"u": jnp.ones(4), "m": jnp.ones((2, 3))}),
    "quartic": (quartic_loss, {"m": jnp.asarray(_rng.standard_normal((10, 5))),
                               "v": jnp.asarray(_rng.standard_normal(50))}),
}


@jax.jit(static_argnums=0)
def dense_hessian(f, params):
    """The (n, n) Hessian of f over the flattened params."""
    x, unravel = ravel_pytree(params)
    return jax.hessian(lambda y: f(unravel(y)))(x)


@jax.jit(static_argnums=0)
def dense_eigh(f, params):
    """Eigenvalues descending, eigenvectors as columns, of the dense Hessian (flattened)."""
    lam, V = jnp.linalg.eigh(dense_hessian(f, params))
    return lam[::-1], V[:, ::-1]


def rows(eigenvectors):
    """Eigenvectors returned with a leading k axis, as a (k, n) array."""
    return jax.vmap(flat)(eigenvectors)


eigs = jax.jit(top_eigenpairs, static_argnames=("f", "k", "max_iter"))


# --- tests -----------------------------------------------------------------------------------

def test_hvp_matches_dense_hessian():
    f, params = PROBLEMS["mlp"]
    x, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.key(5), x.shape)
    H = dense_hessian(f, params)
    got = flat(jax.jit(hvp, static_argnums=0)(f, params, unravel(v)))
    np.testing.assert_allclose(got, H @ v, rtol=0, atol=1e-12 * float(jnp.linalg.norm(H @ v)))


CASES = [  # problem, k, exact top eigenvalues (None: the dense reference only)
    ("mlp", 3, None),
    ("line", 1, [52 / 3]),
    ("indefinite", 2, [3.0, 2.5]),  # not −10, the largest in magnitude
]


@pytest.mark.parametrize("name,k,exact", CASES)
def test_top_eigenpairs_match_dense(name, k, exact):
    f, params = PROBLEMS[name]
    lam, V = dense_eigh(f, params)
    n = lam.shape[0]
    v0 = jax.random.normal(jax.random.key(6), (n,))
    r = eigs(f, params, v0, k=k, max_iter=200, tol=1e-10)
    Y = rows(r.eigenvectors)
    assert r.eigenvalues.shape == (k,) and Y.shape == (k, n)
    assert bool(r.converged) and r.num_hvps.dtype == jnp.int32 and 1 <= int(r.num_hvps) <= n
    np.testing.assert_allclose(r.eigenvalues, lam[:k], rtol=1e-10, atol=0)
    if exact is not None:
        np.testing.assert_allclose(r.eigenvalues, exact, rtol=1e-12, atol=0)
    np.testing.assert_allclose(jnp.linalg.norm(Y, axis=1), 1.0, rtol=1e-12)
    cos = jnp.abs(jnp.sum(Y * V[:, :k].T, axis=1))
    assert jnp.all(cos > 1 - 1e-10), cos
    np.testing.assert_array_less(r.residuals, 1e-10 * jnp.abs(r.eigenvalues) + 1e-13)


def test_start_vector_forms():
    """A pytree v0 and its flat vector give the same run; a zero v0 still converges."""
    f, params = PROBLEMS["indefinite"]
    v = {"u": jnp.arange(4.0), "m": jnp.ones((2, 3))}
    kw = dict(k=2, max_iter=200, tol=1e-10)  # as in the table: the flat calls reuse its compilation
    a, b = eigs(f, params, v, **kw), eigs(f, params, flat(v), **kw)
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    assert int(a.num_hvps) == int(b.num_hvps)
    z = eigs(f, params, jnp.zeros(10), **kw)
    np.testing.assert_allclose(z.eigenvalues, [3.0, 2.5], rtol=1e-12)


def test_float32():
    """float32 params run in float32 and still get the line's top eigenvalue to 1e-5."""
    f, params = PROBLEMS["line"]
    p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    r = eigs(lambda p: f(p).astype(jnp.float32), p32, jnp.ones(2, jnp.float32))
    assert r.eigenvalues.dtype == jnp.float32
    np.testing.assert_allclose(r.eigenvalues, [52 / 3], rtol=1e-5)


def test_inside_scan_and_vmap():
    """Warm-started Lanczos inside a jitted lax.scan along gd, vmapped over two starting points."""
    f, params = PROBLEMS["mlp"]
    starts = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), params,
                                    mlp_params(7))

    def path(p):
        def step(carry, _):
            p, v = carry
            r = top_eigenpairs(f, p, v, k=1, max_iter=40, tol=1e-10)  # 26 HVPs at most here (150: 9 s more)
            g = jax.grad(f)(p)
            p_next = jax.tree_util.tree_map(lambda a, b: a - 0.05 * b, p, g)
            return (p_next, jax.tree_util.tree_map(lambda e: e[0], r.eigenvectors)), (p, r)
        v0 = jax.tree_util.tree_map(jnp.ones_like, p)
        return jax.lax.scan(step, (p, v0), None, length=4)[1]

    points, r = jax.jit(jax.vmap(path))(starts)
    assert r.eigenvalues.shape == (2, 4, 1) and r.num_hvps.shape == (2, 4)
    assert bool(jnp.all(r.converged))
    lam, V = jax.vmap(jax.vmap(lambda p: dense_eigh(f, p)))(points)  # (2, 4, n), (2, 4, n, n)
    np.testing.assert_allclose(r.eigenvalues[..., 0], lam[..., 0], rtol=1e-10)
    y = jax.vmap(jax.vmap(flat))(jax.tree_util.tree_map(lambda a: a[:, :, 0], r.eigenvectors))
    cos = jnp.abs(jnp.sum(y * V[..., 0], axis=-1))
    assert jnp.all(cos > 1 - 1e-10), cos


def test_warm_start_needs_fewer_hvps():
    """Along small gd steps, starting from the previous top eigenvector takes at most half the
    HVPs of a random start at the same tol (mean over steps 1.., where warm differs from cold)."""
    f, params = PROBLEMS["quartic"]
    x0, unravel = ravel_pytree(params)
    n, lr, tol = x0.shape[0], 1e-4, 1e-6

    def step(carry, key):
        x, v = carry
        warm = top_eigenpairs(f, unravel(x), v, tol=tol, max_iter=n)
        cold = top_eigenpairs(f, unravel(x), jax.random.normal(key, (n,)), tol=tol, max_iter=n)
        x_next = x - lr * flat(jax.grad(f)(unravel(x)))
        return (x_next, rows(warm.eigenvectors)[0]), (x, warm, cold)

    keys = jax.random.split(jax.random.key(8), 12)
    start = (x0, jax.random.normal(jax.random.key(9), (n,)))
    xs, warm, cold = jax.jit(lambda c: jax.lax.scan(step, c, keys)[1])(start)
    lam = jax.vmap(lambda x: jnp.linalg.eigvalsh(dense_hessian(f, unravel(x)))[-1])(xs)
    np.testing.assert_allclose(warm.eigenvalues[:, 0], lam, rtol=1e-6)
    np.testing.assert_allclose(cold.eigenvalues[:, 0], lam, rtol=1e-6)
    mean_warm, mean_cold = jnp.mean(warm.num_hvps[1:]), jnp.mean(cold.num_hvps[1:])
    assert mean_warm <= 0.5 * mean_cold, (warm.num_hvps, cold.num_hvps)


@pytest.mark.parametrize("kwargs,v0,arg", [
    ({"k": 3, "max_iter": 2}, jnp.ones(2), "k"),  # k > min(max_iter, n)
    ({"k": 0}, jnp.ones(2), "k"),
    ({}, jnp.ones(3), "v0"),
])
def test_bad_arguments(kwargs, v0, arg):
    f, params = PROBLEMS["line"]
    with pytest.raises(ValueError, match=f"^{arg}:"):
        top_eigenpairs(f, params, v0, **kwargs)
