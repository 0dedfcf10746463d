"""Built-in models: parameter layout, forward pass and losses against NumPy float64, gradients, specs."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxgd.models import ACTIVATIONS, MAX_WIDTH, Model, layer_name, mlp, num_params, parse_mlp_spec


@pytest.fixture(autouse=True)
def _no_rank_promotion():
    with jax.numpy_rank_promotion("raise"):
        yield


_erf = np.vectorize(math.erf)
NP_ACT = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "softplus": lambda z: np.logaddexp(0.0, z),
    "identity": lambda z: z,
}


def np_losses(params, model: Model, x, y):
    """Per-example losses by a plain NumPy float64 loop: the reference."""
    layers = [{k: np.asarray(v, np.float64) for k, v in params[n].items()} for n in sorted(params)]
    out = []
    for xi, yi in zip(np.asarray(x, np.float64), np.asarray(y)):
        h = xi
        for i, layer in enumerate(layers):
            h = layer["w"] @ h + layer["b"]
            if i < len(layers) - 1:
                h = NP_ACT[model.activation](h)
        if model.task == "regression":
            out.append((h[0] - yi) ** 2)
        else:
            top = h.max()
            out.append(top + np.log(np.exp(h - top).sum()) - h[yi])
    return np.array(out)


def random_params(model: Model, seed: int = 0):
    """Params of ``model``'s layout with every entry (biases too) drawn by NumPy: no compile."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape) / math.sqrt(s.shape[-1])), shapes)


def losses(model: Model):
    """The engine's use: ``loss_per_example`` vmapped over a batch ``(m, in), (m,)``, jitted."""
    return jax.jit(jax.vmap(model.loss_per_example, in_axes=(None, 0, 0)))


def batch(model: Model, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, model.sizes[0]))
    y = rng.normal(size=m) if model.task == "regression" else rng.integers(0, model.sizes[-1], m).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


def test_shapes_and_count():
    model = mlp((3, 5, 4, 2), task="classification")
    params = model.init(jax.random.key(0))
    assert list(params) == ["layer00", "layer01", "layer02"]
    shapes = {n: (p["w"].shape, p["b"].shape) for n, p in params.items()}
    assert shapes == {"layer00": ((5, 3), (5,)), "layer01": ((4, 5), (4,)), "layer02": ((2, 4), (2,))}
    assert num_params(params) == 5 * 3 + 5 + 4 * 5 + 4 + 2 * 4 + 2
    assert model.apply(params, jnp.ones(3)).shape == (2,)
    assert model.loss_per_example(params, jnp.ones(3), jnp.int32(1)).shape == ()
    assert all(p["b"].dtype == jnp.float64 and not p["b"].any() for p in params.values())


def test_dict_order_is_layer_order_for_12_layers():
    sizes = (3,) + tuple(range(4, 15)) + (1,)  # 12 layers, each with its own width
    params = jax.eval_shape(mlp(sizes).init, jax.random.key(0))  # shapes only: nothing to compile
    names = [f"layer{i:02d}" for i in range(12)]
    assert list(params) == names
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    assert [path[0].key for path, _ in flat] == [n for n in names for _ in "bw"]
    assert [leaf.shape for _, leaf in flat if leaf.ndim == 2] == list(zip(sizes[1:], sizes[:-1]))
    assert num_params(params) == sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    assert layer_name(0, 101) == "layer000" and layer_name(100, 101) == "layer100"


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("task,sizes", [("regression", (3, 6, 5, 1)), ("classification", (3, 6, 5, 4))])
def test_vmapped_loss_matches_numpy_float64(activation, task, sizes):
    model = mlp(sizes, activation, task)
    params = random_params(model, 1)
    x, y = batch(model, 17)
    got = losses(model)(params, x, y)
    assert got.shape == (17,) and got.dtype == jnp.float64
    np.testing.assert_allclose(got, np_losses(params, model, x, y), rtol=1e-12, atol=1e-14)


def test_cross_entropy_is_minus_log_softmax_and_finite_for_huge_logits():
    model = mlp((2, 3), "identity", "classification")  # no hidden layer: logits = w @ x + b
    params = {"layer00": {"w": jnp.zeros((3, 2)), "b": jnp.array([0.5, -1.0, 2.0])}}
    p = np.exp([0.5, -1.0, 2.0]) / np.exp([0.5, -1.0, 2.0]).sum()
    for label in range(3):
        np.testing.assert_allclose(model.loss_per_example(params, jnp.ones(2), jnp.int32(label)),
                                   -np.log(p[label]), rtol=1e-14)
    huge = {"layer00": {"w": jnp.zeros((3, 2)), "b": jnp.array([1e4, 0.0, -1e4])}}
    losses = [model.loss_per_example(huge, jnp.ones(2), jnp.int32(k)) for k in range(3)]
    np.testing.assert_allclose(losses, [0.0, 1e4, 2e4], rtol=1e-14, atol=1e-300)
    grad = jax.grad(model.loss_per_example)(huge, jnp.ones(2), jnp.int32(2))
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grad))


@pytest.mark.parametrize("task,sizes,activation", [
    ("regression", (2, 3, 1), "tanh"),
    ("classification", (2, 3, 3), "tanh"),
    ("classification", (2, 4, 3, 2), "gelu"),
    ("regression", (3, 2, 2, 1), "softplus"),
])
def test_grad_matches_central_differences(task, sizes, activation):
    model = mlp(sizes, activation, task)
    params = random_params(model, 2)
    x, y = batch(model, 1, seed=3)
    flat, unravel = ravel_pytree(params)
    f = jax.jit(jax.vmap(lambda v: model.loss_per_example(unravel(v), x[0], y[0])))
    step = 1e-5 * jnp.eye(flat.size)
    fd = (f(flat[None] + step) - f(flat[None] - step)) / 2e-5  # central differences along each coordinate
    g = ravel_pytree(jax.jit(jax.grad(model.loss_per_example))(params, x[0], y[0]))[0]
    assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(g)


def test_init_keys():
    model = mlp((400, 300, 300, 1))
    a, b = model.init(jax.random.key(0)), model.init(jax.random.key(0))
    c = model.init(jax.random.key(1))
    assert all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not np.array_equal(a["layer00"]["w"], c["layer00"]["w"])
    assert not np.allclose(a["layer01"]["w"][:, :300], a["layer00"]["w"][:, :300])  # one key per layer
    np.testing.assert_allclose(np.std(a["layer00"]["w"]), 1 / math.sqrt(400), rtol=0.02)  # LeCun normal
    np.testing.assert_allclose(np.std(a["layer01"]["w"]), 1 / math.sqrt(300), rtol=0.02)


def test_float32_within_its_tolerance():
    model = mlp((3, 8, 4), "tanh", "classification")
    shapes32 = jax.eval_shape(lambda k: model.init(k, "float32"), jax.random.key(0))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(shapes32))
    p64 = random_params(model, 4)
    p32 = jax.tree.map(lambda p: p.astype(jnp.float32), p64)
    x, y = batch(model, 9)
    l32 = losses(model)(p32, x.astype(jnp.float32), y)
    assert l32.dtype == jnp.float32
    np.testing.assert_allclose(l32, np_losses(p64, model, x, y), rtol=1e-5)


def test_same_arguments_give_the_same_functions():
    a, b = mlp((2, 3, 1)), mlp([2, np.int64(3), 1])
    assert a is b and a.loss_per_example is b.loss_per_example
    assert mlp((2, 3, 1), "relu") is not a


@pytest.mark.parametrize("kwargs,exc,fragment", [
    (dict(sizes=(3, 4, 1), activation="swish"), ValueError, "activation must be one of"),
    (dict(sizes=(3, 4, 1), task="ranking"), ValueError, "task must be one of"),
    (dict(sizes=(3,)), ValueError, "sizes must hold at least (in, out)"),
    (dict(sizes=(3, 0, 1)), ValueError, "sizes[1] must be an integer >= 1"),
    (dict(sizes=(3, 2.0, 1)), TypeError, "sizes[1] must be an integer"),
    (dict(sizes="3,1"), TypeError, "sizes must be a sequence"),
    (dict(sizes=(3, 2)), ValueError, "sizes must end in 1 for task='regression'"),
    (dict(sizes=(3, 1), task="classification"), ValueError, "sizes must end in the number of classes"),
])
def test_bad_mlp_arguments(kwargs, exc, fragment):
    with pytest.raises(exc, match=re.escape(fragment)):
        mlp(**kwargs)


@pytest.mark.parametrize("task,x,y,exc,fragment", [
    ("regression", jnp.ones(2), jnp.float64(1.0), ValueError, "x must be one example of shape (3,)"),
    ("regression", jnp.ones(3), jnp.ones(1), ValueError, "y_i must be a scalar target of shape ()"),
    ("classification", jnp.ones(3), jnp.float64(1.0), TypeError, "y_i must be an integer class label"),
    ("classification", jnp.ones(3), jnp.ones(2, jnp.int32), ValueError, "y_i must be one class label"),
])
def test_bad_example_shapes(task, x, y, exc, fragment):
    model = mlp((3, 2) if task == "classification" else (3, 1), task=task)
    with pytest.raises(exc, match=re.escape(fragment)):
        model.loss_per_example(random_params(model), x, y)


@pytest.mark.parametrize("spec,hidden", [
    ("mlp:32,32", (32, 32)),
    ("mlp:5", (5,)),
    (" mlp: 8, 4 ", (8, 4)),
    (f"mlp:1,{MAX_WIDTH}", (1, MAX_WIDTH)),
])
def test_parse_mlp_spec(spec, hidden):
    assert parse_mlp_spec(spec) == hidden


@pytest.mark.parametrize("spec,fragment", [
    ("mlp:", "lists no hidden-layer widths"),
    ("mlp", "must start with 'mlp:'"),
    ("cnn:3", "must start with 'mlp:'"),
    ("", "must start with 'mlp:'"),
    ("mlp:0", "width 0 is not in [1, 100000]"),
    ("mlp:a", "width 'a' is not a positive integer"),
    ("mlp:-3", "width '-3' is not a positive integer"),
    ("mlp:1.5", "width '1.5' is not a positive integer"),
    ("mlp:1_000", "width '1_000' is not a positive integer"),
    ("mlp:32,,32", "width '' is not a positive integer"),
    ("mlp:100001", "width 100001 is not in [1, 100000]"),
    ("mlp:" + "9" * 5000, "width 999999999999... is not in"),
    ("mlp:" + ",".join(["2"] * 1001), "1001 hidden layers is more than 1000"),
])
def test_bad_mlp_specs(spec, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)) as info:
        parse_mlp_spec(spec)
    assert repr(spec) in str(info.value) and "\n" not in str(info.value)


def test_spec_must_be_a_string():
    with pytest.raises(TypeError, match="spec must be a string"):
        parse_mlp_spec(32)
