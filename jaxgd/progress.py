"""Progress bars on stderr: ``run(..., progress=True)``, ``sweep(..., progress=True)``, and the
``jaxgd`` command's (:class:`jaxgd.app.terminal.Progress` is built on these).

:func:`bar` gives tqdm's bar where tqdm is installed (the ``app`` extra; imported only when a bar
is asked for, never by ``import jaxgd``), else a minimal one of our own, :class:`TextBar`: one line
rewritten with ``\\r`` on a terminal, a line at every tenth of the steps otherwise. Both start in a
"compiling" phase, which ends at the first ``update``. :func:`chunk_blocks` is how finely a run
shown with a bar is scanned.
"""

from __future__ import annotations

import importlib
import sys


def write(text: str) -> None:
    """Write to stderr as it is now, flushed; a closed or gone stderr (``2>&-``, a reader that
    left) costs nothing."""
    try:
        if sys.stderr is not None:
            sys.stderr.write(text)
            sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def is_terminal() -> bool:
    """Whether stderr is a terminal (False also for a closed stderr, or one that cannot say)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (OSError, ValueError, AttributeError):
        return False


class TextBar:
    """``name: compiling...``, then ``name: [#####.....]  50 % (500 of 1,000 steps)`` rewritten in
    place on a terminal, or :meth:`line` printed at each tenth (10 %, 20 %, ...) otherwise.
    ``tty`` (default: :func:`is_terminal`) chooses between the two."""

    WIDTH = 30

    def __init__(self, total: int, name: str, tty: bool | None = None):
        self.total, self.name, self.tenth = max(int(total), 1), name, 0
        self.tty = is_terminal() if tty is None else tty
        self.start()

    def start(self) -> None:
        """The compiling phase's text."""
        write(f"\r{self.name}: compiling..." if self.tty else f"{self.name}: compiling...\n")

    def update(self, done: int) -> None:
        """``done`` steps so far."""
        if self.tty:
            fill = int(self.WIDTH * min(max(done / self.total, 0.0), 1.0))
            write(f"\r{self.name}: [{'#' * fill}{'.' * (self.WIDTH - fill)}] {self.line(done)[len(self.name) + 2:]}")
        elif (tenth := min(10 * done // self.total, 10)) > self.tenth:
            self.tenth = tenth
            write(self.line(done) + "\n")

    def line(self, done: int) -> str:
        """``name:  50 % (500 of 1,000 steps)``."""
        return f"{self.name}: {int(100 * min(max(done / self.total, 0.0), 1.0)):3d} % ({done:,} of {self.total:,} steps)"

    def close(self) -> None:
        if self.tty:
            write("\n")


class TqdmBar:
    """tqdm's bar over the steps, described "name (compiling)" until the first update; ``unit`` and
    ``leave`` (keep the bar on screen when closed) are tqdm's."""

    def __init__(self, tqdm, total: int, name: str, unit: str = "step", leave: bool = True):
        self.name = name
        self.t = tqdm(total=int(total), desc=f"{name} (compiling)", unit=unit, leave=leave, file=sys.stderr)

    def update(self, done: int) -> None:
        if self.t.n == 0:
            self.t.set_description(self.name, refresh=False)
        self.t.update(done - self.t.n)

    def close(self) -> None:
        self.t.close()


def bar(total: int, name: str, unit: str = "step", leave: bool = True):
    """A progress bar over ``total`` steps, in its compiling phase: tqdm's if installed (``unit``,
    ``leave`` as tqdm's), else a :class:`TextBar`. ``update(done)`` moves it (``done`` steps so
    far), ``close()`` ends it."""
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        return TextBar(total, name)
    return TqdmBar(tqdm, total, name, unit, leave)


def chunk_blocks(blocks: int) -> int:
    """Blocks per chunk for a run of ``blocks`` shown with a bar: a divisor giving 20 to 100 chunks
    of one size (one compiled program for them all) where there is one, else about 20 chunks
    (the last one shorter, a second program). Runs of at most 20 blocks: one block per chunk."""
    for n in range(20, 101):
        if blocks % n == 0:
            return blocks // n
    return max(1, -(-blocks // 20))
