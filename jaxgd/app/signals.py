"""Ctrl-C and SIGTERM in a ``jaxgd`` command's work (:func:`as_exceptions`): exceptions, so every ``finally``
removes its temporaries, then one line (``jaxgd: interrupted``, exit 130; ``jaxgd: terminated``, 143); one
that Python drops (raised in a garbage-collection callback, as JAX's, or a ``__del__``) is sent again. Before,
the door (:mod:`jaxgd.__main__`) ends the process at once. Standard library only: the door imports it first.

``$JAXGD_READY_FILE``, when set, gets a line at each stage (``handlers``: the imports begin; ``imported``;
``working``): a test waits for one instead of sleeping.
"""

from __future__ import annotations

import _thread
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
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def as_exceptions():
    """For the block, in the main thread: Ctrl-C raises KeyboardInterrupt (also where the shell ignored
    SIGINT, e.g. a background job) and SIGTERM :class:`Terminated` (unless ignored); the handlers before
    (the door's, which end the process at once) are put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in LINES}
    for s, handler in old.items():
        if handler is not signal.SIG_IGN or s == signal.SIGINT:
            signal.signal(s, _raise)
    hook, sys.unraisablehook = sys.unraisablehook, partial(_again, sys.unraisablehook)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for s, handler in old.items():
            if handler is not None:
                signal.signal(s, handler)


def _again(hook, unraisable) -> None:
    """``sys.unraisablehook``: a KeyboardInterrupt that Python dropped is signalled again, in a moment, from
    a thread (the main thread leaves the callback meanwhile); anything else goes to ``hook``."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        return hook(unraisable)
    sig = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
    main = threading.main_thread().ident
    _thread.start_new_thread(lambda: (time.sleep(0.02), signal.pthread_kill(main, sig)), ())  # no wait for it


def stopped(e: KeyboardInterrupt) -> int:
    """Say that ``e`` stopped the command; its exit code. Later signals are ignored (its clean-up is done)."""
    _ignore()
    code, line = LINES[signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT]
    write(line)
    return code


def announce(stage: str) -> None:
    """Add the line ``stage`` to ``$JAXGD_READY_FILE`` if set (a path that cannot be written is skipped)."""
    if path := os.environ.get(READY_FILE):
        try:
            with open(path, "a") as f:
                f.write(stage + "\n")
        except OSError:
            pass


def _ignore() -> None:
    if threading.current_thread() is threading.main_thread():
        for s in LINES:
            signal.signal(s, signal.SIG_IGN)
