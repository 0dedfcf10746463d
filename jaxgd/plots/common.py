"""What both figure backends share: :class:`Path`, colours and dashes, the log colour scale, the
slider's steps, the sweep's series (the package :mod:`jaxgd.plots` re-exports it)."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from jaxgd.planes import evenly

OPTIMIZER_COLORS = {
    "gd": "#d62728", "momentum": "#1f77b4", "nesterov": "#17becf",
    "rmsprop": "#2ca02c", "adam": "#ff7f0e",
}


MODE_DASH = {"full": "solid", "sgd": "dot", "minibatch": "dash"}


_MPL_DASH = {"solid": "-", "dot": ":", "dash": "--"}


_EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


class Path(NamedTuple):
    """One optimizer's path: ``w``, ``b``, ``loss`` of shape ``(T+1,)``; ``batch_loss`` ``(T,)``."""

    label: str
    w: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    batch_loss: np.ndarray | None = None
    color: str | None = None
    dash: str = "solid"
    diverged_at: int = -1

    @classmethod
    def from_trajectory(cls, label, traj, color=None, dash="solid") -> "Path":
        return cls(label, np.asarray(traj.params.w), np.asarray(traj.params.b), np.asarray(traj.loss),
                   np.asarray(traj.batch_loss), color, dash, int(traj.diverged_at))

    def finite(self) -> "Path":
        """The part drawn: before the first non-finite point and before ``diverged_at``. A NaN
        loss before ``diverged_at`` is a loss not measured (``loss_every`` > 1), not an end."""
        ok = np.isfinite(self.w) & np.isfinite(self.b) & ~np.isinf(self.loss)
        if self.diverged_at >= 0:
            ok[self.diverged_at:] = False
        n = len(ok) if ok.all() else int(np.argmin(ok))
        bl = None if self.batch_loss is None else self.batch_loss[: max(n - 1, 0)]
        return self._replace(w=self.w[:n], b=self.b[:n], loss=self.loss[:n], batch_loss=bl)


def _points(minimum) -> np.ndarray:
    """``minimum`` as a ``(k, 2)`` array: None, one pair, or a sequence of pairs."""
    if minimum is None:
        return np.zeros((0, 2))
    return np.asarray(minimum, dtype=np.float64).reshape(-1, 2)


LOG_LABEL = "log10(loss − min)"


def log_excess(S) -> np.ndarray:
    """``log10(S − min S)``, floored at 10⁻⁶ of the range: the colour scale of the contour views.

    Subtracting the grid's minimum keeps a loss that reaches 0 on the grid (or goes negative, as
    the saddle's does) from stretching the scale to −300. Non-finite values stay non-finite.
    """
    S = np.asarray(S, dtype=np.float64)
    fin = S[np.isfinite(S)]
    if not fin.size:
        return S
    lo, hi = float(fin.min()), float(fin.max())
    floor = max((hi - lo) * 1e-6, np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        return np.log10(np.maximum(S - lo, floor))


def path_name(p: Path) -> str:
    """The legend name of a path: its label, with where it diverged."""
    return p.label if p.diverged_at < 0 else f"{p.label} (diverged at step {p.diverged_at})"


def style_for(optimizer: str, mode: str, index: int = 0) -> tuple[str, str]:
    """(color, dash) of a run: colour by optimizer, dash by sampling mode."""
    color = OPTIMIZER_COLORS.get(optimizer, _EXTRA_COLORS[index % len(_EXTRA_COLORS)])
    return color, MODE_DASH.get(mode, "solid")


def number(v, digits: int = 6) -> str:
    """A number for people: ``digits`` significant digits, fixed point for ``1e-3 ≤ |v| < 1e6``
    (and 0), else scientific (``1.77e+300``); trailing zeros dropped only where the short number is
    the value to 9 digits, float rounding aside (412.0 and 412 − 6e-14 are "412", 2.5 is "2.5", but
    1.9999998 is "2.00000", not a "2" that reads as exact); "—" for None or a non-finite value."""
    if v is None or not np.isfinite(v):
        return "—"
    v = float(v) + 0.0  # -0.0 is 0
    m, e = f"{v:.{digits - 1}e}".split("e")  # rounded first: 999999.7 is 1.00000e+06
    e = int(e)
    fixed = v == 0 or -3 <= e < 6
    s = f"{v:.{max(digits - 1 - e, 0)}f}" if fixed else m
    end = "" if fixed else f"e{e:+03d}"
    short = s.rstrip("0").rstrip(".") if "." in s else s
    return (short if abs(float(short + end) - v) <= 1e-9 * abs(v) else s) + end


def line_text(w: float, b: float, digits: int = 4) -> str:
    """``y = wx ± |b|`` with real minus signs: "y = 2x − 0.4868", not "y = 2x + -0.4868" (:func:`number`)."""
    sign = lambda v: "−" if v < 0 else ""  # noqa: E731
    return f"y = {sign(w)}{number(abs(w), digits)}x" + ("" if b == 0 else f" {'−' if b < 0 else '+'} {number(abs(b), digits)}")


def frame_steps(paths: Sequence[Path], max_frames: int = 60) -> list[int]:
    """The steps the slider stops at: up to ``max_frames`` from 0 to the longest path's end."""
    return evenly(max(len(p.w) for p in paths), max_frames).tolist()


SWEEP_FLOOR = 1e-30  # final losses below this (exact zeros included) are drawn at it


def _sweep_series(lrs, loss, diverged_at):
    """Points of runs that stayed sane, and the learning rates of the diverged ones."""
    lrs, loss = np.asarray(lrs), np.asarray(loss, dtype=np.float64)
    div = np.asarray(diverged_at) >= 0
    ok = ~div & np.isfinite(loss)
    return lrs[ok], np.maximum(loss[ok], SWEEP_FLOOR), lrs[div]


def _sweep_top(final_loss: dict, diverged_at: dict) -> float:
    """Where the ✕ of diverged runs go: a decade above the highest sane final loss."""
    sane = [np.asarray(v)[(np.asarray(diverged_at[k]) < 0) & np.isfinite(v)] for k, v in final_loss.items()]
    return 10 * max([float(v.max()) for v in sane if v.size] + [1.0])


def decade_ticks(values, labels: int = 8) -> dict:
    """A log axis's ``dtick`` in whole decades (plotly labels "2" and "5" between decades otherwise,
    and "10⁻¹ 2 5" reads as 10⁻¹²⁵) for the positive finite ``values`` it spans, at most ``labels``
    of them; {} (plotly's choice) where they span under 1.5 decades."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    span = float(np.log10(v.max()) - np.log10(v.min())) if v.size else 0.0
    return {"dtick": max(1, int(np.ceil(span / labels)))} if span >= 1.5 else {}


def camera_eye(S, eye=(1.6, 1.5, 1.0)) -> dict:
    """plotly's 3-D camera ``eye`` over the surface's lowest corner (``S[i, j] = loss(w[i], b[j])``), so
    the walls nearest the viewer are low and the paths in the bowl stay in view (a line with a negative slope
    has its high wall where a positive one has its low one)."""
    S = np.asarray(S, dtype=np.float64)
    corner = {(sx, sy): S[-1 if sx > 0 else 0, -1 if sy > 0 else 0] for sx in (-1, 1) for sy in (-1, 1)}
    sx, sy = min(corner, key=lambda k: corner[k] if np.isfinite(corner[k]) else np.inf)
    return dict(x=sx * eye[0], y=sy * eye[1], z=eye[2])


DIAGNOSTICS = ("gradient norm", "update norm", "first moment ‖m‖", "second moment ‖v‖")


def _diagnostic_panels(s: dict):
    """``(panel, values)`` per diagnostic a run has (``grad_norm``, ``update_norm``, ``first``,
    ``second``; a moment the rule does not keep is skipped), as float64 with non-positive and
    non-finite values NaN (not drawn on the log scale)."""
    for k, key in enumerate(("grad_norm", "update_norm", "first", "second")):
        if s[key] is not None:
            v = np.asarray(s[key], dtype=np.float64)
            yield k, np.where(np.isfinite(v) & (v > 0), v, np.nan)
