"""An on-disk cache of compiled runs, looked up *before* tracing (the ``jaxgd`` command turns it on).

The library calls its compiled programs through one hook, :func:`jaxgd.engine.compiled_call`;
:func:`enable` installs :func:`call` there (``enable(None)`` removes it); the library never imports
this module. JAX's persistent cache saves XLA's compile, but every process still traces each program
to find its key (about 0.1 s for a union sweep). This cache keys a ``run``/``sweep`` program without tracing, by the engine
function's name and its :class:`~jaxgd.engine.Static` configuration — only where every part has a
stable description across processes (numbers, strings, tuples, functions at the top level of a
jaxgd module without a closure: a model's loss or an lr schedule is a closure, not cached) — the
arguments' tree, shapes, dtypes and weak types, the jaxgd sources, the jax/jaxlib/optax versions,
the JAX settings that change a traced program, ``XLA_FLAGS`` and the device. Off with several devices.

An entry is the executable (:mod:`jax.experimental.serialize_executable`) and its argument trees,
pickled, and a pickle runs code when loaded. So the cache's folders (:func:`own_folder`) are made
0700 and used only where no one but the user (and root) can write them or any folder above; an
entry (:func:`read_entry`) is read only from a regular file of the user's that no one else can
write, past a header — this format, the program's whole key, the jaxgd sources' hash, the jax and
jaxlib versions — and the SHA-256 of the rest. Anything else (another program's or version's
entry, a damaged one) is never unpickled: the program is compiled and its entry written anew. A
cache that cannot be trusted or written is no cache, with no word unless asked (:func:`tell`, the
command's ``-v``: each once). Only public JAX API is used.

Only a freshly compiled executable is stored: one that JAX's own cache handed back serializes
without its kernels on the CPU (jax 0.10: "Function … not found" when run). So a miss compiles the
program under a name of its own (``jaxgd_<name>_<key>``) with JAX's cache writes off
(``jax_persistent_cache_min_compile_time_secs`` raised while any thread compiles one: the setting
is process-wide); should a loaded entry fail that way all the same, it is deleted and compiled anew.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import pickle
import stat
import sys
import threading
from pathlib import Path

import jax
from jax.experimental import serialize_executable as se
import jaxlib
import optax

from jaxgd import engine
from jaxgd.app.files import atomic_path

_state = {"dir": None, "hits": 0, "misses": 0, "stored": 0, "say": None}
_said: set = set()  # (what, why) already said (tell)
_loaded: dict = {}
_lock = threading.Lock()


def enable(folder) -> None:
    """Cache compiled runs in ``folder`` (None: off; so is a folder :func:`own_folder` refuses)."""
    _state["dir"] = None if folder is None else own_folder(folder)
    _loaded.clear()
    engine.set_compiled_call(None if _state["dir"] is None else call)


def tell(say) -> None:
    """From now on say each refused folder and each skipped entry once, as ``say(line)`` (the ``jaxgd``
    command's ``-v``); ``tell(None)``: silent, the default."""
    _said.clear()
    _state["say"] = say


def _skipped(what: str, why: str) -> None:
    if (say := _state["say"]) is not None and (what, why) not in _said:
        _said.add((what, why))
        say(f"jaxgd: cache: {what} {why}")


def own_folder(folder) -> Path | None:
    """``folder`` if it is safe to load from, else None. Its missing parts are created 0700; then
    (links resolved) it must be a folder of the user's that no one else can write, and that the user
    can, and each folder above it the user's or root's and writable by no one else unless sticky (/tmp)."""
    if not hasattr(os, "getuid"):  # no owners to check (Windows): no cache
        return None
    path = Path(os.path.abspath(folder))
    try:
        for p in reversed([path, *path.parents]):
            if not os.path.lexists(p):  # a dangling link is not followed
                with contextlib.suppress(FileExistsError):  # made meanwhile (another thread): checked below
                    os.mkdir(p, 0o700)
                    os.chmod(p, 0o700)  # whatever the umask
        path = Path(os.path.realpath(path))
        st, above = os.lstat(path), [os.lstat(p) for p in path.parents]
    except OSError as e:
        _skipped(f"{path} not used:", f"it cannot be made or read ({e.strerror or e})")
        return None
    if not all(s.st_uid in (0, os.getuid()) and (not s.st_mode & 0o022 or s.st_mode & stat.S_ISVTX) for s in above):
        why = "a folder above it is another user's or writable by others"
    elif not stat.S_ISDIR(st.st_mode):
        why = "it is not a folder"
    elif not _own(st):
        why = "it is another user's or writable by others"
    elif not os.access(path, os.W_OK | os.X_OK):
        why = "it cannot be written (read-only)"
    else:
        return path
    _skipped(f"{path} not used:", why)
    return None


def _own(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def read_entry(path: Path, header: str) -> bytes | None:
    """What :func:`write_entry` wrote to ``path`` with this ``header``, or None: an entry outside
    :func:`own_folder`, not a regular file of the user's that no one else can write (a link is not
    followed), of another header or whose bytes do not match its SHA-256 is not read further."""
    try:
        if own_folder(path.parent) is None:
            return None
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read() if stat.S_ISREG(st.st_mode) and _own(st) else None
    except FileNotFoundError:  # not there yet: a miss
        return None
    except OSError as e:
        _skipped(f"{path} skipped:", "a link" if e.errno == errno.ELOOP else (e.strerror or str(e)))
        return None
    head = header.encode() + b"\n"
    digest, _, payload = (data or b"")[len(head):].partition(b"\n")
    if data is None:
        why = "not a regular file of the user's that no one else can write"
    elif not data.startswith(head):
        why = "of another program, format or version"
    elif digest != hashlib.sha256(payload).hexdigest().encode():
        why = "damaged (its SHA-256 does not match)"
    else:
        return payload
    _skipped(f"{path} skipped:", why + "; made anew")
    return None


def write_entry(path: Path, header: str, payload: bytes) -> bool:
    """Write ``header``, the SHA-256 of ``payload`` and ``payload`` (lines) to ``path`` in
    :func:`own_folder`, 0600 (:func:`~jaxgd.app.files.atomic_path`); False where it could not."""
    try:
        if own_folder(path.parent) is None:
            return False
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)  # a link or FIFO is replaced, not written through
        with atomic_path(path, mode=0o600) as tmp:
            Path(tmp).write_bytes(b"%s\n%s\n%s" % (header.encode(), hashlib.sha256(payload).hexdigest().encode(),
                                                  payload))
    except OSError as e:  # a full disk, a folder made read-only meanwhile: no cache
        _skipped(f"{path} not written:", getattr(e, "strerror", None) or str(e))
        return False
    return True


def stats() -> dict:
    """``{"dir", "hits", "misses", "stored"}`` since this process started (hits: loaded from disk)."""
    return {k: v for k, v in _state.items() if k != "say"}


def call(jitted, name: str, statics: tuple, *args):
    """``jitted(*statics, *args)`` — ``statics`` its leading static arguments — from the cache when
    it is on and every static argument can be keyed."""
    folder = _state["dir"]
    if folder is None or jax.device_count() != 1:
        return jitted(*statics, *args)
    key = _key(name, statics, args)
    if key is None:
        return jitted(*statics, *args)
    path = folder / f"{key[:40]}.jaxgd-program"
    exe = _loaded.get(key)
    if exe is None:
        exe = _load(path, key)
        if exe is None:
            lowered = _renamed(jitted, len(statics), f"jaxgd_{name}_{key[:16]}").lower(*statics, *args)
            with _jax_cache_writes_off():  # this cache keeps it: JAX's need not
                exe = lowered.compile()
            _state["stored"] += write_entry(path, _header(key), pickle.dumps(se.serialize(exe)))
        with _lock:
            _loaded[key] = exe
    try:
        return exe(*args)
    except jax.errors.JaxRuntimeError as e:
        if "not found" not in str(e).lower():
            raise
        with _lock:  # an entry without its kernels: drop it and compile as without the cache
            _loaded.pop(key, None)
        path.unlink(missing_ok=True)
        return jitted(*statics, *args)


_MIN_TIME = "jax_persistent_cache_min_compile_time_secs"
_writes_off = {"threads": 0, "saved": None}  # how many threads are inside, and the setting they found


@contextlib.contextmanager
def _jax_cache_writes_off():
    """JAX's persistent cache writes nothing while any thread is inside: the minimum compile time
    it asks of an entry is infinite, and the first setting comes back when the last thread leaves."""
    with _lock:
        if _writes_off["threads"] == 0:
            _writes_off["saved"] = getattr(jax.config, _MIN_TIME)
            jax.config.update(_MIN_TIME, float("inf"))
        _writes_off["threads"] += 1
    try:
        yield
    finally:
        with _lock:
            _writes_off["threads"] -= 1
            if _writes_off["threads"] == 0:
                jax.config.update(_MIN_TIME, _writes_off["saved"])


def _renamed(jitted, n_static: int, name: str):
    """``jitted``'s function, jitted again under ``name`` (its leading ``n_static`` arguments static)."""
    fun = jitted.__wrapped__

    def program(*a):
        return fun(*a)

    program.__name__ = program.__qualname__ = name
    return jax.jit(program, static_argnums=tuple(range(n_static)))


def _header(key: str) -> str:
    return f"jaxgd-program 1 key {key} jaxgd {_source_hash()} jax {jax.__version__} jaxlib {jaxlib.__version__}"


def _load(path: Path, key: str):
    """The executable of the entry at ``path`` for ``key`` (:func:`read_entry`), or None."""
    blob = read_entry(path, _header(key))
    if blob is not None:
        _lapack_ready()
    try:
        exe = None if blob is None else se.deserialize_and_load(*pickle.loads(blob))
    except Exception:  # one of ours that this jaxlib cannot load: compile instead
        exe = None
    _state["misses" if exe is None else "hits"] += 1
    return exe


@functools.cache
def _lapack_ready() -> None:
    """Lower an eigh once: XLA:CPU registers its LAPACK kernels when a program calling them is lowered, and
    a loaded one (Lanczos: the sharpness, the flows) would jump to nothing without them (a segfault)."""
    jax.jit(jax.numpy.linalg.eigh).lower(jax.numpy.eye(2))


def _stable(obj) -> str | None:
    """A description of ``obj`` that is the same in every process, or None if there is none."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return f"{type(obj).__name__}:{obj!r}"
    if isinstance(obj, tuple):
        parts = [_stable(o) for o in obj]
        if any(p is None for p in parts):
            return None
        return f"{type(obj).__qualname__}(" + ",".join(parts) + ")"
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if (callable(obj) and isinstance(mod, str) and mod.split(".")[0] == "jaxgd" and isinstance(qual, str)
            and getattr(obj, "__closure__", None) is None and getattr(sys.modules.get(mod), qual, None) is obj):
        return f"fn:{mod}.{qual}"
    return None


def _aval(a) -> str:
    dtype = getattr(a, "dtype", None)
    if dtype is None:
        return f"py:{type(a).__name__}"
    return f"{getattr(a, 'shape', ())}:{dtype}:{bool(getattr(a, 'weak_type', False))}"


def _key(name: str, static, args) -> str | None:
    s = _stable(static)
    if s is None:
        return None
    leaves, tree = jax.tree.flatten(args)
    dev = jax.devices()[0]
    cfg = jax.config
    h = hashlib.sha256()
    for part in (_source_hash(), name, s, str(tree), ";".join(_aval(a) for a in leaves), dev.platform,
                 getattr(dev, "device_kind", ""), os.environ.get("XLA_FLAGS", ""),
                 str(cfg.jax_enable_x64), str(cfg.jax_default_prng_impl), str(cfg.jax_threefry_partitionable),
                 str(cfg.jax_default_matmul_precision), str(cfg.jax_numpy_dtype_promotion)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@functools.cache
def _source_hash() -> str:
    """The jaxgd sources and the versions of what traces them (computed once per process)."""
    h = hashlib.sha256()
    root = Path(engine.__file__).parent  # the jaxgd package, this app included
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    for v in (jax.__version__, jaxlib.__version__, optax.__version__):
        h.update(v.encode())
    return h.hexdigest()
