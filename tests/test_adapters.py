"""Framework adapters (issue 19, items 2 and 3): one 2-32-32-1 tanh network with the same float64
weights, as jaxgd's dict MLP, in Equinox, Flax NNX and Flax Linen, trains along the same
trajectory; Flax's (in, out) kernels get the same random plane as the dict's (out, in) weights;
``Trajectory.model(k)`` gives the user's object back; state jaxgd would not carry is refused in
one line; the README's "Bring your own model" snippets run."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxgd
from jaxgd import engine
from jaxgd.adapters import ModelParams
from jaxgd.models import layer_name, mlp
from jaxgd.planes import plane_surface

pytestmark = pytest.mark.xdist_group("adapters")  # its module fixtures are made once (make test: --dist loadgroup)

SIZES = (2, 32, 32, 1)
_rng = np.random.default_rng(19)
LAYERS = [(_rng.standard_normal((o, i)) / np.sqrt(i), 0.1 * _rng.standard_normal(o)) for i, o in zip(SIZES[:-1], SIZES[1:])]
NAMES = [layer_name(k, len(LAYERS)) for k in range(len(LAYERS))]
X = _rng.standard_normal((40, 2))
Y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
DATA = (X, Y)


# --- the same network four ways ---------------------------------------------------------------

def dict_problem():
    params = {n: {"w": jnp.asarray(w), "b": jnp.asarray(b)} for n, (w, b) in zip(NAMES, LAYERS)}
    return jaxgd.model_problem(mlp(SIZES, "tanh").loss_per_example, params, DATA, name="dict")


def squared_error(model, x, y):
    """One example's loss, the same for every framework: ``model(x)`` is ``(1,)``."""
    return (model(x)[0] - y) ** 2


def equinox_model():
    m = eqx.nn.MLP(2, 1, 32, 2, activation=jnp.tanh, key=jax.random.key(0))
    return eqx.tree_at(lambda m: [leaf for layer in m.layers for leaf in (layer.weight, layer.bias)], m,
                       [jnp.asarray(a) for w, b in LAYERS for a in (w, b)])


class NnxMLP(nnx.Module):
    def __init__(self, layers=LAYERS):
        self.layers = nnx.List([nnx.Linear(w.shape[1], w.shape[0], param_dtype=jnp.float64, rngs=nnx.Rngs(0),
                                           kernel_init=lambda *_, w=w: jnp.asarray(w.T),
                                           bias_init=lambda *_, b=b: jnp.asarray(b)) for w, b in layers])

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = jnp.tanh(layer(x))
        return self.layers[-1](x)


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for k, (w, _) in enumerate(LAYERS):
            x = nn.Dense(w.shape[0], name=NAMES[k], param_dtype=jnp.float64)(x)
            x = jnp.tanh(x) if k < len(LAYERS) - 1 else x
        return x


LINEN_VARIABLES = {"params": {n: {"kernel": jnp.asarray(w.T), "bias": jnp.asarray(b)} for n, (w, b) in zip(NAMES, LAYERS)}}

FRAMEWORKS = {
    "dict": dict_problem,
    "equinox": lambda: jaxgd.from_equinox(equinox_model(), squared_error, DATA),
    "nnx": lambda: jaxgd.from_nnx(NnxMLP(), squared_error, DATA),
    "linen": lambda: jaxgd.from_linen(LinenMLP(), LINEN_VARIABLES, squared_error, DATA),
}


def as_dict_layers(framework, params):
    """``[(w (..., out, in), b (..., out))]`` per layer from a framework's parameters (any leading axes)."""
    if framework == "dict":
        return [(params[n]["w"], params[n]["b"]) for n in NAMES]
    p = params.params
    if framework == "equinox":
        return [(layer.weight, layer.bias) for layer in p.layers]
    layers = [p["layers"][k] for k in range(len(LAYERS))] if framework == "nnx" else [p[n] for n in NAMES]
    return [(jnp.swapaxes(q["kernel"], -1, -2), q["bias"]) for q in layers]


# --- one trajectory, four frameworks ----------------------------------------------------------

RUNS = {"gd": dict(optimizer="gd", lr=0.1, epochs=30),
        "adam minibatch": dict(optimizer="adam", lr=0.01, epochs=6, batch_size=8, seed=3),
        "minibatch sgd": dict(optimizer="gd", lr=0.05, epochs=6, batch_size=8, seed=3)}


@pytest.fixture(scope="module")
def problems():
    return {name: make() for name, make in FRAMEWORKS.items()}


@pytest.fixture(scope="module")
def trajectories(problems):
    return {(f, r): jaxgd.run(problems[f], **kw) for f in problems for r, kw in RUNS.items()}


def test_the_frameworks_start_from_the_same_network(problems):
    for f, p in problems.items():
        assert p.num_params == 2 * 32 + 32 + 32 * 32 + 32 + 32 + 1, f
        for (w, b), (w0, b0) in zip(as_dict_layers(f, p.init), LAYERS, strict=True):
            np.testing.assert_array_equal(np.asarray(w), w0)
            np.testing.assert_array_equal(np.asarray(b), b0)
    assert [p.neuron_axis for p in problems.values()] == [None, 0, -1, -1]


# Which frameworks compute bit for bit what the dict MLP computes: Equinox's Linear is the dict's
# ``w @ x + b`` (out, in); Flax's Dense is ``x @ kernel + bias`` with the kernel (in, out), a
# different contraction, so NNX and Linen agree bit for bit with each other but only to rounding
# with the dict.
BITWISE = {"equinox": "dict", "linen": "nnx"}


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("framework", ["equinox", "nnx", "linen"])
def test_every_framework_follows_the_dict_trajectory(trajectories, framework, run):
    ref, t = trajectories["dict", run], trajectories[framework, run]
    assert t.params is not None and t.loss.shape == ref.loss.shape == (t.steps + 1,)
    for (w, b), (w0, b0) in zip(as_dict_layers(framework, t.params), as_dict_layers("dict", ref.params), strict=True):
        np.testing.assert_allclose(w, w0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b, b0, rtol=0, atol=1e-12)
    for field in ("loss", "batch_loss", "grad_norm", "update_norm"):
        np.testing.assert_allclose(getattr(t, field), getattr(ref, field), rtol=1e-12, atol=1e-15)
    assert float(np.max(np.abs(np.asarray(as_dict_layers(framework, t.params)[0][0][-1]) - LAYERS[0][0]))) > 1e-3


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("framework, twin", BITWISE.items())
def test_frameworks_doing_the_same_operations_are_bit_identical(trajectories, framework, twin, run):
    t, u = trajectories[framework, run], trajectories[twin, run]
    for x, y in zip(jax.tree.leaves(as_dict_layers(framework, t.params)), jax.tree.leaves(as_dict_layers(twin, u.params)),
                    strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(t.loss, u.loss)


def test_flax_is_not_bit_identical_to_the_dict(trajectories):
    """The claim above is exact: the (in, out) contraction rounds differently somewhere."""
    t, ref = trajectories["nnx", "gd"], trajectories["dict", "gd"]
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(as_dict_layers("nnx", t.params)),
                                                         jax.tree.leaves(as_dict_layers("dict", ref.params))))


def test_a_second_problem_from_the_same_model_does_not_recompile(problems):
    jaxgd.run(problems["nnx"], "gd", lr=0.1, epochs=2)
    n = engine.run_compiled._cache_size()
    for f in ("equinox", "nnx", "linen"):
        jaxgd.run(problems[f], "gd", lr=0.2, epochs=2)
    m = engine.run_compiled._cache_size()
    for f in ("equinox", "nnx", "linen"):
        again = FRAMEWORKS[f]() if f != "equinox" else jaxgd.from_equinox(problems[f].init.model(), squared_error, DATA)
        jaxgd.run(again, "gd", lr=0.3, epochs=2)
    assert m <= n + 2 and engine.run_compiled._cache_size() == m


# --- the user's object back -------------------------------------------------------------------

TYPES = {"equinox": eqx.nn.MLP, "nnx": NnxMLP, "linen": dict}


@pytest.mark.parametrize("framework", ["equinox", "nnx", "linen"])
def test_model_gives_the_users_object_at_step_k(trajectories, problems, framework):
    t = trajectories[framework, "adam minibatch"]
    for k in (0, 7, -1):
        m = t.model(k)
        assert type(m) is TYPES[framework]
        x = X[5]
        want = jax.tree.map(lambda a: a[k], t.params).params
        if framework == "equinox":
            got = eqx.filter(m, eqx.is_inexact_array)
            out = m(x)
        elif framework == "nnx":
            got = nnx.to_pure_dict(nnx.state(m, nnx.Param))
            out = m(x)
        else:
            got = m["params"]
            out = LinenMLP().apply(m, x)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(a, b)
        ref = trajectories["dict", "adam minibatch"].model(k)
        assert isinstance(ref, dict) and set(ref) == set(NAMES)
        np.testing.assert_allclose(out, mlp(SIZES, "tanh").apply(ref, x), rtol=1e-12, atol=1e-14)
    assert t.model() is not t.model()  # a new object each call: the model held by the problem is never handed out


def test_model_in_a_sweep_takes_the_run(problems):
    s = jaxgd.sweep(problems["nnx"], "gd", lr=np.array([0.05, 0.1]), epochs=4)
    one = jaxgd.run(problems["nnx"], "gd", lr=0.1, epochs=4)
    for a, b in zip(jax.tree.leaves(nnx.state(s.model(3, run=1), nnx.Param)),
                    jax.tree.leaves(nnx.state(one.model(3), nnx.Param)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    with pytest.raises(jaxgd.ArgumentError, match="^run is required for a sweep's trajectory: which of its 2 runs$"):
        s.model(3)
    with pytest.raises(jaxgd.ArgumentError, match="^run is only for a sweep's trajectory; this is one run$"):
        one.model(3, run=0)
    with pytest.raises(jaxgd.ArgumentError, match=r"^step must be an integer in \[-5, 4\], got 5$"):
        one.model(5)
    final = jaxgd.sweep(problems["linen"], "gd", lr=np.array([0.05, 0.1]), epochs=4, final_only=True)
    np.testing.assert_array_equal(final.model(0, run=1)["params"][NAMES[0]]["kernel"],
                                  final.params.params[NAMES[0]]["kernel"][1, 0])


def test_a_saved_trajectory_rebuilds_with_its_problem(tmp_path, trajectories, problems):
    t = trajectories["equinox", "gd"]
    t.save(tmp_path / "t.npz")
    u = jaxgd.load(tmp_path / "t.npz")
    assert not isinstance(u.params, ModelParams)  # a stand-in: the file holds no code
    m = u.model(4, problem=problems["equinox"])
    assert type(m) is eqx.nn.MLP
    np.testing.assert_array_equal(m.layers[1].weight, t.model(4).layers[1].weight)
    with pytest.raises(jaxgd.ArgumentError, match="^problem has 6 parameter arrays, this trajectory 2: not the problem it came from$"):
        jaxgd.run(jaxgd.notebook(), epochs=2).model(problem=problems["equinox"])


# --- the layout: Flax (in, out) against the dict's (out, in) ----------------------------------

@pytest.mark.parametrize("framework", ["nnx", "linen"])
def test_flax_kernels_get_the_dict_networks_plane(problems, framework):
    key = jax.random.key(5)
    ref_problem, problem = problems["dict"], problems[framework]
    ref = jaxgd.random_plane(ref_problem, ref_problem.init, key)
    plane = jaxgd.random_plane(problem, problem.init, key)
    assert isinstance(plane.d1, ModelParams)
    for d_ref, d in [(ref.d1, plane.d1), (ref.d2, plane.d2)]:
        for (w, b), (w0, b0), (p, _) in zip(as_dict_layers(framework, d), as_dict_layers("dict", d_ref), LAYERS,
                                            strict=True):
            np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.linalg.norm(w0, axis=1), rtol=1e-12)
            np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.linalg.norm(p, axis=1), rtol=1e-12)
            np.testing.assert_allclose(w, w0, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(b, 0.0)
    a, b = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)
    S_ref = plane_surface(ref_problem, ref, a, b)
    np.testing.assert_allclose(plane_surface(problem, plane, a, b), S_ref, rtol=1e-12, atol=1e-14)
    assert np.ptp(np.asarray(S_ref)) > 1e-2


def test_without_the_declared_axis_flax_would_be_normalised_per_input(problems):
    """The check above can fail: the same plane taken with axis 0 scales the kernels' rows (inputs)."""
    problem = problems["linen"]
    wrong = jaxgd.random_plane(problem, problem.init, jax.random.key(5), neuron_axis=0)
    norms = [np.linalg.norm(w, axis=1) for w, _ in as_dict_layers("linen", wrong.d1)]
    assert not all(np.allclose(n, np.linalg.norm(p, axis=1)) for n, (p, _) in zip(norms, LAYERS))


# --- state jaxgd does not carry: refused in one line -----------------------------------------

class NnxBN(nnx.Module):
    def __init__(self):
        self.lin = nnx.Linear(2, 4, rngs=nnx.Rngs(0))
        self.bn = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
        self.out = nnx.Linear(4, 1, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.out(self.bn(self.lin(x)))


class LinenBN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
        return nn.Dense(1)(nn.BatchNorm(use_running_average=not train)(nn.Dense(4)(x)))


def linen_bn_train(model, x, y):
    return (model(x[None])[0, 0] - y) ** 2


def linen_bn_eval(model, x, y):
    return (model(x[None], train=False)[0, 0] - y) ** 2


def linen_bn_mutable(model, x, y):
    return (model(x[None], mutable=["batch_stats"])[0][0, 0] - y) ** 2


class NnxCountingBatchStat(nnx.Module):
    """A BatchStat written by the module itself (no nnx.BatchNorm): the trace catches it."""

    def __init__(self):
        self.lin = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
        self.seen = nnx.BatchStat(jnp.zeros(()))

    def __call__(self, x):
        self.seen[...] = self.seen[...] + 1
        return self.lin(x)


class NnxDropout(nnx.Module):
    def __init__(self, stream: bool):
        self.lin = nnx.Linear(2, 8, rngs=nnx.Rngs(0))
        self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=1) if stream else None)
        self.out = nnx.Linear(8, 1, rngs=nnx.Rngs(0))

    def __call__(self, x, key=None):
        h = self.drop(jnp.tanh(self.lin(x)), deterministic=key is None, rngs=key)
        return self.out(h)


def dropout_from_the_stream(model, x, y):
    """Dropout drawing from the module's own nnx.Rngs stream (its count is state)."""
    return (model.out(model.drop(jnp.tanh(model.lin(x))))[0] - y) ** 2


def _eqx_bn():
    return eqx.nn.Sequential([eqx.nn.Linear(2, 4, key=jax.random.key(0)), eqx.nn.BatchNorm(4, "batch", mode="batch")])


BN_ADVICE = "jaxgd does not carry BatchNorm running statistics"
REFUSED = {
    "equinox BatchNorm": (lambda: jaxgd.from_equinox(_eqx_bn(), squared_error, DATA),
                          f"model holds an eqx.nn.BatchNorm in training mode at .layers[1]: {BN_ADVICE}: use "
                          "eqx.nn.inference_mode(model) (fixed statistics) or eqx.nn.LayerNorm"),
    "nnx BatchNorm": (lambda: jaxgd.from_nnx(NnxBN(), squared_error, DATA),
                      f"model holds an nnx.BatchNorm in training mode at ['bn']: {BN_ADVICE}: call model.eval() "
                      "(fixed statistics) or use nnx.LayerNorm"),
    "nnx BatchStat": (lambda: jaxgd.from_nnx(NnxCountingBatchStat(), squared_error, DATA),
                      f"model is updated by the loss (BatchStat at ['seen']), but jaxgd keeps no state between "
                      f"steps: {BN_ADVICE}: call model.eval() (fixed statistics) or use LayerNorm"),
    "nnx dropout stream": (lambda: jaxgd.from_nnx(NnxDropout(stream=True), dropout_from_the_stream, DATA),
                           "model is updated by the loss (RngCount at ['drop']['rngs']['count']), but jaxgd keeps no "
                           "state between steps: switch dropout off (model.eval()) or draw its randomness from a key "
                           "jaxgd passes (takes_key=True)"),
    "linen BatchNorm": (lambda: jaxgd.from_linen(LinenBN(), LinenBN().init(jax.random.key(0), X[:2]), linen_bn_train,
                                                 DATA),
                        f"module writes a variable collection when applied: {BN_ADVICE} or other state: apply it with "
                        "use_running_average=True (fixed statistics) or use nn.LayerNorm"),
    "linen mutable": (lambda: jaxgd.from_linen(LinenBN(), LinenBN().init(jax.random.key(0), X[:2]), linen_bn_mutable,
                                               DATA),
                      "module is applied with mutable=['batch_stats'], but jaxgd keeps no state between steps: apply "
                      "it without mutable collections"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_state_that_training_would_update_is_refused_in_one_line(case):
    make, line = REFUSED[case]
    with pytest.raises(jaxgd.ArgumentError) as info:
        make()
    assert str(info.value) == line


def test_batchnorm_in_eval_mode_trains_with_fixed_statistics():
    """Eval mode is accepted: the statistics are constants, the scale and bias parameters."""
    eq = jaxgd.from_equinox(_EQX_BN, _eqx_bn_loss, DATA)
    bn = NnxBN()
    bn.eval()
    nx = jaxgd.from_nnx(bn, squared_error, DATA)
    variables = LinenBN().init(jax.random.key(0), X[:2])
    ln = jaxgd.from_linen(LinenBN(), variables, linen_bn_eval, DATA)
    assert (eq.num_params, nx.num_params, ln.num_params) == (2 * 4 + 4 + 4 + 4, 2 * 4 + 4 + 4 + 4 + 4 + 1,
                                                             2 * 4 + 4 + 4 + 4 + 4 + 1)
    for p in (eq, nx, ln):
        t = jaxgd.run(p, "adam", lr=0.01, epochs=20)
        assert float(t.loss[-1]) < float(t.loss[0])
    np.testing.assert_array_equal(t.model()["batch_stats"]["BatchNorm_0"]["mean"],
                                  variables["batch_stats"]["BatchNorm_0"]["mean"])


_EQX_BN = eqx.nn.inference_mode(_eqx_bn())
_EQX_STATE = eqx.nn.State(_EQX_BN)  # its running statistics: constants the loss closes over


def _eqx_bn_loss(model, x, y):
    out, _ = model(x, _EQX_STATE)
    return (out[0] - y) ** 2


def test_a_model_handed_out_is_a_copy():
    """Using the module ``t.model()`` gave (dropout on: its stream's count moves) changes nothing
    the problem holds: the next run is the same, bit for bit."""
    net = NnxDropout(stream=True)
    net.eval()
    p = jaxgd.from_nnx(net, squared_error, DATA)
    t = jaxgd.run(p, "gd", lr=0.1, epochs=3)
    m = t.model()
    m.train()
    dropout_from_the_stream(m, X[0], Y[0])
    assert int(m.drop.rngs.count[...]) == 1 and int(net.drop.rngs.count[...]) == 0
    u = jaxgd.run(p, "gd", lr=0.1, epochs=3)
    for a, b in zip(jax.tree.leaves(t), jax.tree.leaves(u), strict=True):
        np.testing.assert_array_equal(a, b)


# --- randomness from jaxgd's keys, and the batch form ----------------------------------------

class EqxDropout(eqx.Module):
    lin: eqx.nn.Linear
    drop: eqx.nn.Dropout
    out: eqx.nn.Linear

    def __init__(self):
        k1, k2 = jax.random.split(jax.random.key(0))
        self.lin, self.drop, self.out = eqx.nn.Linear(2, 8, key=k1), eqx.nn.Dropout(0.5), eqx.nn.Linear(8, 1, key=k2)

    def __call__(self, x, key=None):
        return self.out(self.drop(jnp.tanh(self.lin(x)), key=key, inference=key is None))


def keyed_loss(model, x, y, key):
    return (model(x, key=key)[0] - y) ** 2


class LinenDropout(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(1)(nn.Dropout(0.5, deterministic=not train)(jnp.tanh(nn.Dense(8)(x))))


def linen_keyed_loss(model, x, y, key):
    return (model(x, train=key is not None, rngs=None if key is None else {"dropout": key})[0] - y) ** 2


@pytest.mark.parametrize("make", [lambda: jaxgd.from_equinox(EqxDropout(), keyed_loss, DATA, takes_key=True),
                                  lambda: jaxgd.from_nnx(NnxDropout(stream=False), keyed_loss, DATA, takes_key=True),
                                  lambda: jaxgd.from_linen(LinenDropout(), LinenDropout().init(jax.random.key(0), X[0]),
                                                           linen_keyed_loss, DATA, takes_key=True)],
                         ids=["equinox", "nnx", "linen"])
def test_dropout_runs_are_reproducible_by_seed_and_differ_across_seeds(make):
    p = make()  # full batch: the seed changes nothing but the dropout keys
    a, b, c = (jaxgd.run(p, "gd", lr=0.1, epochs=6, seed=s) for s in (1, 1, 2))
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.batch_loss, c.batch_loss)
    # the recorded full-data loss is measured with key=None (dropout off): the deterministic model's
    np.testing.assert_allclose(a.loss[4], p.full_loss(jax.tree.map(lambda v: v[4], a.params)), rtol=1e-12)


def batch_squared_error(model, batch, mask):
    x, y = batch
    e = (model(x)[:, 0] - y) ** 2
    return jnp.mean(e) if mask is None else jnp.sum(jnp.where(mask, e, 0)) / jnp.sum(mask)


def test_the_batch_form_follows_the_per_example_trajectory(trajectories):
    p = jaxgd.from_linen(LinenMLP(), LINEN_VARIABLES, batch_squared_error, DATA, batched=True)
    t = jaxgd.run(p, **RUNS["minibatch sgd"])
    ref = trajectories["linen", "minibatch sgd"]
    for x, y in zip(jax.tree.leaves(t.params), jax.tree.leaves(ref.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


# --- errors and the missing extra --------------------------------------------------------------

def test_errors_name_the_adapters_arguments():
    with pytest.raises(jaxgd.ArgumentTypeError, match="^model must be an equinox.Module, got dict$"):
        jaxgd.from_equinox({"w": 1.0}, squared_error, DATA)
    with pytest.raises(jaxgd.ArgumentTypeError, match="^variables must be the module's variables, a mapping with a "
                                                      "'params' collection"):
        jaxgd.from_linen(LinenMLP(), {"batch_stats": {}}, squared_error, DATA)
    with pytest.raises(jaxgd.ArgumentError, match="^loss must return a scalar per example, got shape \\(1,\\)$"):
        jaxgd.from_nnx(NnxMLP(), lambda m, x, y: m(x) - y, DATA)
    with pytest.raises(jaxgd.ArgumentTypeError, match="^loss must be a function"):
        jaxgd.from_nnx(NnxMLP(), "mse", DATA)


@pytest.mark.parametrize("adapter, module", [("from_equinox", "equinox"), ("from_nnx", "flax"),
                                             ("from_linen", "flax")])
def test_without_the_framework_the_adapter_names_the_extra(monkeypatch, adapter, module):
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError) as info:
        getattr(jaxgd, adapter)(None, None, None) if adapter != "from_linen" else jaxgd.from_linen(None, None, None, None)
    assert str(info.value) == (f"jaxgd.{adapter} needs {module}, which is not installed: "
                               "pip install 'jaxgd[frameworks]'")


# --- the README's snippets run ----------------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_snippets(section: str) -> list[str]:
    """The ```python blocks of the README's section ``## {section}`` (up to the next ``## ``)."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


SNIPPETS = readme_snippets("Bring your own model")


def test_the_readme_has_a_snippet_per_framework():
    assert [("from_equinox" in s, "from_nnx" in s, "from_linen" in s) for s in SNIPPETS] == [
        (True, False, False), (False, True, False), (False, False, True)]
    for s in SNIPPETS:  # at most ten user lines each
        assert len([line for line in s.splitlines() if line.strip() and not line.startswith(("import ", "from "))]) <= 10, s


@pytest.mark.parametrize("i", range(len(SNIPPETS)))
def test_the_readme_snippets_run(i):
    scope = {}
    exec(compile(SNIPPETS[i], f"README.md snippet {i}", "exec"), scope)  # noqa: S102
    t = scope["t"]
    assert float(t.loss[-1]) < float(t.loss[0]) and int(t.diverged_at) == -1
