"""The ``jaxgd`` command: :func:`entry` (the console script, and ``python -m jaxgd``).

It handles Ctrl-C and SIGTERM before it imports anything heavy: ``import jaxgd`` loads nothing, and JAX,
the library and the app (:mod:`jaxgd.app.cli`, seconds) come after. Until the command parses its
arguments nothing is written, so a signal ends the process at once with its line; then the command's
own handling takes over (:mod:`jaxgd.app.signals`: exceptions, so its files are cleaned up).
"""

import os
import signal
import sys

from jaxgd.app import signals


def entry() -> None:
    """The ``jaxgd`` program: :func:`jaxgd.app.cli.main` of ``sys.argv``, then :func:`leave`."""
    signal.signal(signal.SIGINT, _now)  # also where the shell ignored SIGINT (a background job)
    for s in (signal.SIGTERM, signal.SIGHUP):  # not where ignored (nohup)
        if signal.getsignal(s) is signal.SIG_DFL:
            signal.signal(s, _now)
    signals.announce("handlers")
    try:
        from jaxgd.app import cli  # here, not above: a signal in these imports ends the process at once

        signals.announce("imported")
        code = cli.main()  # signals raise in there (signals.as_exceptions); then this module's handlers again
    except KeyboardInterrupt as e:  # while it parsed its arguments
        code = signals.stopped(e)
    except SystemExit as e:  # bad arguments (2: the parser said so), or a missing extra (1: said here)
        code = e.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    leave(code)


def _now(signum, frame):
    try:
        os.write(2, signals.LINES[signum][1].encode())  # not sys.stderr: the signal may have stopped it mid-write
    finally:
        os._exit(signals.LINES[signum][0])


def leave(code) -> None:
    """End the process with ``code`` by ``os._exit`` (signals ignored), after flushing both streams once more.

    That skips the interpreter's teardown: freeing every compiled program and a last garbage
    collection took about 0.25 s of every command here, and after Ctrl-C or SIGTERM an interrupt
    can land while XLA compiles on its own threads, where a normal shutdown may crash (a segfault
    was seen here). Call it only once every output file is finished or removed."""
    for s in signals.LINES:
        signal.signal(s, signal.SIG_IGN)
    if (files := sys.modules.get("jaxgd.app.files")) is not None:
        files.remove_temporaries()  # another thread's, writing a cache entry after Ctrl-C (signals.on_a_thread)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    entry()
