"""Planes of jaxgd's MLPs share the first layer: its pre-activation is computed once per direction
(``models.FirstLayer``), and the surface and interpolation equal the general path (the loss at each
point, as a user's function gets it) to rounding; a user's Equinox or Flax model takes the general path."""

from __future__ import annotations

import equinox as eqx
from flax import nnx
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import planes
from jaxgd.models import mlp

pytestmark = pytest.mark.xdist_group("planes_first_layer")

_rng = np.random.default_rng(3)
X = _rng.standard_normal((40, 5))
LABELS = _rng.integers(0, 3, 40)
TARGETS = np.sin(X[:, 0]) + X[:, 1]
A, B = np.linspace(-1.0, 1.2, 7), np.linspace(-0.8, 1.0, 5)  # a non-square grid, 35 points


def mlp_problem(sizes, activation, task, loss="xent", dtype=None):
    model = mlp(sizes, activation, task, loss)
    y = LABELS if task == "classification" else TARGETS
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0), dtype=dtype), (X, y),
                               dtype=dtype)


def general(problem):
    """The problem's loss as a bare function: the general path, one loss per point."""
    return lambda params: problem.full_loss(params)


def first_layer_products(fn, *args) -> tuple[int, int]:
    """Matrix products with the data's inputs (a contraction over the 5 input features), ``(outside,
    inside)`` the per-point ``lax.map`` loop of ``fn``'s jaxpr."""
    counts = [0, 0]

    def walk(jaxpr, inside):
        for e in jaxpr.eqns:
            if e.primitive.name == "dot_general" and any(5 in v.aval.shape for v in e.invars):
                counts[inside] += 1
            for sub in jax.extend.core.jaxprs_in_params(e.params):
                walk(sub, inside or e.primitive.name in ("scan", "while"))

    walk(jax.make_jaxpr(fn)(*args).jaxpr, False)
    return tuple(counts)


CASES = [((5, 8, 6, 3), "tanh", "classification", "xent"), ((5, 8, 6, 3), "relu", "classification", "mse"),
         ((5, 7, 1), "relu", "regression", "mse"), ((5, 1), "identity", "regression", "mse")]  # one layer


@pytest.mark.parametrize("sizes, activation, task, loss", CASES)
def test_mlp_plane_shares_the_first_layer_and_equals_the_general_path(sizes, activation, task, loss):
    p = mlp_problem(sizes, activation, task, loss)
    plane = planes.random_plane(p, p.init, jax.random.key(1))
    S = np.asarray(planes.plane_surface(p, plane, A, B))
    ref = np.asarray(planes.plane_surface(general(p), plane, A, B))
    assert S.shape == (7, 5) and np.all(np.isfinite(S))
    np.testing.assert_allclose(S, ref, rtol=1e-12, atol=0)
    # the structured path was taken: the first layer's products happen once per direction, outside the loop
    jit_a, jit_b = jnp.asarray(A), jnp.asarray(B)
    assert first_layer_products(lambda pl: planes._surface(p.full_loss, pl, jit_a, jit_b, 4 * p.num_params), plane) == (3, 0)
    assert first_layer_products(lambda pl: planes._surface(general(p), pl, jit_a, jit_b, 4 * p.num_params), plane)[1] > 0
    t = np.linspace(-0.5, 1.5, 9)
    end = jax.tree.map(lambda o, d: o + 0.7 * d, plane.origin, plane.d1)
    np.testing.assert_allclose(planes.interpolate(p, p.init, end, t), planes.interpolate(general(p), p.init, end, t),
                               rtol=1e-12, atol=0)


def test_a_ragged_batched_plane_and_a_point_at_a_time_agree():
    """Batches of 4 points over 35 (a ragged last batch) and one point per batch: the same numbers."""
    p = mlp_problem((5, 8, 6, 3), "tanh", "classification")
    plane = planes.random_plane(p, p.init, jax.random.key(2))
    ref = np.asarray(planes.plane_surface(general(p), plane, A, B))
    for points in (4, 1):
        S = planes.plane_surface(p, plane, A, B, max_elements=points * p.num_params)
        np.testing.assert_allclose(S, ref, rtol=1e-12, atol=0)


def test_float32_plane_equals_the_general_path_to_its_precision():
    p = mlp_problem((5, 8, 6, 3), "tanh", "classification", dtype="float32")
    plane = planes.random_plane(p, p.init, jax.random.key(1))
    S = planes.plane_surface(p, plane, A, B)
    assert S.dtype == jnp.float32
    np.testing.assert_allclose(S, planes.plane_surface(general(p), plane, A, B), rtol=2e-6, atol=0)
    p64 = mlp_problem((5, 8, 6, 3), "tanh", "classification")
    plane64 = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), plane)
    np.testing.assert_allclose(S, planes.plane_surface(p64, plane64, A, B), rtol=2e-5, atol=0)


def _layers(params):
    return [(params[k]["w"], params[k]["b"]) for k in sorted(params)]


def _xent(model, x_i, y_i):
    return -jax.nn.log_softmax(model(x_i))[y_i]


class NnxMLP(nnx.Module):
    def __init__(self, layers):
        self.layers = nnx.List([nnx.Linear(w.shape[1], w.shape[0], param_dtype=jnp.float64, rngs=nnx.Rngs(0))
                                for w, _ in layers])
        for layer, (w, b) in zip(self.layers, layers):
            layer.kernel[...], layer.bias[...] = jnp.asarray(w).T, jnp.asarray(b)  # Flax: (in, out)

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = jnp.tanh(layer(x))
        return self.layers[-1](x)


def test_equinox_and_nnx_models_take_the_general_path_and_match_the_mlp():
    """A user's model declares no first layer: jaxgd never guesses its layout (Flax kernels are (in, out))."""
    p = mlp_problem((5, 8, 6, 3), "tanh", "classification")
    layers = _layers(p.init)
    net = eqx.nn.MLP(5, 3, 8, 2, activation=jnp.tanh, key=jax.random.key(0))
    net = eqx.tree_at(lambda n: n.layers, net, tuple(eqx.nn.Linear(w.shape[1], w.shape[0], key=jax.random.key(0))
                                                     for w, _ in layers))  # widths 5-8-6-3
    net = eqx.tree_at(lambda n: [a for layer in n.layers for a in (layer.weight, layer.bias)], net,
                      [a for layer in layers for a in layer])
    by_eqx = jaxgd.from_equinox(net, _xent, (X, LABELS))
    by_nnx = jaxgd.from_nnx(NnxMLP(layers), _xent, (X, LABELS))
    plane = planes.random_plane(p, p.init, jax.random.key(4))
    ref = np.asarray(planes.plane_surface(p, plane, A, B))
    for user, leaves in ((by_eqx, lambda d: [a for w, b in d for a in (w, b)]),  # Equinox: weight, bias
                         (by_nnx, lambda d: [a for w, b in d for a in (b, w.T)])):  # NNX: bias, kernel (sorted)
        assert planes._first_layer(user.full_loss) is None
        treedef = jax.tree.structure(user.init)
        user_plane = planes.Plane(*(jax.tree.unflatten(treedef, leaves(_layers(t))) for t in plane))
        np.testing.assert_allclose(planes.plane_surface(user, user_plane, A, B), ref, rtol=1e-12, atol=0)


def test_only_a_declared_first_layer_is_used():
    """The same MLP loss wrapped in a function of the user's (no declaration), given a key, or as a bare
    function: the general path; a user's loss that declares a FirstLayer: the structured one."""
    model = mlp((5, 8, 3), "tanh", "classification")
    plain = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (X, LABELS))
    wrapped = jaxgd.model_problem(lambda p, x, y: model.loss_per_example(p, x, y), plain.init, (X, LABELS))
    keyed = jaxgd.model_problem(lambda p, x, y, key: model.loss_per_example(p, x, y), plain.init, (X, LABELS),
                                takes_key=True)
    assert planes._first_layer(plain.full_loss) is not None
    for f in (wrapped.full_loss, keyed.full_loss, general(plain), model.loss_per_example):
        assert planes._first_layer(f) is None

    def declared(p, x, y):
        return model.loss_per_example(p, x, y)

    declared.first_layer = model.loss_per_example.first_layer
    mine = jaxgd.model_problem(declared, plain.init, (X, LABELS))
    assert planes._first_layer(mine.full_loss) is not None
    plane = planes.random_plane(plain, plain.init, jax.random.key(5))
    np.testing.assert_allclose(planes.plane_surface(mine, plane, A, B), planes.plane_surface(wrapped, plane, A, B),
                               rtol=1e-12, atol=0)
