"""Writing results: strict JSON (non-finite numbers become null), written atomically."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
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


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str, obj) -> None:
    """``path`` "-" writes to stdout."""
    text = dumps(obj, indent=None) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        write_text_atomic(path, text)
