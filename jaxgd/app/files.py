"""Writing results: strict JSON (non-finite numbers become null), written atomically."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


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


def dumps(obj, indent: int | None = None) -> str:
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path`` (same suffix); on success rename it over ``path``.

    On any error, or an interrupt, the temporary file is removed and ``path`` is untouched:
    readers see the old file or the new one, never a part-written one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path: str, obj) -> None:
    """``path`` "-" writes to stdout."""
    text = dumps(obj, indent=None) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        write_text_atomic(path, text)
