"""jaxgd's cache of compiled runs (what the ``jaxgd`` command turns on): a later process loads the
program instead of tracing it, gets the same bits, and never uses an entry it cannot trust."""

import base64
import dataclasses
import gzip
import hashlib
import os
import pickle
import shutil
import stat
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd.app import program_cache

pytestmark = pytest.mark.xdist_group("program_cache")  # its module fixture is made once (make test: --dist loadgroup)

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


# ----------------------------------------------------------------------------- a cache nobody else can feed
# An entry is a pickle, and a pickle runs code when loaded. A planted entry here unpickles to a
# marker folder (os.mkdir): the marker's absence shows, independently of the cache's own counters,
# that the entry was never unpickled. A well-formed plant in the user's own folder does make the
# marker (the control case), so the refusals below are the checks' doing.

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user (chown) needs root")
NOBODY = 65534


class _Plant:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _plant(path, header: bytes, marker) -> None:
    """An entry at ``path`` in the cache's layout (header line, SHA-256 line, pickle) that makes ``marker``."""
    payload = pickle.dumps(_Plant(marker))
    path.write_bytes(header + b"\n" + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """The name, header line and key of a real entry (one full-batch gd run's)."""
    folder = tmp_path_factory.mktemp("keyed")
    program_cache.enable(folder)
    try:
        jaxgd.run(jaxgd.notebook(), "gd", lr=0.01, epochs=3)
    finally:
        program_cache.enable(None)
    (entry,) = folder.glob("*.jaxgd-program")
    header = entry.read_bytes().split(b"\n")[0]
    key = header.split()[3].decode()
    assert header.startswith(b"jaxgd-program ") and key.startswith(entry.name[:40])
    return entry.name, header, key


def _away(entry):  # the entry elsewhere, and a link to it in its place
    entry.rename(entry.parent.parent / "elsewhere")
    entry.symlink_to(entry.parent.parent / "elsewhere")


PLACES = {
    "the user's own (the control: unpickled)": lambda folder, entry: None,
    "folder writable by its group": lambda folder, entry: folder.chmod(0o770),
    "folder writable by anyone": lambda folder, entry: folder.chmod(0o703),
    "a folder above writable by anyone": lambda folder, entry: folder.parent.chmod(0o777),
    "entry writable by its group": lambda folder, entry: entry.chmod(0o620),
    "entry writable by anyone": lambda folder, entry: entry.chmod(0o602),
    "entry a link": lambda folder, entry: _away(entry),
    "entry of another user": pytest.param(lambda folder, entry: os.chown(entry, NOBODY, NOBODY), marks=needs_root),
    "folder of another user": pytest.param(lambda folder, entry: os.chown(folder, NOBODY, NOBODY), marks=needs_root),
}


@pytest.mark.parametrize("place", PLACES.values(), ids=PLACES.keys())
def test_an_entry_is_unpickled_only_from_the_users_own_folder(tmp_path, keyed, place):
    name, header, key = keyed
    folder = tmp_path / "programs"
    folder.mkdir(mode=0o700)
    _plant(folder / name, header, tmp_path / "marker")
    (folder / name).chmod(0o600)
    place(folder, folder / name)
    said = []
    program_cache.tell(said.append)  # the command's -v
    try:
        assert program_cache._load(folder / name, key) is None  # nothing runnable, whatever the case
        program_cache._load(folder / name, key)  # said once only
    finally:
        program_cache.tell(None)
    control = place is PLACES["the user's own (the control: unpickled)"]
    assert (tmp_path / "marker").exists() == control
    assert len(said) == (0 if control else 1) and all(s.startswith("jaxgd: cache: ") for s in said), said


def test_refusals_are_said_only_when_asked(tmp_path, keyed, capsys):
    """Silent by default; with ``tell`` (``-v``) each refusal once, naming the path and the reason."""
    name, header, key = keyed
    _plant(tmp_path / name, HEADERS["another format"](header, key), tmp_path / "marker")
    assert program_cache._load(tmp_path / name, key) is None
    said = []
    program_cache.tell(said.append)
    try:
        for _ in range(2):
            program_cache._load(tmp_path / name, key)
        tmp_path.chmod(0o770)
        program_cache._load(tmp_path / name, key)
    finally:
        program_cache.tell(None)
        tmp_path.chmod(0o700)
    assert said == [f"jaxgd: cache: {tmp_path / name} skipped: of another program, format or version; made anew",
                    f"jaxgd: cache: {tmp_path} not used: it is another user's or writable by others"]
    assert capsys.readouterr().err == ""


def test_a_folder_others_can_write_is_no_cache(tmp_path, monkeypatch):
    """Neither jaxgd's cache nor JAX's (which loads executables too) is turned on there."""
    from jaxgd.app import cli

    jax_cache = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("JAXGD_CACHE_DIR", str(tmp_path / "xla"))
    for mode in (0o770, 0o707):
        tmp_path.chmod(mode)
        program_cache.enable(tmp_path)
        assert program_cache.stats()["dir"] is None and program_cache.own_folder(tmp_path / "sub") is None
        assert cli._setup_cache() is None and program_cache.stats()["dir"] is None
        assert jax.config.jax_compilation_cache_dir == jax_cache
    tmp_path.chmod(0o1777)  # sticky, as /tmp: no one else can rename or remove what is in it
    assert program_cache.own_folder(tmp_path / "sub") == tmp_path / "sub"


def test_the_command_says_why_with_v(tmp_path, monkeypatch, cli):
    """``jaxgd run -v``: the refused cache folder in one line on stderr; without -v nothing."""
    monkeypatch.setenv("JAXGD_CACHE_DIR", str(tmp_path / "xla"))
    tmp_path.chmod(0o777)
    try:
        quiet, loud = cli(["run", "--epochs", "2"]), cli(["run", "--epochs", "2", "-v"])
    finally:
        tmp_path.chmod(0o700)
        program_cache.tell(None)
    assert quiet[0] == loud[0] == 0 and quiet[2] == ""
    assert loud[2] == f"jaxgd: cache: {tmp_path / 'xla'} not used: a folder above it is another user's or writable by others\n"


def test_a_run_never_loads_an_entry_from_a_folder_others_came_to_write(cache, keyed):
    """The cache's folder made writable by its group after the cache was turned on: a well-formed
    entry planted there (the right name, header and checksum) is not unpickled; the run is compiled."""
    name, header, key = keyed
    cache.chmod(0o770)
    _plant(cache / name, header, cache / "marker")
    misses = program_cache.stats()["misses"]
    t = jaxgd.run(jaxgd.notebook(), "gd", lr=0.01, epochs=3)
    assert not (cache / "marker").exists() and program_cache.stats()["misses"] == misses + 1  # looked, refused
    program_cache.enable(None)
    _same(t, jaxgd.run(jaxgd.notebook(), "gd", lr=0.01, epochs=3))


HEADERS = {
    "another program's key": lambda h, key: h.replace(key.encode(), hashlib.sha256(b"another").hexdigest().encode()),
    "another jax and jaxlib": lambda h, key: h.replace(jax.__version__.encode(), b"0.0.1"),
    "other jaxgd sources": lambda h, key: h.replace(h.split()[5], b"0" * 64),
    "another format": lambda h, key: h.replace(b"jaxgd-program 1", b"jaxgd-program 9"),
}


@pytest.mark.parametrize("other", HEADERS.values(), ids=HEADERS.keys())
def test_an_entry_of_another_program_or_version_is_never_unpickled(tmp_path, keyed, other):
    name, header, key = keyed
    _plant(tmp_path / name, other(header, key), tmp_path / "marker")
    assert other(header, key) != header and program_cache._load(tmp_path / name, key) is None
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("damage", ["bare pickle (no header)", "truncated", "one byte changed"])
def test_a_damaged_entry_is_never_unpickled(tmp_path, keyed, damage):
    name, header, key = keyed
    entry = tmp_path / name
    _plant(entry, header, tmp_path / "marker")
    data = entry.read_bytes()
    payload = data.split(b"\n", 2)[2]
    entry.write_bytes({"bare pickle (no header)": payload, "truncated": data[:-3],
                       "one byte changed": data[:-2] + bytes([data[-2] ^ 1]) + data[-1:]}[damage])
    assert program_cache._load(entry, key) is None and not (tmp_path / "marker").exists()


def test_an_entry_stored_under_another_programs_key_does_not_run_it(cache):
    """Issue 23: momentum's entry stored under nesterov's name made ``jaxgd run --optimizer nesterov``
    print momentum's numbers. The header's key tells them apart: nesterov is compiled and its entry
    written anew."""
    p = jaxgd.notebook()
    names, first = {}, {}
    for opt in ("momentum", "nesterov"):
        before = set(_entries(cache))
        first[opt] = jaxgd.run(p, opt, lr=0.05, epochs=5)  # compiled, as without the cache
        (names[opt],) = set(_entries(cache)) - before
    (cache / names["nesterov"]).write_bytes((cache / names["momentum"]).read_bytes())
    program_cache._loaded.clear()  # what a new process starts with
    t = jaxgd.run(p, "nesterov", lr=0.05, epochs=5)
    _same(t, first["nesterov"])
    assert float(t.loss[-1]) != float(first["momentum"].loss[-1])
    assert (cache / names["nesterov"]).read_bytes().split()[3].decode().startswith(names["nesterov"][:40])


def test_folders_are_made_0700_and_entries_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        folder = program_cache.own_folder(tmp_path / "a" / "b")
        assert program_cache.write_entry(folder / "e", "a header", b"what it holds")
    finally:
        os.umask(old)
    modes = [stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "a", folder, folder / "e")]
    assert modes == [0o700, 0o700, 0o600] and os.listdir(folder) == ["e"]
    assert program_cache.read_entry(folder / "e", "a header") == b"what it holds"


def test_a_read_only_or_full_cache_is_silent_and_changes_nothing(tmp_path, cli):
    """JAX warned on every compile (three lines each) in a read-only cache folder; a full one the same."""
    argv = ["run", "--optimizer", "adam", "--epochs", "3"]
    cmd = [sys.executable, "-m", "jaxgd", *argv]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))

    def run(cache, *shell, **kwargs):
        r = subprocess.run([*shell, *cmd], env=dict(env, JAXGD_CACHE_DIR=str(cache)), capture_output=True,
                           text=True, timeout=300, **kwargs)
        return r.returncode, r.stdout, r.stderr

    plain = cli(argv)  # in this process, without a cache (tests/conftest.py)
    assert plain[0] == 0 and plain[1].startswith("adam: 3 steps") and plain[2] == ""
    full = tmp_path / "full"  # no file may grow past 1 kB, as on a full disk
    assert run(full, "sh", "-c", 'ulimit -f 1 && exec "$@"', "sh") == plain
    assert list((full / "programs").iterdir()) == [] and not list(full.rglob("*.tmp"))  # no temporaries left
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    root = []  # root writes anywhere: a root without the capability to override file modes
    if os.getuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("a read-only folder for root needs setpriv (util-linux)")
        root = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    assert run(ro, *root) == plain and list(ro.iterdir()) == []


PACKS = {
    "garbage": lambda kept: kept.write_text("not a pack " * 1000, "ascii"),
    "truncated": lambda kept: kept.write_bytes(kept.read_bytes()[:100_000]),
    "bare (the old format)": lambda kept: kept.write_bytes(kept.read_bytes().split(b"\n", 2)[2]),
    "of another plotly": lambda kept: program_cache.write_entry(kept, "jaxgd-page-pack 1 plotly-0.1-5", b"AAAA"),
    "in a folder others can write": lambda kept: (program_cache.write_entry(
        kept, kept.read_text("ascii").split("\n")[0], b"AAAA"), kept.parent.chmod(0o777)),
}


@pytest.mark.parametrize("damage", PACKS.values(), ids=PACKS.keys())
def test_a_damaged_or_foreign_page_pack_is_packed_anew(tmp_path, monkeypatch, damage):
    """A page with a damaged plotly.js cannot draw, nor can every later one: the pack is checked
    (its header and SHA-256) before it is embedded, and packed anew from the plotly package."""
    from plotly.offline import get_plotlyjs

    from jaxgd.app import shell

    monkeypatch.setattr(shell, "_PACKED", {})
    shell.plotly_packed(tmp_path / "page")
    (kept,) = (tmp_path / "page").iterdir()
    damage(kept)
    monkeypatch.setattr(shell, "_PACKED", {})
    packed = shell.plotly_packed(tmp_path / "page")
    assert gzip.decompress(base64.b64decode(packed)).decode("utf-8") == get_plotlyjs()
    if stat.S_IMODE(kept.parent.stat().st_mode) == 0o700:  # and kept, whole, for the next process
        assert kept.read_bytes().endswith(b"\n" + packed.encode("ascii"))
