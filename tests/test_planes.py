"""jaxgd.planes: grid orientation and chunking, direction normalisation, PCA of paths, Hessian
planes, interpolation and projection — float64, against loops, closed forms and dense references."""

from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import flat, mlp_loss_on
from helpers import mlp_params as shared_mlp_params
import jaxgd
from jaxgd import spectrum
from jaxgd.planes import (Plane, hessian_plane, interpolate, pca_plane, plane_surface, project,
                          random_plane)


# --- problems (data from NumPy: no XLA compilation at import) ---------------------------------

_rng = np.random.default_rng(0)
X_LINE = np.linspace(-5.0, 5.0, 51)
Y_LINE = 0.7 * X_LINE - 1.3


def line_loss(p):
    """A two-parameter loss that is not symmetric in (w, b)."""
    return jnp.mean((p["w"] * X_LINE + p["b"] - Y_LINE) ** 2) + 0.3 * p["w"] * p["b"] ** 3


def mlp_params(seed, sizes=(3, 6, 1)):
    """A tanh MLP's params, weights (out, in): 31 parameters for the default sizes."""
    return shared_mlp_params(seed, sizes)


X_MLP = _rng.standard_normal((32, 3))
Y_MLP = np.sin(2 * X_MLP[:, :1]) + X_MLP[:, 1:2]


mlp_loss = mlp_loss_on(X_MLP, Y_MLP)


MLP = mlp_params(1)
N_MLP = 31


def unflat(x, like=MLP):
    return ravel_pytree(like)[1](x)


# --- plane_surface ---------------------------------------------------------------------------

def test_surface_identity_plane_matches_double_loop():
    """Non-square grid: rows follow d1 = e_w, columns d2 = e_b."""
    zero = {"w": jnp.asarray(0.0), "b": jnp.asarray(0.0)}
    plane = Plane(zero, {"w": jnp.asarray(1.0), "b": jnp.asarray(0.0)},
                  {"w": jnp.asarray(0.0), "b": jnp.asarray(1.0)})
    a, b = np.linspace(-2.0, 2.0, 7), np.linspace(-1.0, 3.0, 5)
    S = plane_surface(line_loss, plane, a, b)
    f = jax.jit(line_loss)
    ref = np.array([[f({"w": wi, "b": bj}) for bj in b] for wi in a])
    assert S.shape == (7, 5)
    np.testing.assert_allclose(S, ref, rtol=1e-12, atol=0)


def mlp_plane():
    return Plane(MLP, unflat(_rng.standard_normal(N_MLP)), unflat(_rng.standard_normal(N_MLP)))


@pytest.mark.parametrize("max_elements", [
    1,                # one point at a time
    4 * N_MLP,        # four points: pieces of a row, a ragged last batch
    2 * 5 * N_MLP,    # two whole rows
    2**22,            # the whole grid at once
])
def test_surface_chunking_matches_vmap(max_elements):
    plane = mlp_plane()
    a, b = np.linspace(-1.0, 1.0, 6), np.linspace(-0.5, 1.5, 5)
    point = lambda ai, bj: mlp_loss(jax.tree_util.tree_map(lambda o, u, v: o + ai * u + bj * v, *plane))
    ref = jax.jit(jax.vmap(jax.vmap(point, (None, 0)), (0, None)))(a, b)
    S = plane_surface(mlp_loss, plane, a, b, max_elements=max_elements)
    np.testing.assert_allclose(S, ref, rtol=1e-12, atol=0)


def _largest_value(jaxpr) -> int:
    """The most elements of any value made inside ``jaxpr`` or the jaxprs nested in it."""
    most = 0
    for eqn in jaxpr.eqns:
        most = max([most] + [int(np.prod(v.aval.shape)) for v in eqn.outvars])
        subs = [p for v in eqn.params.values() for p in (v if isinstance(v, (tuple, list)) else [v])]
        for sub in subs:
            inner = getattr(sub, "jaxpr", sub)
            if hasattr(inner, "eqns"):
                most = max(most, _largest_value(inner))
    return most


@pytest.mark.parametrize("max_elements", [2**22, 2**16])
def test_surface_never_holds_grid_times_parameters(max_elements):
    """A 201² grid on ~10⁵ parameters: no value in the traced program exceeds the bound (or one
    point's parameters when a point alone is over it); grid × parameters would be 4·10⁹."""
    params = {"w": jnp.zeros((316, 316)), "b": jnp.zeros(316)}
    n = 316 * 317
    f = lambda p: jnp.sum(jnp.tanh(p["w"]) ** 2) + jnp.sum(p["b"] ** 2)
    axis = jnp.linspace(-1.0, 1.0, 201)
    jaxpr = jax.make_jaxpr(lambda pl, a: plane_surface(f, pl, a, a, max_elements=max_elements))(
        Plane(params, params, params), axis)
    assert _largest_value(jaxpr.jaxpr) <= max(max_elements, n)


# --- random_plane ----------------------------------------------------------------------------

PARAMS = {"conv": jnp.asarray(_rng.standard_normal((4, 3, 2, 2))),
          "dense": {"w": jnp.asarray(_rng.standard_normal((5, 6))).at[2].set(0.0),  # a dead neuron
                    "b": jnp.asarray(_rng.standard_normal(5))},
          "scale": jnp.asarray(1.7)}


def row_norms(x):
    x = np.asarray(x)
    return np.linalg.norm(x.reshape(x.shape[0], -1), axis=1)


def np_flat(tree):
    return np.concatenate([np.ravel(leaf) for leaf in jax.tree_util.tree_leaves(tree)])


@jax.jit
def raw_gaussian(key):
    """A raw direction as documented: split(key), then leaf i from fold_in(first key, i)."""
    k1, _ = jax.random.split(key)
    leaves, treedef = jax.tree_util.tree_flatten(PARAMS)
    return treedef.unflatten([jax.random.normal(jax.random.fold_in(k1, i), p.shape)
                              for i, p in enumerate(leaves)])


@pytest.mark.parametrize("normalize,keep_biases", [
    ("filter", False), ("filter", True), ("layer", False), (None, False)])
def test_random_plane(normalize, keep_biases):
    key = jax.random.key(3)
    plane = random_plane(PARAMS, key, normalize=normalize, keep_biases=keep_biases)
    assert plane.origin is PARAMS
    again = random_plane(PARAMS, key, normalize=normalize, keep_biases=keep_biases)
    for d, d_again in ((plane.d1, again.d1), (plane.d2, again.d2)):
        jax.tree_util.tree_map(np.testing.assert_array_equal, d, d_again)  # deterministic
        assert jax.tree_util.tree_structure(d) == jax.tree_util.tree_structure(PARAMS)
        for p, x in zip(jax.tree_util.tree_leaves(PARAMS), jax.tree_util.tree_leaves(d)):
            assert x.shape == p.shape and bool(jnp.all(jnp.isfinite(x)))
            if normalize is None:
                continue
            if p.ndim <= 1:
                np.testing.assert_array_equal(x, p if keep_biases else jnp.zeros_like(p))
            elif normalize == "filter":
                np.testing.assert_allclose(row_norms(x), row_norms(p), rtol=1e-12, atol=0)
            else:
                np.testing.assert_allclose(np.linalg.norm(x), np.linalg.norm(p), rtol=1e-12)
    if normalize is None:
        jax.tree_util.tree_map(np.testing.assert_array_equal, plane.d1, raw_gaussian(key))
    d1, d2 = np_flat(plane.d1), np_flat(plane.d2)
    assert abs(d1 @ d2) < 0.9 * np.linalg.norm(d1) * np.linalg.norm(d2)  # not the same direction
    other = random_plane(PARAMS, jax.random.key(4), normalize=normalize, keep_biases=keep_biases)
    assert not np.allclose(np_flat(other.d1), d1)


@pytest.mark.parametrize("kwargs,arg", [({"normalize": "l2"}, "normalize"),
                                        ({"normalize": None, "keep_biases": True}, "keep_biases")])
def test_random_plane_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        random_plane(PARAMS, jax.random.key(0), **kwargs)


# --- pca_plane -------------------------------------------------------------------------------

@pytest.mark.parametrize("center", ["mean", "final"])
def test_pca_plane_finds_the_direction_of_travel(center):
    """A path along u (not straight in time) plus a small wiggle orthogonal to u."""
    like = {"m": jnp.zeros((6, 5)), "c": jnp.zeros(30)}
    n = 60
    Q = np.linalg.qr(_rng.standard_normal((n, 3)))[0]
    u, w1, w2 = Q.T
    t = np.linspace(0.0, 1.0, 21)[:, None]
    X = 0.5 + 3 * (1 - t) ** 2 * u[None, :] + 0.01 * np.sin(7 * t) * w1 + 0.01 * np.cos(5 * t) * w2
    path = jax.vmap(ravel_pytree(like)[1])(jnp.asarray(X))
    r = pca_plane(path, center=center)
    d1, d2 = flat(r.plane.d1), flat(r.plane.d2)
    np.testing.assert_allclose(flat(r.plane.origin), X[-1], rtol=0, atol=0)
    np.testing.assert_allclose([d1 @ d1, d2 @ d2, d1 @ d2], [1, 1, 0], rtol=0, atol=1e-12)
    assert abs(float(d1 @ u)) > 0.999
    assert float(d1 @ (X[0] - X[-1])) > 0  # signed so the start has a positive coordinate
    assert r.explained.shape == r.random_walk_explained.shape == (2,)
    assert float(r.explained[0]) > 0.99 and float(r.explained.sum()) <= 1 + 1e-12


@pytest.mark.parametrize("center,steps,dim,low,high", [
    ("mean", 1000, 2000, 0.5, 0.7),  # 6/π² ≈ 0.61 (Antognini & Sohl-Dickstein 2018)
    ("final", 200, 500, 0.7, 0.9),   # 8/π² ≈ 0.81
])
def test_random_walk_baseline(center, steps, dim, low, high):
    """The simulated baseline, and a directly simulated walk given as the path, both land near
    the theoretical first ratio for a long walk in high dimension."""
    steps_ = np.random.default_rng(11).standard_normal((steps, dim))
    walk = np.concatenate([np.zeros((1, dim)), np.cumsum(steps_, axis=0)])
    r = pca_plane({"x": jnp.asarray(walk)}, key=jax.random.key(5), center=center)
    assert low < float(r.random_walk_explained[0]) < high
    assert low < float(r.explained[0]) < high
    np.testing.assert_allclose(r.explained, r.random_walk_explained, atol=0.1)


def test_pca_plane_bad_arguments():
    with pytest.raises(ValueError, match="^path:"):
        pca_plane({"x": jnp.zeros((2, 5))})
    with pytest.raises(ValueError, match="^center:"):
        pca_plane({"x": jnp.zeros((4, 5))}, center="median")


def test_pca_of_a_far_path_and_a_path_that_is_not_finite():
    """Issue 23: a path out to 1e300 (one optimizer far gone) made the Gram matrix overflow and the whole
    plane NaN; now it is scaled (by a power of two, exact) and gives the same plane as the path at 1.
    A NaN point is refused, naming it, where it gave a NaN plane with no word."""
    X = np.random.default_rng(3).standard_normal((12, 7))
    near, far = pca_plane({"x": jnp.asarray(X)}), pca_plane({"x": jnp.asarray(X * 1e300)})
    np.testing.assert_allclose(far.explained, near.explained, rtol=1e-13, atol=0)
    np.testing.assert_allclose(flat(far.plane.d1), flat(near.plane.d1), rtol=0, atol=1e-13)
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"^path must be finite: point 5 of the 12 stacked is not"):
        pca_plane({"x": jnp.asarray(X)})


@pytest.mark.parametrize("d1,d2,message", [
    ([1.0, 0.0, 0.0], [0.0, 0.0, 0.0], "d2 must not be zero"),
    ([0.0, 0.0, 0.0], [0.0, 1.0, 0.0], "d1 must not be zero"),
    ([1.0, 2.0, 0.0], [-2.0, -4.0, 0.0], "d1 and d2 must not be parallel"),
    ([1.0, np.inf, 0.0], [0.0, 1.0, 0.0], "d1 must be finite"),
])
def test_a_plane_that_is_no_plane_is_refused(d1, d2, message):
    """Issue 23: zero or parallel directions gave NaN or inf coordinates, a NaN origin an all-NaN
    surface, with no word."""
    f = lambda p: jnp.sum(p["w"] ** 2)
    plane = Plane({"w": jnp.zeros(3)}, {"w": jnp.asarray(d1)}, {"w": jnp.asarray(d2)})
    with pytest.raises(ValueError, match="^plane " + message):
        project(plane, {"w": jnp.ones((2, 3))}, f)
    with pytest.raises(ValueError, match="^plane " + message):
        plane_surface(f, plane, [0.0], [0.0])
    nan_origin = Plane({"w": jnp.array([0.0, np.nan, 0.0])}, {"w": jnp.eye(3)[0]}, {"w": jnp.eye(3)[1]})
    with pytest.raises(ValueError, match="^plane origin must be finite"):
        plane_surface(f, nan_origin, [0.0], [0.0])


# --- hessian_plane, interpolate, project -----------------------------------------------------

def test_hessian_plane_matches_dense_eigenvectors():
    x, unravel = ravel_pytree(MLP)
    lam, V = jnp.linalg.eigh(jax.jit(jax.hessian(lambda y: mlp_loss(unravel(y))))(x))
    assert lam[-2] - lam[-3] > 1e-3 * lam[-1]  # the top two are well separated from the rest
    plane = hessian_plane(mlp_loss, MLP, jax.random.key(2), tol=1e-10, max_iter=N_MLP)
    assert plane.origin is MLP
    for d, v in ((plane.d1, V[:, -1]), (plane.d2, V[:, -2])):
        assert abs(float(flat(d) @ v)) > 1 - 1e-8


def test_interpolate_matches_loop():
    p1 = mlp_params(2)
    t = np.linspace(-0.5, 1.5, 9)
    out = interpolate(mlp_loss, MLP, p1, t)
    f = jax.jit(mlp_loss)
    ref = [f(jax.tree_util.tree_map(lambda u, v: (1 - ti) * u + ti * v, MLP, p1)) for ti in t]
    assert out.shape == (9,)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.asarray(out)[[2, 6]], [f(MLP), f(p1)], rtol=1e-12)  # t = 0 and t = 1


def test_project():
    """In-plane points come back with their coordinates, distance 0 and the same loss; points
    moved off the plane orthogonally come back with the offset's length as distance."""
    o = flat(MLP)
    D = _rng.standard_normal((N_MLP, 2)) * np.array([[0.5, 2.0]])
    D[:, 1] += 0.7 * D[:, 0]  # neither orthogonal nor unit
    off = np.linalg.qr(np.concatenate([D, _rng.standard_normal((N_MLP, 1))], axis=1))[0][:, 2]
    a = np.array([0.0, 0.3, -0.2, 1.1, 0.5, -0.4, 0.8])
    b = np.array([0.0, -0.1, 0.4, 0.2, 0.6, 0.3, -0.7])
    dist = np.array([0.0, 0.0, 0.0, 0.0, 0.25, 1.0, 0.01])
    X = o[None, :] + a[:, None] * D[:, 0] + b[:, None] * D[:, 1] + dist[:, None] * off[None, :]
    plane = Plane(MLP, unflat(D[:, 0]), unflat(D[:, 1]))
    r = project(plane, jax.vmap(unflat)(jnp.asarray(X)), mlp_loss)
    scale = float(jnp.linalg.norm(X, axis=1).max())
    np.testing.assert_allclose(r.a, a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.b, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.distance, dist, rtol=1e-10, atol=1e-13 * scale)
    f = jax.jit(mlp_loss)
    np.testing.assert_allclose(r.loss, [f(unflat(x)) for x in X], rtol=1e-12)
    in_plane = X - dist[:, None] * off[None, :]
    np.testing.assert_allclose(r.projected_loss, [f(unflat(x)) for x in in_plane], rtol=1e-12)
    np.testing.assert_allclose(r.projected_loss[:4], r.loss[:4], rtol=1e-12)


# --- a problem in place of the loss ----------------------------------------------------------

@pytest.fixture(scope="module")
def mlp_problem():
    return jaxgd.model_problem(lambda p, x, y: mlp_loss_on(x[None], y[None])(p), MLP, (X_MLP, Y_MLP))


def _same(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_problem_stands_for_its_full_data_loss(mlp_problem):
    """Every function that needs a loss takes a Problem: the numbers of its loss on the whole data
    given as a function, and within rounding of the same loss written batched."""
    p = mlp_problem
    f = lambda params: p.loss_fn(params, p.data, None)
    plane = random_plane(MLP, jax.random.key(3))
    a, b = np.linspace(-1.0, 1.0, 5), np.linspace(-0.5, 0.5, 3)
    path = jax.tree_util.tree_map(lambda u, v: jnp.stack([u, (u + v) / 2, v]), MLP, mlp_params(2))
    calls = {"plane_surface": lambda g: plane_surface(g, plane, a, b),
             "interpolate": lambda g: interpolate(g, MLP, mlp_params(2), a),
             "project": lambda g: project(plane, path, g),
             "hessian_plane": lambda g: hessian_plane(g, MLP, jax.random.key(2), tol=1e-10, max_iter=N_MLP),
             "hvp": lambda g: spectrum.hvp(g, MLP, plane.d1),
             "top_eigenpairs": lambda g: spectrum.top_eigenpairs(g, MLP, plane.d1, k=2, max_iter=N_MLP)}
    for name, call in calls.items():
        _same(call(p), call(f))
    np.testing.assert_allclose(calls["plane_surface"](p), calls["plane_surface"](mlp_loss), rtol=1e-12)
    np.testing.assert_allclose(jaxgd.loss_surface(p, plane, a, b), calls["plane_surface"](p), rtol=0, atol=0)
    assert (jaxgd.Plane, jaxgd.interpolate, jaxgd.project) == (Plane, interpolate, project)


@pytest.mark.parametrize("call", [lambda: plane_surface("mse", Plane(MLP, MLP, MLP), [0.0], [0.0]),
                                  lambda: interpolate(None, MLP, MLP, [0.0])])
def test_neither_a_problem_nor_a_function_is_refused(call):
    with pytest.raises(jaxgd.ArgumentTypeError, match="^problem must be a jaxgd.Problem or a function"):
        call()
