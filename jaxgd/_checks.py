"""Argument checks shared by the API and the CLI.

Each raises :class:`ArgumentTypeError` (a ``TypeError``: wrong kind of value) or
:class:`ArgumentError` (a ``ValueError``: right kind, bad value) with one sentence that names
the argument, what it got and what is allowed. The argument's name travels with the error
(``err.name``, ``err.detail``), so the CLI can say ``--batch-size`` where the API says
``batch_size`` without rewording the text. They run in Python, before anything is traced or compiled.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np


class _Named:
    """Mixin: an error about one argument. ``str(err) == f"{err.name} {err.detail}"``."""

    def __init__(self, name: str, detail: str):
        self.name, self.detail = name, detail
        super().__init__(f"{name} {detail}")

    def __reduce__(self):
        return type(self), (self.name, self.detail)


class ArgumentError(_Named, ValueError):
    """A bad value of the argument ``name``; ``detail`` is the sentence after the name."""


class ArgumentTypeError(_Named, TypeError):
    """A value of the wrong kind for the argument ``name``."""


def error_line(e: BaseException) -> str:
    """``"TypeName: first line of the message"``: an exception a user's code raised, in one line."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def check_not_traced(name: str, v) -> None:
    """Refuse a traced value (an argument inside ``jax.jit``, ``vmap`` or ``grad``): the checks,
    the step count and the shapes of a run must be known in Python."""
    if any(isinstance(t, jax.core.Tracer) for t in jax.tree.leaves(v)):
        raise ArgumentTypeError(name, "is a traced value (jaxgd.run was called inside jax.jit, vmap or grad): a run "
                                      "cannot be traced; call it outside, or use jaxgd.sweep for many runs at once "
                                      "(one compiled call)")


def _is_real(v) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, numbers.Real):
        return True
    return isinstance(v, (np.ndarray, jax.Array)) and v.shape == () and (
        np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)
    )


def check_number(name: str, v, *, low=None, low_open=False, high=None, high_open=False,
                 allowed: str | None = None) -> float:
    """A finite real number within optional bounds; returns it as a Python float."""
    allowed = allowed or _describe(low, low_open, high, high_open)
    check_not_traced(name, v)
    if not _is_real(v):
        raise ArgumentTypeError(name, f"must be {allowed}, got {v!r}")
    f = float(v)
    ok = math.isfinite(f)
    if ok and low is not None:
        ok = f > low if low_open else f >= low
    if ok and high is not None:
        ok = f < high if high_open else f <= high
    if not ok:
        raise ArgumentError(name, f"must be {allowed}, got {f!r}")
    return f


def _describe(low, low_open, high, high_open) -> str:
    s = "a finite number"
    if low is not None and high is not None:
        lb, rb = "(" if low_open else "[", ")" if high_open else "]"
        return f"{s} in {lb}{low}, {high}{rb}"
    if low is not None:
        return f"{s} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{s} {'<' if high_open else '<='} {high}"
    return s


def check_positive_number(name: str, v) -> float:
    return check_number(name, v, low=0, low_open=True)


def check_nonneg_number(name: str, v) -> float:
    return check_number(name, v, low=0)


def check_bool(name: str, v) -> bool:
    """``v`` if it is True or False (not 1, not "yes"), else an :class:`ArgumentTypeError` named ``name``."""
    if not isinstance(v, bool):
        raise ArgumentTypeError(name, f"must be True or False, got {v!r}")
    return v


def check_int(name: str, v, low: int, high: int | None = None) -> int:
    """An integer (not a bool, not a float such as 2.0) in ``[low, high]``."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    check_not_traced(name, v)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
        raise ArgumentTypeError(name, f"must be {allowed}, got {v!r}")
    i = int(v)
    if i < low or (high is not None and i > high):
        raise ArgumentError(name, f"must be {allowed}, got {i}")
    return i


def check_seed(seed, name: str = "seed") -> int:
    """An integer in ``[0, 2**32)``."""
    return check_int(name, seed, 0, 2**32 - 1)


def check_choice(name: str, v, choices) -> str:
    if not isinstance(v, str) or v not in choices:
        raise ArgumentError(name, f"must be one of {', '.join(map(repr, choices))}; got {v!r}")
    return v


def check_dtype(dtype):
    """None → JAX's default float; else float32 or float64 (the latter needs x64 enabled)."""
    if dtype is None:
        return jnp.zeros(()).dtype if jax.config.jax_enable_x64 else jnp.dtype("float32")
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise ArgumentTypeError("dtype", f"must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (jnp.dtype("float32"), jnp.dtype("float64")):
        raise ArgumentError("dtype", f"must be 'float32' or 'float64', got {dtype!r}")
    if dt == jnp.dtype("float64") and not jax.config.jax_enable_x64:
        raise ArgumentError(
            "dtype", "float64 needs JAX's x64 mode: call jax.config.update('jax_enable_x64', True) "
            "before creating arrays (jaxgd never flips it), or use dtype='float32'"
        )
    return dt


def check_pair(name: str, v) -> tuple[float, float]:
    """Two finite numbers, e.g. ``init=(w, b)``."""
    allowed = "two finite numbers (w, b)"
    try:
        items = list(v)
    except TypeError:
        raise ArgumentTypeError(name, f"must be {allowed}, got {v!r}") from None
    if len(items) != 2:
        raise ArgumentError(name, f"must be {allowed}, got {len(items)} value(s): {v!r}")
    return tuple(check_number(name, t, allowed=allowed) for t in items)  # type: ignore[return-value]


def check_data(x, y) -> tuple[np.ndarray, np.ndarray]:
    """1-D, equal length ≥ 1, finite real numbers (not complex). Returns float64 NumPy copies."""
    out = []
    for name, v in (("x", x), ("y", y)):
        check_not_traced(name, v)
        if np.iscomplexobj(v):
            raise ArgumentTypeError(name, "must be a 1-D array of finite real numbers, got complex values "
                                          "(jaxgd would drop their imaginary parts)")
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentTypeError(name, f"must be a 1-D array of finite numbers, got {type(v).__name__}") from None
        if a.ndim != 1:
            raise ArgumentError(name, f"must be a 1-D array of finite numbers, got shape {a.shape}")
        if a.size == 0:
            raise ArgumentError(name, "must hold at least one point, got an empty array")
        if not np.all(np.isfinite(a)):
            bad = int(np.flatnonzero(~np.isfinite(a))[0])
            raise ArgumentError(name, f"must be finite, got {a[bad]} at index {bad}")
        out.append(a)
    if out[0].shape != out[1].shape:
        raise ArgumentError("x and y", f"must have the same length, got {out[0].size} and {out[1].size}")
    return out[0], out[1]


def check_array(name: str, v, *, low=None, low_open=False, high=None, high_open=False, integer=False) -> np.ndarray:
    """A scalar or 1-D array of finite numbers within optional bounds (each element checked)."""
    allowed = ("integers" if integer else "finite numbers") + _describe(low, low_open, high, high_open)[len("a finite number"):]
    check_not_traced(name, v)
    try:
        a = np.asarray(v)
    except Exception:
        raise ArgumentTypeError(name, f"must be a number or a 1-D array of {allowed}, got {v!r}") from None
    kind_ok = a.dtype.kind in ("i", "u") if integer else a.dtype.kind in ("i", "u", "f")
    if not kind_ok:
        raise ArgumentTypeError(name, f"must be a number or a 1-D array of {allowed}, got dtype {a.dtype}")
    if a.ndim > 1 or a.size == 0:
        raise ArgumentError(name, f"must be a number or a non-empty 1-D array, got shape {a.shape}")
    f = a.astype(np.float64)
    ok = np.isfinite(f)
    if low is not None:
        ok &= f > low if low_open else f >= low
    if high is not None:
        ok &= f < high if high_open else f <= high
    if not ok.all():
        i = int(np.flatnonzero(~ok.reshape(-1))[0])
        raise ArgumentError(name, f"must hold {allowed}, got {float(f.reshape(-1)[i])!r} at index {i}")
    return a


def check_params(name: str, v, like, dtype):
    """A point in parameter space: a pytree with the structure and leaf shapes of ``like``, every
    value finite; returned as arrays of ``dtype``. For the two-parameter problems (``like`` a
    :class:`jaxgd.Params` of scalars) a pair ``(w, b)`` of numbers is accepted too."""
    from jaxgd.model import Params

    check_not_traced(name, v)
    if isinstance(like, Params) and not isinstance(v, Params) and all(np.ndim(x) == 0 for x in like):
        return Params(*(jnp.asarray(t, dtype) for t in check_pair(name, v)))
    check_same_tree(name, v, like)
    leaves, out, host = jax.tree.leaves(v), [], []

    def where(i):  # the leaf's path, found only for an error (a tree may have thousands of leaves)
        return jax.tree_util.keystr(jax.tree_util.tree_leaves_with_path(v)[i][0]) or "the root"

    def finite():  # the leaves so far, in one check; an error names the first non-finite one
        if not np.all(np.isfinite(np.concatenate(host or [np.zeros(0)]))):
            i = next(i for i, arr in enumerate(host) if not np.all(np.isfinite(arr)))
            raise ArgumentError(name, f"must be finite, got a non-finite value at {where(i)}")

    for i, (a, b) in enumerate(zip(leaves, jax.tree.leaves(like))):
        if not _is_array_like(a):
            finite()
            raise ArgumentTypeError(name, f"holds a {type(a).__name__} at {where(i)}, not an array: for an Equinox or "
                                          "Flax model use jaxgd.from_equinox, from_nnx or from_linen; else pass only its arrays")
        try:
            arr = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            finite()
            raise ArgumentTypeError(name, f"must hold real numbers, got {type(a).__name__} at {where(i)}") from None
        if arr.shape != np.shape(b):
            finite()
            raise ArgumentError(name, f"must have shape {np.shape(b)} at {where(i)}, got {arr.shape}")
        host.append(arr.reshape(-1))
        kept = isinstance(a, jax.Array) and a.dtype == dtype and not (a.weak_type or a.committed)  # no copy per leaf
        out.append(a if kept else jnp.asarray(arr, dtype))
    finite()
    return jax.tree.unflatten(jax.tree.structure(like), out)


def _is_array_like(v) -> bool:
    """An array or a number (a string, a function or another object is not)."""
    return isinstance(v, (numbers.Number, np.ndarray, np.generic, jax.Array)) or (
        hasattr(v, "__array__") and not isinstance(v, (str, bytes)))


MAX_MESSAGE = 200  # an error about a tree stays one line of at most this many characters


def check_same_tree(name: str, v, like) -> None:
    """Refuse a pytree ``v`` whose structure differs from ``like``'s, in one line (at most
    :data:`MAX_MESSAGE` characters) naming only the differing places: missing and unexpected
    leaves or branches, and containers of another kind."""
    if jax.tree.structure(v) == jax.tree.structure(like):
        return
    head = "must be a pytree shaped like the problem's parameters: "
    diffs = tree_differences(like, v)
    room = MAX_MESSAGE - len(name) - 1 - len(head)
    shown = []
    for d in diffs:
        left = len(diffs) - len(shown) - 1
        if len("; ".join([*shown, d])) + (len(f"; and {left} more") if left else 0) > room:
            break
        shown.append(d)
    if not shown:  # one very long path
        shown = [diffs[0][:room - 16] + "…"]
    left = len(diffs) - len(shown)
    raise ArgumentTypeError(name, head + "; ".join([*shown, *([f"and {left} more"] if left else [])]))


def _children(tree) -> dict | None:
    """``{key: child}`` one level down (keys as :func:`jax.tree_util.keystr` writes them); None for a leaf."""
    td = jax.tree.structure(tree)
    if td.num_nodes == 1 and td.num_leaves == 1:
        return None
    pairs = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda n: n is not tree)[0]
    return {jax.tree_util.keystr(path): child for path, child in pairs}


def _kind(tree) -> str:
    if tree is None:
        return "None"
    return "a leaf" if _children(tree) is None else f"a {type(tree).__name__}"


def tree_differences(want, got, at: str = "") -> list[str]:
    """Where pytree ``got`` differs from ``want`` in structure, one phrase per place (paths as
    :func:`jax.tree_util.keystr` writes them): ``missing P``, ``unexpected P``, ``P is a list, not a
    tuple``. Leaves are not compared (their shapes are checked separately)."""
    cw, cg = _children(want), _children(got)
    if cw is None and cg is None:
        return []
    where = at or "the root"
    if cw is None or cg is None or type(want) is not type(got):
        return [f"{where} is {_kind(got)}, not {_kind(want)}"]
    out = [f"missing {at}{k}" for k in cw if k not in cg] + [f"unexpected {at}{k}" for k in cg if k not in cw]
    for k in cw:
        if k in cg:
            out += tree_differences(cw[k], cg[k], at + k)
    if not out and jax.tree.structure(want) != jax.tree.structure(got):  # a node's own (static) data
        out.append(f"{where} is a {type(got).__name__} with other static fields")
    return out


MEMINFO = "/proc/meminfo"  # the system's memory (its MemAvailable line)
CGROUP = "/proc/self/cgroup"  # this process's control groups
CGROUP_ROOT = "/sys/fs/cgroup"  # where they are mounted (v2 unified, or v1's memory/ beside the others)


def _read(path) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _stat(text: str | None, key: str) -> int | None:
    """The number after ``key`` on its line of ``text`` (``"key 123"`` or ``"key: 123 kB"``), or None."""
    for line in (text or "").splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
    return None


def _cgroup_available() -> int | None:
    """The least room under a memory limit of this process's cgroup or an enclosing one: limit
    minus usage, the page cache it could drop (``inactive_file``) not counted as used. v2
    (``memory.max``, ``memory.current``) or v1 (``memory.limit_in_bytes``, ``memory.usage_in_bytes``);
    None where no limit is set or nothing can be read."""
    import os

    best = None
    for line in (_read(CGROUP) or "").splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            root, files = CGROUP_ROOT, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            root, files = os.path.join(CGROUP_ROOT, "memory"), ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                                                 "total_inactive_file")
        else:
            continue
        d = os.path.normpath(os.path.join(root, path.lstrip("/")))
        while True:  # from the process's group up to the root (a container sees its own group as the root)
            limit = (_read(os.path.join(d, files[0])) or "").strip()
            used = (_read(os.path.join(d, files[1])) or "").strip()
            if limit.isdigit() and used.isdigit() and int(limit) < 1 << 60:
                room = int(limit) - int(used) + (_stat(_read(os.path.join(d, "memory.stat")), files[2]) or 0)
                best = max(0, room) if best is None else min(best, max(0, room))
            if d == root or len(d) <= len(root):
                break
            d = os.path.dirname(d)
    return best


def available_memory() -> int:
    """Bytes of memory available now: the system's ``MemAvailable`` (free memory and the page
    cache it can drop), or where it is missing the free pages (``sysconf``), and at most the room
    under this process's cgroup limit (:func:`_cgroup_available`); a huge number where nothing says.
    The files read are the module's :data:`MEMINFO`, :data:`CGROUP`, :data:`CGROUP_ROOT`."""
    import os

    have = _stat(_read(MEMINFO), "MemAvailable")
    if have is None:
        try:
            have = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            have = 1 << 62
    room = _cgroup_available()
    return have if room is None else min(have, room)


def check_fits(name: str, nbytes: int, what: str) -> None:
    """Refuse (naming the argument ``name``) a request whose result would not fit in half the available memory."""
    have = available_memory()
    if nbytes > have // 2:
        raise ArgumentError(name, f"asks for {what}: about {nbytes / 2**30:,.1f} GiB, and {have / 2**30:,.1f} GiB "
                                  "of memory is available")


MAX_DATA_BYTES = 64 * 2**20  # a data file (CSV)
MAX_CONFIG_BYTES = 2**20  # a configuration file (TOML)
_READ_ONCE: dict = {}  # stdin and FIFOs, which can be read only once: key -> bytes


def read_file(name: str, path, limit: int) -> bytes:
    """The bytes of an input file named by the argument ``name``: ``"-"`` is stdin; a regular
    file or a FIFO (``<(...)`` from a shell) of at most ``limit`` bytes. stdin and FIFOs are read
    once (a second call returns the same bytes). Raises :class:`ArgumentError` named ``name`` for
    a missing or unreadable file, a folder, a device or socket (``/dev/zero`` never ends), or a
    file over the limit."""
    import os
    import stat
    import sys

    where = "stdin" if path == "-" else f"file {str(path)!r}"
    if path == "-":
        key = "-"
    else:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ArgumentError(name, f"{where} does not exist") from None
        except OSError as e:
            raise ArgumentError(name, f"{where} cannot be read: {e.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            raise ArgumentError(name, f"{where} is a folder")
        if stat.S_ISREG(st.st_mode):
            if st.st_size > limit:
                raise ArgumentError(name, f"{where} has {st.st_size:,} bytes; the limit is {limit:,}")
            key = None
        elif stat.S_ISFIFO(st.st_mode):
            key = (st.st_dev, st.st_ino)
        else:
            raise ArgumentError(name, f"{where} is not a regular file (a device or a socket): give a file, a pipe "
                                      "or - for stdin")
    if key is not None and key in _READ_ONCE:
        return _READ_ONCE[key]
    try:
        if path == "-":
            if sys.stdin is None:
                raise ArgumentError(name, "stdin (-) is closed")
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as f:
                raw = f.read(limit + 1)
    except OSError as e:
        raise ArgumentError(name, f"{where} cannot be read: {e.strerror}") from None
    if len(raw) > limit:
        raise ArgumentError(name, f"{where} has more than {limit:,} bytes, the limit")
    if key is not None:
        _READ_ONCE[key] = raw
    return raw
