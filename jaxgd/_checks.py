"""Argument checks shared by the API and the CLI.

Each raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad value)
with one sentence that names the argument, what it got and what is allowed. They run in
Python, before anything is traced or compiled.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np


def _is_real(v) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, numbers.Real):
        return True
    return isinstance(v, (np.ndarray, jax.Array)) and v.shape == () and (
        np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)
    )


def check_number(name: str, v, *, low=None, low_open=False, high=None, high_open=False,
                 allowed: str | None = None) -> float:
    """A finite real number within optional bounds; returns it as a Python float."""
    allowed = allowed or _describe(low, low_open, high, high_open)
    if not _is_real(v):
        raise TypeError(f"{name} must be {allowed}, got {v!r}")
    f = float(v)
    ok = math.isfinite(f)
    if ok and low is not None:
        ok = f > low if low_open else f >= low
    if ok and high is not None:
        ok = f < high if high_open else f <= high
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {f!r}")
    return f


def _describe(low, low_open, high, high_open) -> str:
    s = "a finite number"
    if low is not None and high is not None:
        lb, rb = "(" if low_open else "[", ")" if high_open else "]"
        return f"{s} in {lb}{low}, {high}{rb}"
    if low is not None:
        return f"{s} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{s} {'<' if high_open else '<='} {high}"
    return s


def check_positive_number(name: str, v) -> float:
    return check_number(name, v, low=0, low_open=True)


def check_nonneg_number(name: str, v) -> float:
    return check_number(name, v, low=0)


def check_int(name: str, v, low: int, high: int | None = None) -> int:
    """An integer (not a bool, not a float such as 2.0) in ``[low, high]``."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be {allowed}, got {v!r}")
    i = int(v)
    if i < low or (high is not None and i > high):
        raise ValueError(f"{name} must be {allowed}, got {i}")
    return i


def check_seed(seed) -> int:
    return check_int("seed", seed, 0, 2**32 - 1)


def check_choice(name: str, v, choices) -> str:
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {v!r}")
    return v


def check_dtype(dtype):
    """None → JAX's default float; else float32 or float64 (the latter needs x64 enabled)."""
    if dtype is None:
        return jnp.zeros(()).dtype if jax.config.jax_enable_x64 else jnp.dtype("float32")
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (jnp.dtype("float32"), jnp.dtype("float64")):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if dt == jnp.dtype("float64") and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype float64 needs JAX's x64 mode: call jax.config.update('jax_enable_x64', True) "
            "before creating arrays (jaxgd never flips it), or use dtype='float32'"
        )
    return dt


def check_pair(name: str, v) -> tuple[float, float]:
    """Two finite numbers, e.g. ``init=(w, b)``."""
    allowed = "two finite numbers (w, b)"
    try:
        items = list(v)
    except TypeError:
        raise TypeError(f"{name} must be {allowed}, got {v!r}") from None
    if len(items) != 2:
        raise ValueError(f"{name} must be {allowed}, got {len(items)} value(s): {v!r}")
    return tuple(check_number(name, t, allowed=allowed) for t in items)  # type: ignore[return-value]


def check_data(x, y) -> tuple[np.ndarray, np.ndarray]:
    """1-D, equal length ≥ 1, finite real numbers. Returns float64 NumPy copies."""
    out = []
    for name, v in (("x", x), ("y", y)):
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a 1-D array of finite numbers, got {type(v).__name__}") from None
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of finite numbers, got shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{name} must hold at least one point, got an empty array")
        if not np.all(np.isfinite(a)):
            bad = int(np.flatnonzero(~np.isfinite(a))[0])
            raise ValueError(f"{name} must be finite, got {a[bad]} at index {bad}")
        out.append(a)
    if out[0].shape != out[1].shape:
        raise ValueError(f"x and y must have the same length, got {out[0].size} and {out[1].size}")
    return out[0], out[1]


def check_array(name: str, v, *, low=None, low_open=False, high=None, high_open=False, integer=False) -> np.ndarray:
    """A scalar or 1-D array of finite numbers within optional bounds (each element checked)."""
    allowed = ("integers" if integer else "finite numbers") + _describe(low, low_open, high, high_open)[len("a finite number"):]
    try:
        a = np.asarray(v)
    except Exception:
        raise TypeError(f"{name} must be a number or a 1-D array of {allowed}, got {v!r}") from None
    kind_ok = a.dtype.kind in ("i", "u") if integer else a.dtype.kind in ("i", "u", "f")
    if not kind_ok:
        raise TypeError(f"{name} must be a number or a 1-D array of {allowed}, got dtype {a.dtype}")
    if a.ndim > 1 or a.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D array, got shape {a.shape}")
    f = a.astype(np.float64)
    ok = np.isfinite(f)
    if low is not None:
        ok &= f > low if low_open else f >= low
    if high is not None:
        ok &= f < high if high_open else f <= high
    if not ok.all():
        i = int(np.flatnonzero(~ok.reshape(-1))[0])
        raise ValueError(f"{name} must hold {allowed}, got {float(f.reshape(-1)[i])!r} at index {i}")
    return a
