"""Issue 19, items 6–8: keep and share results (``Trajectory.save`` / ``jaxgd.load``, no pickle),
progress from Python (``progress=True``: bit for bit the same results), and one-line errors for a
model with non-array leaves and for a parameter tree that differs from the problem's."""

import collections
import dataclasses
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import trajio
from jaxgd.models import mlp


@pytest.fixture(scope="module")
def mlp_problem():
    """A 3-8-1 tanh MLP (a dict of layers) on 24 points, float64."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2]
    model = mlp((3, 8, 1), "tanh", "regression")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(1)), (x, y), name="mlp")


def same(a, b) -> bool:
    """Equal trees: the same structure, and every leaf equal in dtype, shape and bits (NaN = NaN)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if jax.tree.structure(a) != jax.tree.structure(b) or len(la) != len(lb):
        return False
    return all(np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y, equal_nan=True)
               for x, y in zip(la, lb))


def host(t):
    return jax.tree.map(np.asarray, t)


# --- item 6: save and load ------------------------------------------------------------------------

RUNS = {
    "notebook adam": lambda p: jaxgd.run(jaxgd.notebook(), "adam", lr=0.1, epochs=5, batch_size=8),
    "float32": lambda p: jaxgd.run(jaxgd.notebook(dtype="float32"), "momentum", lr=0.01, epochs=4),
    "diverged (NaN, inf)": lambda p: jaxgd.run(jaxgd.notebook(), "gd", lr=1e3, epochs=300),
    "sharpness": lambda p: jaxgd.run(jaxgd.notebook(), "gd", lr=0.1, epochs=4, sharpness_every=2),
    "mlp dict, adam": lambda p: jaxgd.run(p, "adam", lr=0.01, epochs=2, batch_size=8),
    "sweep": lambda p: jaxgd.sweep(p, ["gd", "adam"], lr=[0.1, 0.01], epochs=3),
    "final_only sweep": lambda p: jaxgd.sweep(jaxgd.notebook(), "gd", lr=[0.01, 0.1, 1e3], epochs=50,
                                              final_only=True),
}


@pytest.mark.parametrize("case", RUNS)
def test_a_trajectory_comes_back_as_it_was(case, mlp_problem, tmp_path):
    t = RUNS[case](mlp_problem)
    path = tmp_path / "run.npz"
    t.save(path)
    u = jaxgd.load(path)
    assert type(u) is jaxgd.Trajectory and same(u, host(t))
    assert type(u.params) is type(t.params)  # Params, or the MLP's dict of layers
    assert os.listdir(tmp_path) == ["run.npz"]  # no temporary file left behind
    if case == "diverged (NaN, inf)":
        assert u.diverged_at >= 0 and not np.all(np.isfinite(u.loss))
    if case == "final_only sweep":
        assert u.first_moment is None and u.sharpness is None and u.loss.shape == (3, 1)
    if case == "float32":
        assert u.loss.dtype == np.float32


def test_any_tree_of_arrays_round_trips(tmp_path):
    Other = collections.namedtuple("Other", "a b")
    tree = {"x": Other(np.float32(1.5), [None, (np.arange(3), jnp.array([np.nan, np.inf, -np.inf]))]),
            "ints": {3: np.zeros(1), 1: ()}, "empty": {}, "p": jaxgd.Params(np.zeros(2), np.ones(2))}
    trajio.save_tree(tree, tmp_path / "t.npz")
    back = trajio.load_tree(tmp_path / "t.npz", known=(jaxgd.Params,))
    assert type(back["p"]) is jaxgd.Params
    other = back["x"]  # an unknown NamedTuple: a namedtuple stand-in of the same name and fields
    assert type(other).__name__ == "Other" and other._fields == ("a", "b") and type(other) is not Other
    assert same(back, {**tree, "x": type(other)(*tree["x"])})


def test_the_file_is_plain_npz_and_json(tmp_path):
    """No pickle: every entry loads with allow_pickle=False; the description is JSON."""
    path = tmp_path / "run.npz"
    jaxgd.run(jaxgd.notebook(), "adam", lr=0.1, epochs=3).save(path)
    with np.load(path, allow_pickle=False) as z:
        head = json.loads(z[trajio.DESCRIPTION].tobytes())
        assert all(not z[k].dtype.hasobject for k in z.files)
    assert head["format"] == "jaxgd.tree" and head["version"] == 1
    tree = head["tree"]
    assert tree["type"] == "jaxgd.engine.Trajectory" and tree["fields"][0] == "params"
    assert tree["items"][0] == {"t": "namedtuple", "type": "jaxgd.model.Params", "fields": ["w", "b"],
                                "items": [{"t": "array", "dtype": "<f8", "shape": [4]}] * 2}


def test_save_replaces_a_file_and_refuses_a_folder(tmp_path):
    path = tmp_path / "run.npz"
    path.write_text("old")
    t = jaxgd.run(jaxgd.notebook(), epochs=2)
    t.save(str(path))
    assert same(jaxgd.load(str(path)), host(t))
    with pytest.raises(ValueError, match=r"^path '.*' is a folder: give a file name, e.g. '.*run.npz'$"):
        t.save(tmp_path)
    with pytest.raises(ValueError, match=r"^path '.*nowhere/run.npz': its folder '.*nowhere' does not exist$"):
        t.save(tmp_path / "nowhere" / "run.npz")
    with pytest.raises(TypeError, match=r"^tree holds a function at \['f'\]: only arrays"):
        trajio.save_tree({"f": lambda: 0}, tmp_path / "f.npz")
    with pytest.raises(TypeError, match=r"^tree holds a bfloat16 array at \['a'\]\[0\]: only arrays of NumPy's own"):
        trajio.save_tree({"a": [jnp.ones(2, jnp.bfloat16)]}, tmp_path / "f.npz")
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def _npy(path):
    with open(path, "wb") as f:  # a .npy array under an .npz name
        np.save(f, np.zeros(3))


def _newer(path):
    head = {"format": "jaxgd.tree", "version": 2, "tree": {"t": "none"}}
    np.savez(path, **{trajio.DESCRIPTION: np.frombuffer(json.dumps(head).encode(), np.uint8)})


def _pickled(path):
    head = {"format": "jaxgd.tree", "version": 1, "tree": {"t": "array", "dtype": "|O", "shape": [1]}}
    np.savez(path, leaf0=np.array([object()], dtype=object),
             **{trajio.DESCRIPTION: np.frombuffer(json.dumps(head).encode(), np.uint8)})


def _damaged(path):
    jaxgd.run(jaxgd.notebook(), epochs=2).save(path)
    with np.load(path) as z:
        entries = dict(z)
    entries["leaf0"] = entries["leaf0"][:1]
    np.savez(path, **entries)


BAD_FILES = [
    (None, r"^path '.*missing.npz' does not exist$"),
    ("folder", r"^path '.*folder' is a folder, not a saved jaxgd trajectory$"),
    (lambda p: p.write_text("w,b\n1,2\n"), r"^path '.*' is not a jaxgd trajectory file \(one written by Trajectory.save\)$"),
    (lambda p: np.savez(p, a=np.zeros(3)), r"is not a jaxgd trajectory file"),
    (_npy, r"is not a jaxgd trajectory file"),
    (_newer, r"^path '.*' was written in format version 2, newer than this jaxgd reads \(1\): upgrade jaxgd$"),
    (_pickled, r"is not a jaxgd trajectory file"),
    (_damaged, r"^path '.*' holds a damaged jaxgd trajectory \(its description and arrays disagree\)$"),
]


@pytest.mark.parametrize("make, match", BAD_FILES)
def test_bad_files_fail_in_one_line(make, match, tmp_path):
    path = tmp_path / ("missing.npz" if make is None else "folder" if make == "folder" else "bad.npz")
    if make == "folder":
        path.mkdir()
    elif make is not None:
        make(path)
    with pytest.raises(jaxgd.ArgumentError, match=match) as e:
        jaxgd.load(path)
    assert "\n" not in str(e.value)


# --- item 7: progress ------------------------------------------------------------------------------

def _no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError: our own text bar


# Full batch, 101 steps: 16 chunks of 6 blocks and a shorter last one (two programs). Minibatches of 5
# of 24 points (a ragged batch each epoch): a chunk per epoch, with the sharpness every 3 steps, its
# warm start carried across the chunks' edges (Lanczos in every program: the slow part of this test).
@pytest.mark.parametrize("kw", [dict(epochs=101), dict(epochs=4, batch_size=5, sharpness_every=3)])
def test_progress_gives_the_same_run_bit_for_bit(kw, capsys, monkeypatch, mlp_problem):
    _no_tqdm(monkeypatch)
    plain = jaxgd.run(mlp_problem, "adam", lr=0.01, **kw)
    assert capsys.readouterr().err == ""  # off by default
    shown = jaxgd.run(mlp_problem, "adam", lr=0.01, progress=True, **kw)
    assert same(host(shown), host(plain))
    lines = capsys.readouterr().err.splitlines()  # stderr is not a terminal here: a line per tenth
    steps = plain.steps
    assert lines[0] == "run: compiling..." and lines[-1] == f"run: 100 % ({steps:,} of {steps:,} steps)"
    pcts = [int(line.split()[1]) for line in lines[1:]]
    assert pcts == sorted(pcts) and len(lines) <= 11


def test_progress_with_a_callback_and_chunk(capsys, monkeypatch):
    _no_tqdm(monkeypatch)
    seen = []
    t = jaxgd.run(jaxgd.notebook(), "gd", lr=0.1, epochs=10, chunk=5, callback=lambda d, n: seen.append((d, n)),
                  progress=True)
    assert seen == [(5, 10), (10, 10)] and same(host(t), host(jaxgd.run(jaxgd.notebook(), "gd", lr=0.1, epochs=10)))
    assert capsys.readouterr().err.splitlines() == ["run: compiling...", "run:  50 % (5 of 10 steps)",
                                                    "run: 100 % (10 of 10 steps)"]


def test_sweep_progress_shows_compiling_then_done(capsys, monkeypatch):
    _no_tqdm(monkeypatch)
    p = jaxgd.notebook()
    shown = jaxgd.sweep(p, "gd", lr=[0.01, 0.1], epochs=6, progress=True)
    assert capsys.readouterr().err.splitlines() == ["sweep of 2 runs: compiling...",
                                                    "sweep of 2 runs: 100 % (6 of 6 steps)"]
    assert same(shown, jaxgd.sweep(p, "gd", lr=[0.01, 0.1], epochs=6))


def test_progress_uses_tqdm_where_installed(capsys):
    pytest.importorskip("tqdm")
    jaxgd.run(jaxgd.notebook(), "gd", lr=0.1, epochs=40, progress=True)
    err = capsys.readouterr().err
    assert "run (compiling)" in err and "40/40" in err


def test_the_text_bar_on_a_terminal_rewrites_one_line(capsys, monkeypatch):
    monkeypatch.setattr(jaxgd.progress, "is_terminal", lambda: True)
    bar = jaxgd.progress.TextBar(4, "run")
    for k in range(1, 5):
        bar.update(k)
    bar.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("[" + "#" * 30 + "] 100 % (4 of 4 steps)\n")
    assert err.startswith("\rrun: compiling...\rrun: [#######......")


@pytest.mark.parametrize("blocks, per_chunk", [(1, 1), (20, 1), (40, 2), (101, 6), (1000, 50), (997, 50)])
def test_chunks_of_one_size_where_possible(blocks, per_chunk):
    assert jaxgd.progress.chunk_blocks(blocks) == per_chunk


def test_progress_must_be_a_bool():
    with pytest.raises(TypeError, match=r"^progress must be True or False, got 'yes'$"):
        jaxgd.run(jaxgd.notebook(), progress="yes")
    with pytest.raises(TypeError, match=r"^progress must be True or False, got 1$"):
        jaxgd.sweep(jaxgd.notebook(), progress=1)


# --- item 8: errors for this user -------------------------------------------------------------------

DATA = (np.zeros((3, 2)), np.zeros(3))
HINT = ("not an array: for an Equinox or Flax model use jaxgd.from_equinox, from_nnx or from_linen; "
        "else pass only its arrays")


@pytest.mark.parametrize("leaf, kind", [(jax.nn.relu, "custom_jvp"), ("relu", "str"), (lambda x: x, "function"),
                                        (object(), "object")])
def test_a_model_with_non_array_leaves_names_the_leaf_and_the_filter(leaf, kind):
    params = {"layer": {"w": np.zeros(2), "activation": leaf}}
    with pytest.raises(TypeError) as e:
        jaxgd.model_problem(lambda p, x, y: jnp.sum(p["layer"]["w"] * x), params, DATA)
    assert str(e.value) == f"params0 holds a {kind} at ['layer']['activation'], {HINT}"
    assert len(str(e.value)) <= 200


@pytest.fixture(scope="module")
def dict_problem():
    return jaxgd.model_problem(lambda p, x, y: (x @ p["w"] + p["b"] - y) ** 2, {"w": np.zeros(2), "b": np.zeros(())},
                               DATA)


HEAD = "init must be a pytree shaped like the problem's parameters: "
MISMATCHES = [
    ({"w": np.zeros(2), "bias": 0.0}, "missing ['b']; unexpected ['bias']"),
    ({"w": np.zeros(2)}, "missing ['b']"),
    ((np.zeros(2), 0.0), "the root is a tuple, not a dict"),
    ({"w": [np.zeros(1), np.zeros(1)], "b": 0.0}, "['w'] is a list, not a leaf"),
    ({"w": np.zeros(2), "b": None}, "['b'] is None, not a leaf"),
    ({"w": np.zeros(2), "b": 0.0, **{f"k{i}": 0.0 for i in range(40)}},
     "unexpected ['k0']; unexpected ['k1']; unexpected ['k10']; unexpected ['k11']; unexpected ['k12']; "
     "unexpected ['k13']; and 34 more"),
]


@pytest.mark.parametrize("init, diff", MISMATCHES)
@pytest.mark.parametrize("door", [jaxgd.run, jaxgd.sweep])
def test_a_tree_mismatch_names_only_the_differing_leaves(door, init, diff, dict_problem):
    with pytest.raises(TypeError) as e:
        door(dict_problem, init=init)
    assert str(e.value) == HEAD + diff and len(str(e.value)) <= 200


def test_a_long_path_is_cut_to_the_limit(dict_problem):
    with pytest.raises(TypeError) as e:
        jaxgd.run(dict_problem, init={"w": np.zeros(2), "b": 0.0, "x" * 300: 0.0})
    assert str(e.value).startswith(HEAD + "unexpected ['xxx") and str(e.value).endswith("…")
    assert len(str(e.value)) <= 200


def test_a_shape_mismatch_names_the_leaf(mlp_problem):
    bad = jax.tree.map(np.asarray, mlp_problem.init)
    bad["layer00"]["w"] = bad["layer00"]["w"][:, :2]
    with pytest.raises(ValueError, match=r"^init must have shape \(8, 3\) at \['layer00'\]\['w'\], got \(8, 2\)$"):
        jaxgd.run(mlp_problem, init=bad)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Linear:
    """A pytree node of our own, as an Equinox module is one (its fields are attributes)."""

    weight: jax.Array
    bias: jax.Array | None
    _scale: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Dense:
    w: jax.Array
    b: jax.Array


def test_another_pytree_node_comes_back_as_a_stand_in(tmp_path):
    """A node jaxgd does not know comes back as a namedtuple of its attribute names (a tuple where
    a name cannot be a field: ``_scale``); unflattening with the user's structure rebuilds it."""
    params = {"lin": Linear(np.ones((2, 3)), None, np.float64(2.0))}
    p = jaxgd.model_problem(lambda q, x, y: (q["lin"]._scale * jnp.sum(q["lin"].weight @ x) - y) ** 2, params,
                            (np.ones((4, 3)), np.zeros(4)))
    t = jaxgd.run(p, "adam", lr=0.01, epochs=3)
    t.save(tmp_path / "lin.npz")
    u = jaxgd.load(tmp_path / "lin.npz")
    assert type(u.params["lin"]) is tuple and u.params["lin"][1] is None  # _scale: no namedtuple field
    rebuilt = jax.tree.unflatten(jax.tree.structure(t.params), jax.tree.leaves(u.params))
    assert type(rebuilt["lin"]) is Linear and same(rebuilt, host(t.params))
    trajio.save_tree([Dense(np.ones(2), np.float32(0))], tmp_path / "dense.npz")
    back = trajio.load_tree(tmp_path / "dense.npz")[0]
    assert type(back).__name__ == "Dense" and back._fields == ("w", "b") and back.b.dtype == np.float32
