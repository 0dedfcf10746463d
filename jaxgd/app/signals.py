"""Ctrl-C and SIGTERM, from a ``jaxgd`` command's first moment to its last: exit 130 with
``jaxgd: interrupted``, or 143 with ``jaxgd: terminated``, one line, no temporary file left.
Standard library only (and :mod:`jaxgd.progress`), so that the door (:mod:`jaxgd.__main__`) sets
this up before it imports JAX, the library or the app.

Two regimes. Until the command parses its arguments (:func:`leave_at_once`) nothing is written, so a
signal ends the process at once: an exception raised inside the imports can be dropped (in JAX's
garbage-collection callback) or crash an extension module half loaded. From then on
(:func:`as_exceptions`) a signal is an exception, so every ``finally`` removes its temporaries; where
Python would drop it (in a garbage-collection callback, such as JAX's, or a ``__del__``) the signal
comes again a moment later, until it lands where it stops the command.

``$JAXGD_READY_FILE``, when set, is a file the command adds a line to at each stage it reaches:
``handlers`` (the signals are handled; the imports begin), ``imported`` (the arguments are parsed
next) and ``working`` (its work begins). A test (or a supervisor) waits for a stage instead of sleeping.
"""

from __future__ import annotations

import _thread
import gc
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from functools import partial

from jaxgd.progress import write

READY_FILE = "JAXGD_READY_FILE"
LINES = {signal.SIGINT: (130, "jaxgd: interrupted\n"), signal.SIGTERM: (143, "jaxgd: terminated\n")}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so every ``finally`` removes its temporaries."""


def _raise(signum, frame):
    """KeyboardInterrupt, or :class:`Terminated` for SIGTERM; not inside a garbage-collection callback,
    where Python would drop it (JAX's runs at every collection): there the signal comes again later."""
    if frame is not None and frame.f_code in {getattr(c, "__code__", None) for c in gc.callbacks}:
        return _later(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _later(signum) -> None:
    """The signal again, to the main thread, in a moment: from a thread that does not make it wait."""
    def send():
        time.sleep(0.02)  # the main thread leaves the callback that dropped it
        signal.pthread_kill(threading.main_thread().ident, signum)

    _thread.start_new_thread(send, ())


def _now(signum, frame):
    code, line = LINES[signum]
    try:
        os.write(2, line.encode())  # not sys.stderr: the signal may have stopped it mid-write
    finally:
        os._exit(code)


def leave_at_once() -> None:
    """From here on, until :func:`as_exceptions`: Ctrl-C (also where the shell ignored SIGINT, e.g. a
    job started in the background) and SIGTERM (unless ignored) end the process at once with their line."""
    signal.signal(signal.SIGINT, _now)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _now)


@contextmanager
def as_exceptions():
    """For the block, in the main thread: Ctrl-C raises KeyboardInterrupt (also where the shell ignored
    SIGINT) and SIGTERM :class:`Terminated` (unless handled already); the handlers before are put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if old[signal.SIGINT] in (signal.SIG_IGN, _now, signal.default_int_handler):
        signal.signal(signal.SIGINT, _raise)
    if old[signal.SIGTERM] in (signal.SIG_DFL, None, _now):
        signal.signal(signal.SIGTERM, _raise)
    hook, sys.unraisablehook = sys.unraisablehook, partial(_again, sys.unraisablehook)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for s, handler in old.items():
            if handler is not None:
                signal.signal(s, handler)


def _again(hook, unraisable) -> None:
    """``sys.unraisablehook``: a KeyboardInterrupt that Python dropped anyway (raised in a ``__del__``) is
    signalled again (:func:`_later`); anything else goes to ``hook``."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        return hook(unraisable)
    _later(signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT)


def stopped(e: KeyboardInterrupt) -> int:
    """Say that the command was stopped by ``e``, return its exit code (130 Ctrl-C, 143
    :class:`Terminated`); a second signal, from here on, is ignored (the first one's clean-up is done)."""
    _ignore()
    code, line = LINES[signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT]
    write(line)
    return code


def announce(stage: str) -> None:
    """Add the line ``stage`` to ``$JAXGD_READY_FILE`` if set (see the module); a path that cannot be
    written is skipped."""
    path = os.environ.get(READY_FILE)
    if path:
        try:
            with open(path, "a") as f:
                f.write(stage + "\n")
        except OSError:
            pass


def leave(code) -> None:
    """End the process with ``code`` by ``os._exit``, after flushing both streams once more.

    That skips the interpreter's teardown: freeing every compiled program and a last garbage
    collection took about 0.25 s of every command here, and after Ctrl-C or SIGTERM an interrupt
    can land while XLA compiles on its own threads, where a normal shutdown may crash (a segfault
    was seen here). Call it only once every output file is finished or removed; a signal from here
    on is ignored."""
    _ignore()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code if isinstance(code, int) else 0)


def _ignore() -> None:
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
