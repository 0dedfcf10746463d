"""Built-in models, written for one example and vmapped by the engine.

A :class:`Model` bundles pure functions of a parameter pytree: ``init(key)`` makes the
parameters, ``apply(params, x)`` maps ONE example ``x`` of shape ``(in,)`` to ``(out,)``, and
``loss_per_example(params, x_i, y_i)`` returns a scalar loss. The engine vmaps the latter over
a minibatch and averages it under the minibatch mask.

MLP parameters are a dict of layers, ``{"layer00": {"w": (out, in), "b": (out,)}, ...}``:
a ROW of ``w`` is one neuron (filter-normalised random directions rescale rows), and the
zero-padded names keep JAX's sorted-key order equal to layer order for any depth.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd._checks import ArgumentError, ArgumentTypeError, check_choice, check_dtype, check_int

Params = Any  # a pytree of arrays

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),  # exact: x * Phi(x), as torch's default
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "identity": lambda z: z,
}
TASKS = ("regression", "classification")
LOSSES = ("xent", "mse")  # classification's loss: softmax cross-entropy, or squared error against one-hot targets
MAX_WIDTH = 100_000  # per hidden layer, in a spec such as "mlp:32,32"
MAX_HIDDEN_LAYERS = 1_000


class FirstLayer(NamedTuple):
    """A per-example loss split after its first layer's pre-activation, declared as the loss's
    attribute ``first_layer`` (jaxgd's :func:`mlp` does): ``loss(params, *example) ==
    rest(params, pre(params, *example), *example)``, with ``pre`` LINEAR in the parameters
    (``pre(α·p + β·q) = α·pre(p) + β·pre(q)``: ``w @ x + b`` is, in ``(w, b)`` together).
    A plane then computes ``pre`` once per direction instead of once per point
    (:func:`jaxgd.plane_surface`). A loss that declares it wrongly gets wrong planes: declare it
    only where it holds."""

    pre: Callable[..., Any]  # (params, *example) -> the pre-activation (any pytree of arrays)
    rest: Callable[..., jax.Array]  # (params, pre-activation, *example) -> scalar loss


class Model(NamedTuple):
    """A model as pure functions, plus the static description it was built from.

    ``init(key, dtype=None) -> params``; ``apply(params, x) -> (out,)`` for one example
    ``x`` of shape ``(in,)``; ``loss_per_example(params, x_i, y_i) -> ()``. ``sizes`` is
    ``(in, hidden..., out)``.
    """

    init: Callable[..., Params]
    apply: Callable[[Params, jax.Array], jax.Array]
    loss_per_example: Callable[[Params, jax.Array, jax.Array], jax.Array]
    sizes: tuple[int, ...]
    activation: str
    task: str


def layer_name(i: int, num_layers: int) -> str:
    """``"layer00"``, ``"layer01"``, ...: zero-padded to at least 2 digits so sorted = layer order."""
    return f"layer{i:0{max(2, len(str(num_layers - 1)))}d}"


def mlp(sizes, activation: str = "tanh", task: str = "regression", loss: str = "xent") -> Model:
    """A fully connected network ``sizes = (in, hidden..., out)``.

    Each layer computes ``h = w @ h + b`` with ``w`` of shape ``(out, in)``; ``activation``
    (one of :data:`ACTIVATIONS`; ``gelu`` is the exact erf form) follows every hidden layer,
    and the output layer is linear.

    ``init(key, dtype=None)``: LeCun-normal weights ``w ~ N(0, 1/in)`` and zero biases; layer
    ``l`` draws from ``jax.random.split(key, L)[l]``, so no key is used twice. ``dtype``
    defaults to JAX's default float (float64 under x64).

    ``task="regression"`` needs ``out == 1``; the loss is the squared error ``(f(x) - y)**2``
    with no 1/2 (so its mean over examples is the MSE) for a scalar ``y`` of shape ``()``.
    ``task="classification"`` needs ``out >= 2`` logits; the loss is the softmax
    cross-entropy ``-log_softmax(f(x))[y]`` for an integer label ``y`` in ``[0, out)``, or with
    ``loss="mse"`` the squared error ``Σ_k (f(x)_k − onehot(y)_k)²`` against the one-hot target
    (the MSE set-up of Cohen et al. 2021's edge-of-stability experiments).

    The result is cached: equal arguments return the same :class:`Model` and the same
    function objects, so a jitted engine that closes over them does not recompile.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ArgumentTypeError("sizes", f"must be a sequence of integers (in, hidden..., out), got {sizes!r}")
    sizes = tuple(check_int(f"sizes[{i}]", s, 1) for i, s in enumerate(sizes))
    if len(sizes) < 2:
        raise ArgumentError("sizes", f"must hold at least (in, out), got {sizes!r}")
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_choice("task", task, TASKS)
    check_choice("loss", loss, LOSSES)
    if task == "regression" and sizes[-1] != 1:
        raise ArgumentError("sizes", f"must end in 1 for task='regression' (one scalar output), got {sizes!r}")
    if task == "classification" and sizes[-1] < 2:
        raise ArgumentError("sizes", f"must end in the number of classes (>= 2) for task='classification', "
                                     f"got {sizes!r}")
    return _mlp(sizes, activation, task, loss if task == "classification" else "mse")


@functools.lru_cache(maxsize=128)
def _mlp(sizes: tuple[int, ...], activation: str, task: str, loss: str) -> Model:
    act = ACTIVATIONS[activation]
    num_layers = len(sizes) - 1
    names = [layer_name(i, num_layers) for i in range(num_layers)]

    def init(key: jax.Array, dtype=None) -> Params:
        dtype = check_dtype(dtype)
        keys = jax.random.split(key, num_layers)
        return {
            name: {"w": jax.random.normal(k, (n_out, n_in), dtype) / math.sqrt(n_in),
                   "b": jnp.zeros((n_out,), dtype)}
            for name, k, n_in, n_out in zip(names, keys, sizes[:-1], sizes[1:])
        }

    def first(params: Params, x: jax.Array) -> jax.Array:  # the first layer's pre-activation, (sizes[1],)
        x = jnp.asarray(x)
        if x.shape != (sizes[0],):
            raise ValueError(f"x must be one example of shape ({sizes[0]},), got shape {x.shape}")
        return params[names[0]]["w"] @ x + params[names[0]]["b"]

    def after(params: Params, h: jax.Array) -> jax.Array:  # from that pre-activation to the output
        for name in names[1:]:
            h = params[name]["w"] @ act(h) + params[name]["b"]
        return h

    def apply(params: Params, x: jax.Array) -> jax.Array:
        return after(params, first(params, x))

    def label(y_i) -> jax.Array:
        y_i = jnp.asarray(y_i)
        if y_i.shape != ():
            raise ValueError(f"y_i must be {'a scalar target' if task == 'regression' else 'one class label'} of "
                             f"shape (), got shape {y_i.shape}")
        if task == "classification" and not jnp.issubdtype(y_i.dtype, jnp.integer):
            raise TypeError(f"y_i must be an integer class label in [0, {sizes[-1]}), got dtype {y_i.dtype}")
        return y_i

    def head(out: jax.Array, y_i: jax.Array) -> jax.Array:
        if task == "regression":
            return (out[0] - y_i) ** 2
        if loss == "mse":
            return jnp.sum(jnp.square(out - jax.nn.one_hot(y_i, sizes[-1], dtype=out.dtype)))
        return -jax.nn.log_softmax(out)[y_i]

    def loss_per_example(params: Params, x_i: jax.Array, y_i: jax.Array) -> jax.Array:
        y_i = label(y_i)
        return head(apply(params, x_i), y_i)

    loss_per_example.first_layer = FirstLayer(lambda params, x_i, y_i: first(params, x_i),
                                              lambda params, z, x_i, y_i: head(after(params, z), label(y_i)))
    return Model(init, apply, loss_per_example, sizes, activation, task)


def num_params(params: Params) -> int:
    """The number of scalars in a parameter pytree (its leaves may be ``jax.ShapeDtypeStruct``)."""
    return sum(math.prod(leaf.shape if hasattr(leaf, "shape") else np.shape(leaf))
               for leaf in jax.tree_util.tree_leaves(params))


_SPEC = re.compile(r"[0-9]+", re.ASCII)


def parse_mlp_spec(spec: str) -> tuple[int, ...]:
    """Hidden-layer widths from a spec such as ``"mlp:32,32"`` → ``(32, 32)``.

    Each width is a decimal integer in ``[1, MAX_WIDTH]``; there are 1 to
    ``MAX_HIDDEN_LAYERS`` of them. Otherwise raises ``ArgumentError`` (a ValueError) named
    ``"spec"`` whose text quotes the spec.
    """
    if not isinstance(spec, str):
        raise ArgumentTypeError("spec", f"must be a string such as 'mlp:32,32', got {spec!r}")

    def bad(why: str) -> ValueError:
        return ArgumentError("spec", f"{spec!r} is not an MLP spec: {why}; write e.g. 'mlp:32,32' "
                                     f"(hidden-layer widths, each an integer in [1, {MAX_WIDTH}])")

    kind, colon, rest = spec.strip().partition(":")
    if kind.strip() != "mlp" or not colon:
        raise bad("it must start with 'mlp:'")
    if not rest.strip():
        raise bad("it lists no hidden-layer widths")
    parts = [p.strip() for p in rest.split(",")]
    if len(parts) > MAX_HIDDEN_LAYERS:
        raise bad(f"{len(parts)} hidden layers is more than {MAX_HIDDEN_LAYERS}")
    widths = []
    for p in parts:
        if not _SPEC.fullmatch(p):
            raise bad(f"width {p!r} is not a positive integer")
        w = int(p) if len(p) <= len(str(MAX_WIDTH)) else MAX_WIDTH + 1  # int() refuses > 4300 digits
        if not 1 <= w <= MAX_WIDTH:
            raise bad(f"width {p if len(p) <= 12 else p[:12] + '...'} is not in [1, {MAX_WIDTH}]")
        widths.append(w)
    return tuple(widths)
