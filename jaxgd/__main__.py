"""The ``jaxgd`` command: :func:`entry` (the console script, and ``python -m jaxgd``).

It handles Ctrl-C and SIGTERM (:mod:`jaxgd.app.signals`) before it imports anything heavy:
``import jaxgd`` loads nothing, and JAX, the library and the app (:mod:`jaxgd.app.cli`, seconds)
come after, so a signal at any moment ends with one line and exit 130 or 143.
"""

import sys

from jaxgd.app import signals


def entry() -> None:
    """The ``jaxgd`` program: :func:`jaxgd.app.cli.main` of ``sys.argv``, then
    :func:`jaxgd.app.signals.leave` (``os._exit``, skipping the interpreter's teardown)."""
    signals.leave_at_once()
    signals.announce("handlers")
    try:
        from jaxgd.app import cli  # here, not above: a signal in these imports ends the process at once

        signals.announce("imported")
        code = cli.main()  # signals raise from here (signals.as_exceptions), so its files are cleaned up
    except KeyboardInterrupt as e:  # while it parsed its arguments
        code = signals.stopped(e)
    except SystemExit as e:  # bad arguments (2: the parser said so), or a missing extra (1: said here)
        code = e.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    signals.leave(code)


if __name__ == "__main__":
    entry()
