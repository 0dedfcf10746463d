"""The terminal around a ``jaxgd`` command: signals, standard streams, exit codes, one progress display.

Exit codes: 0 done; 1 a fault of the environment (disk full, a closed or full stdout, a folder that
cannot be written, out of memory), with one line on stderr; 130 Ctrl-C and 143 SIGTERM
(``jaxgd: interrupted`` / ``jaxgd: terminated``); 2 bad arguments (the parser's, :mod:`jaxgd.app.cli`).
Either way no temporary file stays and earlier files are untouched (:func:`jaxgd.app.files.write_all`).
The signals are handled from the command's first moment (:mod:`jaxgd.app.signals`).
"""

from __future__ import annotations

import os
import sys

from jaxgd import progress
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.app import signals
from jaxgd.app.files import OutputError, write_stdout

LONG_REPORT_STEPS = 100_000  # off a terminal, work of this many steps or more says what it is doing


def run_command(command, needs_stdout: bool, bad_argument) -> int:
    """``command()``'s exit code, with the faults of the environment turned into exit codes and one
    line on stderr (see the module). ``needs_stdout``: stdout is the command's only output, so a
    closed one is an error (else the summary goes to /dev/null). ``bad_argument(err)`` is called with
    an :class:`~jaxgd.ArgumentError` raised by the checks (the parser's exit, status 2)."""
    stdout = sys.stdout
    try:
        if sys.stdout is None:  # started with stdout closed (`jaxgd run >&-`)
            if needs_stdout:
                raise OutputError("stdout", "it is closed, and it is this command's only output")
            sys.stdout = open(os.devnull, "w")  # the files are the output; the summary has nowhere to go
        signals.announce("working")
        code = signals.first(command)  # a clean-up's error as a signal unwinds the work: the signal's line
        write_stdout("")  # flushed: a full stdout is an error of the command
        return code
    except (ArgumentError, ArgumentTypeError) as e:  # raised by the checks, before any work
        bad_argument(e)
    except KeyboardInterrupt as e:
        return signals.stopped(e)
    except BrokenPipeError:  # e.g. `jaxgd grads | head`: the reader left; stop quietly
        _quiet_stdout()
        return 1
    except OutputError as e:  # a fault of the environment, not of the arguments
        if e.path == "stdout":
            _quiet_stdout()
        stderr(f"jaxgd: {e}")
        return 1
    except OSError as e:  # any other fault of the environment: one line, no traceback
        where = f" ({e.filename})" if e.filename else ""
        stderr(f"jaxgd: {e.strerror or e}{where}")
        return 1
    except MemoryError:
        stderr("jaxgd: out of memory: ask for fewer runs, steps or grid points")
        return 1
    except Exception as e:  # XLA's "Out of memory allocating N bytes" is a JaxRuntimeError
        if "out of memory" not in str(e).lower():
            raise
        stderr("jaxgd: out of memory: " + str(e).strip().splitlines()[0][:200])
        return 1
    finally:
        if sys.stdout is not stdout:
            sys.stdout.close()
            sys.stdout = stdout


# ----------------------------------------------------------------------------- the streams


def echo(text: str = "") -> None:
    """One line to stdout: in ASCII spellings where stdout's encoding lacks a character (``×`` → ``x``,
    ``λ`` → ``lambda``); a closed or full stdout raises :class:`~jaxgd.app.files.OutputError`."""
    text += "\n"
    enc = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(enc)
    except (UnicodeEncodeError, LookupError):
        text = text.translate(_ASCII)
        try:
            text = text.encode(enc, "replace").decode(enc)
        except LookupError:
            text = text.encode("ascii", "replace").decode("ascii")
    write_stdout(text)


_ASCII = str.maketrans({"×": "x", "λ": "lambda", "²": "^2", "·": "*", "—": "-", "–": "-", "→": "->", "≤": "<=",
                        "≥": ">=", "…": "...", "√": "sqrt", "±": "+/-", "β": "beta", "α": "alpha", "ε": "eps",
                        "ρ": "rho", "∞": "inf", "≈": "~", "−": "-"})


def stderr(line: str) -> None:
    """One line to stderr, if it can take it (closed, or its reader gone: the line is dropped)."""
    progress.write(line + "\n")


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind it (e.g. under pytest)
        pass


# ----------------------------------------------------------------------------- progress


class _Lines(progress.TextBar):
    """Off a terminal: ``jaxgd: STAGE 10 % done (5,900 of 59,000 steps)`` at each tenth, no compiling line."""

    def start(self) -> None:
        pass

    def line(self, done: int) -> str:
        return f"jaxgd: {self.name} {10 * self.tenth} % done ({done:,} of {self.total:,} steps)"


class Progress:
    """Progress on stderr, as a context manager, drawn by :mod:`jaxgd.progress`. On a terminal: a bar
    per stage, in ``unit``, gone when done. Elsewhere, for work of at least ``LONG_REPORT_STEPS``
    steps (``total``): a line per stage (:meth:`say`) and at each tenth of the steps of all stages.
    Else nothing (``active`` is False: pass no callback, so the work is not cut into chunks for nothing)."""

    def __init__(self, total: int | None = None, unit: str = "it"):
        self.unit, self.stage, self.bar = unit, None, None
        self.tty = progress.is_terminal()
        long = not self.tty and total is not None and total >= LONG_REPORT_STEPS
        self.lines = _Lines(total, "", tty=False) if long else None
        self.active = self.tty or long

    def say(self, text: str) -> None:
        if self.lines is not None:
            stderr(f"jaxgd: {text}")

    def update(self, stage: str, done: int, total: int) -> None:
        """``done`` of ``total`` steps of ``stage``; the lines count ``done`` against the ``total`` of
        all stages given at the start."""
        if self.lines is not None:
            self.lines.name = stage
            self.lines.update(done)
        elif self.tty:
            if stage != self.stage:
                self.close()
                self.stage, self.bar = stage, progress.bar(total, stage, unit=self.unit, leave=False)
            self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
