"""Writing results: strict JSON (:func:`dumps`: NumPy to lists, non-finite numbers to null; exact
in files, compact at a few significant digits on a page), each file written atomically
(:func:`atomic_path`) and a command's files as one set (:func:`write_all`);
the README's "How files are written" says what a user sees. Two kinds of failure, kept apart so
the command line can answer each in one line: a bad output *name* is an :class:`~jaxgd.ArgumentError`
named after the argument, raised before anything is written (:func:`check_file_target`,
:func:`check_folder_target`; exit 2); a fault of the environment while writing (disk full, a closed
stream, a folder another jaxgd is writing) is an :class:`OutputError` (exit 1), and no temporary
file stays behind.
"""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from jaxgd._checks import ArgumentError
from jaxgd.progress import write as write_stderr

LOCK_NAME = ".jaxgd.lock"


class OutputError(OSError):
    """An output that could not be written, for a reason of the environment, not of the
    arguments: ``path`` (a file, a folder, or ``"stdout"``) and ``what`` went wrong (e.g. "No
    space left on device"). ``str(err)`` is one line: ``cannot write 'PATH': WHAT``."""

    def __init__(self, path, what: str):
        self.path, self.what = str(path), what
        super().__init__(str(self))

    def __str__(self):
        where = "to stdout" if self.path == "stdout" else repr(self.path)
        return f"cannot write {where}: {self.what}"

    def __reduce__(self):
        return type(self), (self.path, self.what)


def jsonable(v):
    """Arrays and NumPy scalars → lists and Python numbers; NaN and ±inf → None."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if hasattr(v, "__array__") and not isinstance(v, (str, bytes)):
        a = np.asarray(v)
        if a.ndim:
            return [jsonable(x) for x in a.tolist()]
        v = a.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def dumps(obj, indent: int | None = None, digits: int | None = None) -> str:
    """Strict JSON of ``obj`` (:func:`jsonable`: arrays as lists, NaN and ±inf as null). Exact
    numbers by default, laid out as :func:`json.dumps` with ``indent``; with ``digits``, compact (no
    spaces) and every float at that many significant digits, ``%g``-style ("0.333333", "1e+300",
    "-2"): the pages' numbers."""
    if digits is None:
        return json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    if isinstance(obj, dict):
        return "{" + ",".join(f"{dumps(str(k))}:{dumps(v, digits=digits)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v, digits=digits) for v in obj) + "]"
    if isinstance(obj, np.ndarray):
        if obj.dtype == bool:
            obj = obj.astype(np.int8)
        if obj.ndim > 1:
            return "[" + ",".join(dumps(a, digits=digits) for a in obj) + "]"
        if obj.dtype.kind in "iu":
            return "[" + ",".join(map(str, obj.tolist())) + "]"
        return "[" + _floats(obj, digits) + "]"
    if isinstance(obj, (float, np.floating)):
        return _floats(np.array([obj], np.float64), digits)
    return dumps(obj)  # None, bool, int, str: as the exact encoder writes them


_NON_FINITE = {"nan": "null", "inf": "null", "-inf": "null"}


def _floats(a: np.ndarray, digits: int) -> str:
    """A 1-D float array as comma-separated numbers at ``digits`` significant digits, null where not
    finite (one C-level format call)."""
    values = a.astype(np.float64).tolist()
    text = (f"%.{digits}g," * len(values) % tuple(values))[:-1]
    if not np.isfinite(a).all():
        text = ",".join(_NON_FINITE.get(v, v) for v in text.split(","))
    return text


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# ----------------------------------------------------------------------------- checking names


def _abspath(path) -> str:
    """``os.path.abspath``, or :class:`OutputError` when the current folder has been deleted."""
    try:
        return os.path.abspath(path)
    except FileNotFoundError:
        raise OutputError(path, "the current folder no longer exists (was it deleted?); cd to a folder "
                                "that exists") from None


def _name_max(folder: str) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _nearest_folder(path: str) -> str:
    """The nearest existing ancestor of the absolute ``path`` (``path`` itself if it exists)."""
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def check_name(name: str, path, what: str = "path") -> str:
    """``path`` as a string: not empty, no control character (a newline in a file name breaks
    every list of files), no component longer than the file system allows. Raises
    :class:`~jaxgd.ArgumentError` named ``name``."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise ArgumentError(name, f"must be a {what}, got {path!r}")
    bad = [c for c in path if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ArgumentError(name, f"must not hold control characters ({bad[0]!r}), got {path!r}")
    limit = _name_max(_nearest_folder(_abspath(path)))
    for part in Path(path).parts:
        if len(os.fsencode(part)) > limit:
            short = part[:20] + "…"
            raise ArgumentError(name, f"has a name of {len(os.fsencode(part))} bytes ({short!r}); the file system "
                                      f"allows {limit}")
    return path


def _through(path: str) -> bool:
    """True for an existing FIFO or character device: written through, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _real_target(name: str, path: str) -> str:
    """The file a write to ``path`` replaces: ``path`` itself, or the end of its symbolic links."""
    if not os.path.islink(path):
        return path
    real = os.path.realpath(path)
    if not os.path.isdir(os.path.dirname(real)):
        raise ArgumentError(name, f"{path!r} is a symbolic link to {real!r}, whose folder does not exist")
    return real


def check_file_target(name: str, path) -> str:
    """A file to write (e.g. ``--json``): a valid name, not a folder, in a folder that exists and
    is writable. A FIFO or a device is fine (written through); a symbolic link is followed.
    Raises :class:`~jaxgd.ArgumentError` named ``name`` (an :class:`OutputError` when the current
    folder was deleted). Returns ``path``."""
    path = check_name(name, path, "file path")
    full = _abspath(path)
    if os.path.isdir(full):
        raise ArgumentError(name, f"{path!r} is a folder; give a file path")
    if _through(full):
        if not os.access(full, os.W_OK):
            raise ArgumentError(name, f"cannot write to {path!r}: not writable")
        return path
    real = _real_target(name, full)
    d = os.path.dirname(real)
    if not os.path.isdir(d) or not os.access(d, os.W_OK):
        raise ArgumentError(name, f"cannot write to {path!r}: folder {d!r} is missing or not writable")
    return path


def check_folder_target(name: str, out, files=()) -> str:
    """An output folder (e.g. ``--out``): a valid name; an existing folder, or one that can be
    created (its nearest existing ancestor is a writable folder; a dangling link is refused);
    none of ``files`` inside it is a folder. Raises :class:`~jaxgd.ArgumentError` named ``name``.
    Returns ``out``."""
    out = check_name(name, out, "folder path")
    full = _abspath(out)
    if os.path.islink(full) and not os.path.exists(full):
        raise ArgumentError(name, f"{out!r} is a symbolic link to {os.path.realpath(full)!r}, which does not exist")
    if os.path.exists(full) and not os.path.isdir(full):
        raise ArgumentError(name, f"{out!r} exists and is not a folder")
    for f in files:
        target = os.path.join(full, f)
        if os.path.isdir(target):
            raise ArgumentError(name, f"{os.path.join(out, f)!r} is a folder, where the file {f} goes")
        if os.path.islink(target):
            _real_target(name, target)
    probe = _nearest_folder(full)
    if not os.path.isdir(probe):
        raise ArgumentError(name, f"cannot write to {out!r}: {probe!r} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise ArgumentError(name, f"cannot write to {out!r}: {probe!r} is not writable ({e.strerror})") from None
    return out


# ----------------------------------------------------------------------------- one file


_live: set[str] = set()  # atomic_path's temporary files now open, in any thread (see remove_temporaries)
_live_lock = threading.Lock()
_leaving = False


def remove_temporaries() -> None:
    """Remove :func:`atomic_path`'s temporary files still open, and refuse new ones: for a process that
    leaves by ``os._exit`` while another thread writes (a compiled program's cache entry after Ctrl-C,
    :func:`jaxgd.app.signals.on_a_thread`)."""
    global _leaving
    with _live_lock:
        _leaving = True
        for tmp in _live:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _temp_in(folder: str, name: str) -> str:
    """A new empty temporary file in ``folder``, named after ``name`` (a dot file, short)."""
    suffix = Path(name).suffix
    suffix = suffix if len(suffix) <= 16 else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{name[:40]}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    return tmp


def _strerror(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None):
    """Yield a temporary path beside ``path`` (same suffix); on success rename it over ``path``,
    its mode ``mode`` (default: a new file's under the umask).

    On any error, or an interrupt, the temporary file is removed and ``path`` is untouched:
    readers see the old file or the new one, never a part-written one. A symbolic link stays a
    link (its target is replaced); a FIFO or character device is yielded itself (written through).
    An ``OSError`` (disk full, a folder where the file goes) is raised as :class:`OutputError`.
    """
    path = Path(path)
    if _through(str(path)):
        try:
            yield str(path)
        except OSError as e:
            raise OutputError(path, _strerror(e)) from None
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    tmp = None
    try:
        with _signals_deferred(), _live_lock:  # a signal here: the temporary made and known (removed below), or not made
            if _leaving:
                raise OutputError(path, "the process is leaving")
            tmp = _temp_in(str(target.parent), path.name)
            _live.add(tmp)
        yield tmp
        os.chmod(tmp, _file_mode() if mode is None else mode)
        os.replace(tmp, target)
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(path, _strerror(e)) from None
    finally:
        if tmp is not None:
            with _live_lock:
                _live.discard(tmp)
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout and flush; a closed or full stdout is an :class:`OutputError`
    (a reader that left, ``BrokenPipeError``, is passed on)."""
    if sys.stdout is None:
        raise OutputError("stdout", "it is closed")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as e:  # ValueError: "I/O operation on closed file"
        raise OutputError("stdout", _strerror(e) if isinstance(e, OSError) else "it is closed") from None


def write_json(path: str, obj) -> None:
    """``path`` "-" writes to stdout."""
    text = dumps(obj, indent=None) + "\n"
    if path == "-":
        write_stdout(text)
    else:
        write_text_atomic(path, text)


# ----------------------------------------------------------------------------- a set of files


def _stderr_note(line: str) -> None:
    """One line on stderr; none without a stderr (never on stdout: :func:`jaxgd.progress.write`)."""
    write_stderr(line + "\n")


@contextmanager
def _lock(folder: str):
    """Hold ``folder/.jaxgd.lock`` (``fcntl.flock``, not waiting); the lock file is removed when
    released. Another holder: :class:`OutputError`."""
    import fcntl

    path = os.path.join(folder, LOCK_NAME)
    fd = None
    try:
        with _signals_deferred():  # a signal while it is taken: taken (and let go below), or not
            while fd is None:
                new = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(new, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(new)
                    raise OutputError(folder, f"{folder}/ is in use by another jaxgd (it holds {LOCK_NAME}); wait "
                                              "for it to finish or use another folder") from None
                try:  # the holder before us may have removed the file after we opened it: lock the one on disk
                    same = os.path.samestat(os.fstat(new), os.stat(path))
                except FileNotFoundError:
                    same = False
                if same:
                    fd = new
                else:
                    os.close(new)
        yield
    finally:
        if fd is not None:
            try:
                os.unlink(path)
            finally:
                os.close(fd)


@contextmanager
def _signals_deferred():
    """SIGINT, SIGTERM and SIGHUP wait until the block ends (it renames a set of files), then act."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got, old = [], {}
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        old[s] = signal.signal(s, lambda n, frame: got.append(n))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if got:
            h = old[got[0]]
            if callable(h):
                h(got[0], None)
            elif h != signal.SIG_IGN:
                signal.raise_signal(got[0])


def text_writer(text: str) -> Callable[[str], None]:
    """A writer for :func:`write_all`: ``text`` as UTF-8 to the path it is given."""
    def write(path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return write


def npz_writer(arrays: Callable[[], dict]) -> Callable[[str], None]:
    """A writer for :func:`write_all`: ``np.savez`` of ``arrays()`` (built when the file is written)."""
    def write(path):
        with open(path, "wb") as f:
            np.savez(f, **arrays())
    return write


def write_all(out_dir, writers: Mapping[str, Callable[[str], object]], *, name: str = "out",
              note: Callable[[str], None] | None = _stderr_note) -> list[Path]:
    """Write a set of files into the folder ``out_dir`` as one transaction.

    ``writers`` maps each file name (a plain name, no folder) to a function that writes that
    file's content to the path it is given (a temporary file in the same folder), e.g.
    ``{"results.json": lambda p: Path(p).write_text(text)}``. In order:

    1. every name, and ``out_dir``, is checked (:func:`check_folder_target`): no control
       characters, no name too long, no folder or dangling link where a file goes — before
       anything is written; a bad one raises :class:`~jaxgd.ArgumentError` named ``name``;
    2. ``out_dir`` is created if missing, with its parents (``note`` is told when parents
       were made: a line for stderr);
    3. the folder is locked (``out_dir/.jaxgd.lock``, ``fcntl.flock``, not waiting): a second
       writer of the same folder gets an :class:`OutputError` "... is in use by another jaxgd";
    4. each writer writes its temporary file; then all are renamed over the old files (a
       symbolic link's target is replaced; a FIFO or device is written through), with Ctrl-C
       and SIGTERM held back for those few system calls.

    On any failure before the renames — a writer raising (``OSError`` such as ENOSPC becomes
    :class:`OutputError` naming the file), ``KeyboardInterrupt`` — every temporary file is
    removed, folders this call made are removed again, and the old files are untouched. A
    rename failing midway (it does not on one local file system) leaves the renamed files new.
    The lock file is removed when done. Returns the paths written, ``out_dir/name`` in order.
    """
    names = list(writers)
    for f in names:
        if not isinstance(f, str) or not f or f in (".", "..") or "/" in f or os.sep in f:
            raise ArgumentError("writers", f"must map plain file names to writers, got {f!r}")
        check_name(name, f, "file name")
    out = check_folder_target(name, out_dir, names)
    full = _abspath(out)
    missing = []
    p = full
    while not os.path.lexists(p):
        missing.append(p)
        p = os.path.dirname(p)
    created: list[str] = []
    try:
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            created.append(d)
    except OSError as e:
        _remove_folders(created)
        raise OutputError(e.filename or out, _strerror(e)) from None
    if note is not None and len(created) > 1:
        rel = [os.path.relpath(d) if not os.path.isabs(out) else d for d in created]
        note(f"jaxgd: created the folder {rel[-1]} and its missing parents ({', '.join(rel[:-1])})")
    staged: list[tuple[str, str, bool]] = []  # (temporary, target, write through)
    try:
        with _lock(full):
            for f in names:
                shown = os.path.join(out, f)
                dest = os.path.join(full, f)
                through = _through(dest)
                real = dest if through else _real_target(name, dest)
                try:
                    with _signals_deferred():  # made and staged (removed on a failure), or not made
                        tmp = _temp_in(full if through else os.path.dirname(real), f)
                        staged.append((tmp, real, through))
                    writers[f](tmp)
                    os.chmod(tmp, _file_mode())
                except OSError as e:
                    raise OutputError(shown, _strerror(e)) from None
            with _signals_deferred():
                for i, (tmp, real, through) in enumerate(staged):
                    try:
                        if through:
                            with open(tmp, "rb") as src, open(real, "wb") as dst:
                                while chunk := src.read(1 << 20):
                                    dst.write(chunk)
                            os.unlink(tmp)
                        else:
                            os.replace(tmp, real)
                    except OSError as e:
                        raise OutputError(os.path.join(out, names[i]), _strerror(e)) from None
                created = []  # the set is written: keep the folders
    except BaseException:
        for tmp, _, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        _remove_folders(created)
        raise
    return [Path(out) / f for f in names]


def _remove_folders(folders: list[str]) -> None:
    """Remove the folders made for a write that failed, deepest first, if they are empty."""
    for d in reversed(folders):
        try:
            os.rmdir(d)
        except OSError:
            pass
