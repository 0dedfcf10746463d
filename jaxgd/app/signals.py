"""Ctrl-C, SIGTERM and SIGHUP in a ``jaxgd`` command's work (:func:`as_exceptions`): exceptions, so every
``finally`` removes its temporaries, then one line (``jaxgd: interrupted``, exit 130; ``jaxgd: terminated``,
143; ``jaxgd: hung up``, 129, where a closed terminal can still take it); one
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
LINES = {signal.SIGINT: (130, "jaxgd: interrupted\n"), signal.SIGTERM: (143, "jaxgd: terminated\n"),
         signal.SIGHUP: (129, "jaxgd: hung up\n")}  # SIGHUP: the terminal closed
_lock = threading.Lock()  # held while a dropped signal is sent again
_open = 0  # as_exceptions blocks open in the main thread: a signal is sent again only into one
_sent = threading.Event()  # set when the last signal to send again was sent or given up (a test waits on it)


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP: ``signum``), raised like Ctrl-C's KeyboardInterrupt so every ``finally`` removes
    its temporaries."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__()
        self.signum = signum


def _raise(signum, frame):
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def signal_of(e: KeyboardInterrupt) -> int:
    """The signal ``e`` stands for: SIGINT for a plain KeyboardInterrupt."""
    return getattr(e, "signum", signal.SIGINT)


@contextmanager
def as_exceptions():
    """For the block, in the main thread: Ctrl-C raises KeyboardInterrupt (also where the shell ignored
    SIGINT, e.g. a background job), SIGTERM and SIGHUP :class:`Terminated` (unless ignored: ``nohup``); the
    handlers before
    (the door's, which end the process at once) are put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in LINES}
    for s, handler in old.items():
        if handler is not signal.SIG_IGN or s == signal.SIGINT:
            signal.signal(s, _raise)
    hook, sys.unraisablehook = sys.unraisablehook, partial(_again, sys.unraisablehook)
    global _open
    _open += 1  # only the main thread writes it
    try:
        yield
    finally:
        _open -= 1
        try:
            with _lock:  # a signal being sent again as the block ends lands here, still as an exception
                pass
        finally:
            sys.unraisablehook = hook
            for s, handler in old.items():
                if handler is not None:
                    signal.signal(s, handler)


def _again(hook, unraisable) -> None:
    """``sys.unraisablehook``: a KeyboardInterrupt that Python dropped is signalled again, in a moment, from
    a thread (the main thread leaves the callback meanwhile), if the block is still open; anything else goes
    to ``hook``."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        return hook(unraisable)
    sig = signal_of(unraisable.exc_value)
    _sent.clear()
    _thread.start_new_thread(_send_again, (threading.main_thread().ident, sig))  # no wait for it


def _send_again(main: int, sig: int) -> None:
    time.sleep(0.02)
    try:
        with _lock:
            if _open:  # not once the block has ended: there the signal would land in the caller's code
                signal.pthread_kill(main, sig)
    finally:
        _sent.set()


def on_a_thread(work):
    """``work(stop)`` on a thread of its own while the main thread waits in 0.1 s slices: Ctrl-C or SIGTERM
    raises here within a moment, although ``work`` may be inside one long XLA call that nothing interrupts;
    ``stop`` (a :class:`threading.Event`) is then set, for ``work``'s callbacks to end it at their next
    call (:func:`unless`). Otherwise it goes on until the process leaves by ``os._exit``
    (:func:`jaxgd.__main__.leave`, which removes a cache entry's temporary file), so ``work`` writes no
    output. ``work``'s exception is raised here. Off the main thread, ``work`` runs in the caller's."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return work(stop)
    done, box = threading.Event(), {}

    def body():
        try:
            box["value"] = work(stop)
        except BaseException as e:  # raised in the main thread below
            box["error"] = e
        finally:
            done.set()

    try:
        threading.Thread(target=body, name="jaxgd-work", daemon=True).start()
        while not done.wait(0.1):
            pass
    except BaseException:
        stop.set()
        raise
    if "error" in box:
        raise box.pop("error")
    return box["value"]


def unless(stop: threading.Event, callback=None):
    """``callback`` (None: nothing) once ``stop`` is set raises KeyboardInterrupt instead: how a callback
    of :func:`on_a_thread`'s work ends it."""

    def call(*args):
        if stop.is_set():
            raise KeyboardInterrupt
        if callback is not None:
            callback(*args)

    return call


def first(command):
    """``command()``; an error it raises while a signal's exception unwinds its work (a clean-up that
    failed part-way, e.g. a writer's file closed under it) gives way to that exception: the signal
    stopped the command, and says so (:func:`stopped`), not the error it left behind."""
    try:
        return command()
    except Exception as e:
        if (sig := _behind(e.__context__)) is not None:
            raise sig from None
        raise


def _behind(e: BaseException | None) -> KeyboardInterrupt | None:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__context__
    return None


def stopped(e: KeyboardInterrupt) -> int:
    """Say that ``e`` stopped the command; its exit code. Later signals are ignored (its clean-up is done)."""
    _ignore()
    code, line = LINES[signal_of(e)]
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
