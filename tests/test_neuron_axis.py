"""Weight layout in filter normalisation (issue 19, item 3): the same network stored ``(out, in)``
(jaxgd's MLP, Equinox) and ``(in, out)`` (Flax kernels) gets the same random plane when each says
which axis is the neuron — float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.planes import plane_surface, random_plane

_rng = np.random.default_rng(7)
SIZES = (3, 5, 4, 1)
X = _rng.standard_normal((24, 3))
Y = np.sin(X[:, :1]) - 0.5 * X[:, 1:2]
# (out, in) weights, with rows of very different norms so per-input and per-neuron scalings differ
W = [(_rng.standard_normal((o, i)) * _rng.uniform(0.1, 3.0, (o, 1)), _rng.standard_normal(o))
     for i, o in zip(SIZES[:-1], SIZES[1:])]
OUT_IN = {f"l{k}": {"b": jnp.asarray(b), "w": jnp.asarray(w)} for k, (w, b) in enumerate(W)}
IN_OUT = {f"l{k}": {"bias": jnp.asarray(b), "kernel": jnp.asarray(w.T)} for k, (w, b) in enumerate(W)}


def _forward(layers, x):
    for k, (w, b) in enumerate(layers):
        x = x @ w + b[None]
        x = jnp.tanh(x) if k < len(layers) - 1 else x
    return x


def loss_out_in(p, x=X, y=Y):
    return jnp.mean((_forward([(p[f"l{k}"]["w"].T, p[f"l{k}"]["b"]) for k in range(len(W))], x) - y) ** 2)


def loss_in_out(p, x=X, y=Y):
    return jnp.mean((_forward([(p[f"l{k}"]["kernel"], p[f"l{k}"]["bias"]) for k in range(len(W))], x) - y) ** 2)


def example_in_out(p, x, y):
    """One example's squared error, (in, out) layout: the problem's per-example loss."""
    return loss_in_out(p, x[None], y[None])


def _weights(d, name):
    return [np.asarray(d[f"l{k}"][name]) for k in range(len(W))]


def _neuron_norms(ws):
    """Per-neuron norms of (out, in) matrices."""
    return [np.linalg.norm(w, axis=1) for w in ws]


KEY = jax.random.key(11)


@pytest.mark.parametrize("how", ["argument", "problem_int", "problem_tree"])
def test_out_in_and_in_out_layouts_give_the_same_plane(how):
    """neuron_axis=0 on (out, in) and -1 on (in, out), same key: the directions transposed back
    are equal, so are their per-neuron norms (= the parameters' own) and the plane's surface."""
    ref = random_plane(OUT_IN, KEY, neuron_axis=0)
    _same_values(ref, random_plane(OUT_IN, KEY))  # 0 is the default: today's numbers
    if how == "argument":
        flax = random_plane(IN_OUT, KEY, neuron_axis=-1)
        surface = lambda plane: plane_surface(loss_in_out, plane, A, B)
    else:
        axis = -1 if how == "problem_int" else {f"l{k}": {"bias": None, "kernel": 1} for k in range(len(W))}
        problem = jaxgd.model_problem(example_in_out, IN_OUT, (X, Y), neuron_axis=axis)
        assert problem.neuron_axis is axis
        flax = random_plane(problem, IN_OUT, KEY)
        surface = lambda plane: plane_surface(problem, plane, A, B)
    for d_ref, d_flax in [(ref.d1, flax.d1), (ref.d2, flax.d2)]:
        back = [w.T for w in _weights(d_flax, "kernel")]
        for x, y, p in zip(_weights(d_ref, "w"), back, _weights(OUT_IN, "w"), strict=True):
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-12)
            np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.linalg.norm(p, axis=1), rtol=1e-12)
        for b in _weights(d_flax, "bias"):
            np.testing.assert_array_equal(b, 0.0)
    S_ref = plane_surface(loss_out_in, ref, A, B)
    np.testing.assert_allclose(surface(flax), S_ref, rtol=1e-12, atol=1e-12)
    assert np.ptp(np.asarray(S_ref)) > 1e-3  # a surface, not a constant


A, B = np.linspace(-1.0, 1.0, 5), np.linspace(-0.5, 0.5, 3)


def _same_values(p, q):
    for x, y in zip(jax.tree.leaves(p), jax.tree.leaves(q), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_without_neuron_axis_the_in_out_layout_is_normalised_per_input():
    """The default takes axis 0: on (in, out) kernels it scales per input, so the per-neuron
    norms are not the parameters' (the failure the argument exists for)."""
    plane = random_plane(IN_OUT, KEY)
    for d in (plane.d1, plane.d2):
        neurons = _neuron_norms([w.T for w in _weights(d, "kernel")])
        wanted = _neuron_norms(_weights(OUT_IN, "w"))
        assert not all(np.allclose(n, m, rtol=1e-6) for n, m in zip(neurons, wanted))
        inputs = [np.linalg.norm(w, axis=1) for w in _weights(d, "kernel")]
        for n, m in zip(inputs, [np.linalg.norm(w, axis=1) for w in _weights(IN_OUT, "kernel")]):
            np.testing.assert_allclose(n, m, rtol=1e-12)


def test_an_explicit_neuron_axis_overrides_the_problem_and_none_means_whole():
    problem = jaxgd.model_problem(example_in_out, IN_OUT, (X, Y), neuron_axis=-1)
    _same_values(random_plane(problem, IN_OUT, KEY, neuron_axis=0), random_plane(IN_OUT, KEY))
    whole = {f"l{k}": {"bias": None, "kernel": None} for k in range(len(W))}
    _same_values(random_plane(IN_OUT, KEY, neuron_axis=whole), random_plane(IN_OUT, KEY, normalize="layer"))
    assert jaxgd.model_problem(example_in_out, IN_OUT, (X, Y)).neuron_axis is None


BAD = [(2, jaxgd.ArgumentError, "^neuron_axis gives axis 2, out of range for the 2-D leaf of shape"),
       (-3, jaxgd.ArgumentError, "^neuron_axis gives axis -3, out of range"),
       ({"l0": 0}, jaxgd.ArgumentTypeError, "^neuron_axis must be a pytree shaped like .*missing"),
       ([0, 1], jaxgd.ArgumentTypeError, "^neuron_axis must be a pytree shaped like"),
       (1.0, jaxgd.ArgumentTypeError, "^neuron_axis must be None, an int"),
       (True, jaxgd.ArgumentTypeError, "^neuron_axis must be None, an int"),
       ({f"l{k}": {"bias": 0, "kernel": "out"} for k in range(len(W))}, jaxgd.ArgumentTypeError,
        "^neuron_axis must be None, an int.*got str at \\['l0'\\]\\['kernel'\\]")]


@pytest.mark.parametrize("axis, error, match", BAD)
@pytest.mark.parametrize("where", ["random_plane", "model_problem"])
def test_a_bad_neuron_axis_is_one_clear_error(axis, error, match, where):
    with pytest.raises(error, match=match) as info:
        if where == "random_plane":
            random_plane(IN_OUT, KEY, neuron_axis=axis)
        else:
            jaxgd.model_problem(example_in_out, IN_OUT, (X, Y), neuron_axis=axis)
    assert "\n" not in str(info.value) and len(str(info.value)) <= 200


def test_random_plane_takes_its_positional_arguments_one_of_two_ways():
    with pytest.raises(jaxgd.ArgumentTypeError, match="takes \\(params, key\\) or \\(problem, params, key\\)"):
        random_plane(OUT_IN, KEY, "layer")
    with pytest.raises(jaxgd.ArgumentTypeError, match="takes \\(params, key\\)"):
        random_plane(OUT_IN)
