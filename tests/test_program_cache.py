"""jaxgd's cache of compiled runs (what the ``jaxgd`` command turns on): a later process loads the
program instead of tracing it, gets the same bits, and never uses an entry it cannot trust."""

import dataclasses
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd.app import program_cache


@pytest.fixture
def cache(tmp_path):
    program_cache.enable(tmp_path)
    yield tmp_path
    program_cache.enable(None)


def _same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _entries(folder):
    return sorted(p.name for p in folder.glob("*.jaxgd-program"))


def test_a_new_process_loads_the_program_and_gets_the_same_bits(cache):
    p = jaxgd.notebook()
    before = program_cache.stats()
    a = jaxgd.run(p, "adam", lr=0.1, epochs=37, batch_size=5, seed=4)
    n = len(_entries(cache))  # the run, and the key of its sample order
    assert n == 2 and program_cache.stats()["stored"] == before["stored"] + n
    program_cache._loaded.clear()  # what a new process starts with
    b = jaxgd.run(p, "adam", lr=0.1, epochs=37, batch_size=5, seed=4)
    assert program_cache.stats()["hits"] == before["hits"] + n and len(_entries(cache)) == n
    _same(a, b)
    program_cache.enable(None)
    _same(a, jaxgd.run(p, "adam", lr=0.1, epochs=37, batch_size=5, seed=4))  # the plain compiled run
    program_cache.enable(cache)
    jaxgd.run(p, "momentum", lr=0.1, epochs=37, batch_size=5, seed=4)  # another optimizer: another program
    assert len(_entries(cache)) == n + 1


def test_a_broken_entry_is_compiled_again(cache):
    p = jaxgd.notebook()
    a = jaxgd.sweep(p, "gd", lr=np.array([0.01, 0.02]), epochs=11)
    (entry,) = cache.glob("*.jaxgd-program")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a full disk
    program_cache._loaded.clear()
    misses = program_cache.stats()["misses"]
    _same(a, jaxgd.sweep(p, "gd", lr=np.array([0.01, 0.02]), epochs=11))
    assert program_cache.stats()["misses"] == misses + 1 and entry.stat().st_size > 100  # and stored anew


def test_runs_without_a_stable_description_are_not_cached(cache):
    """A loss defined in a closure (a model's, a user's) cannot be told apart across processes."""
    p = jaxgd.notebook()
    scale = 2.0
    q = dataclasses.replace(p, loss_fn=lambda params, data, mask: scale * p.loss_fn(params, data, mask))
    t = jaxgd.run(q, "gd", lr=0.01, epochs=5)
    assert _entries(cache) == [] and np.isfinite(float(t.loss[-1]))
    jaxgd.run(p, "gd", lr=lambda step: 0.01, epochs=5)  # a schedule (a function of the step): not cached either
    assert _entries(cache) == []


def test_off_by_default():
    assert program_cache.stats()["dir"] is None  # the library never writes a cache by itself


def test_jax_cache_keeps_none_of_ours_and_the_rest_as_before(tmp_path):
    """A program this cache stores is not written to JAX's persistent cache as well; JAX's setting
    comes back after, so a program this cache cannot key is written there as before. In a fresh
    interpreter: JAX's cache folder is set once per process."""
    code = f"""
import os, jax, jaxgd
from jaxgd.app import program_cache
jax.config.update("jax_compilation_cache_dir", {str(tmp_path / "xla")!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
program_cache.enable({str(tmp_path / "programs")!r})
p = jaxgd.notebook()
jaxgd.run(p, "adam", lr=0.1, epochs=3)
jaxgd.run(p, "gd", lr=lambda step: 0.01, epochs=3)  # a schedule: not keyed here, so JAX's cache keeps it
print(jax.config.jax_persistent_cache_min_compile_time_secs, program_cache.stats()["stored"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    setting, stored = out.stdout.split()
    assert (float(setting), int(stored)) == (0.0, 1) and len(_entries(tmp_path / "programs")) == 1
    names = [p.name for p in (tmp_path / "xla").iterdir()]
    assert [n for n in names if "jaxgd_" in n] == []  # nothing of ours (jit_jaxgd_run_<key>)
    assert len([n for n in names if n.startswith("jit_one_run-")]) == 1  # the schedule's run
