"""The report's results files, JSON-ready: ``results.json``, ``results.npz``, ``metrics.csv``, and
``sweep.json`` of ``jaxgd sweep``. No timings go in them, so the same command gives identical files.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import platform
from importlib.metadata import PackageNotFoundError, version

import numpy as np

import jaxgd
from jaxgd.app import files as jio
from jaxgd.app.config import ReportConfig
from jaxgd.planes import evenly
from jaxgd.app.summary import run_status
from jaxgd.runs import LRScan, divergence_boundary


def versions() -> dict:
    """The versions of jaxgd and what it runs on (from the installed metadata: importing
    matplotlib and plotly only to ask would cost the report a third of a second)."""
    def v(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"jaxgd": jaxgd.__version__, "jax": v("jax"), "jaxlib": v("jaxlib"), "optax": v("optax"),
            "numpy": np.__version__, "plotly": v("plotly"), "matplotlib": v("matplotlib"),
            "python": platform.python_version()}


def run_rows(data) -> list[dict]:
    """One row per run: its settings, steps, final point and loss, divergence, and its state for
    people ("converged", "did not converge", "diverged"; :func:`jaxgd.app.summary.run_status`)."""
    span = max(float(np.ptp(data.w)), float(np.ptp(data.b)))
    rows = []
    for r in data.runs:
        t = r.traj
        d = int(t.diverged_at)
        state, why = run_status(t, data.problem.minima, span)
        rows.append({"optimizer": r.optimizer, "mode": r.mode.name, "lr": r.lr, "epochs": r.epochs,
                     "batch_size": r.mode.batch_size, "sampling": r.mode.sampling if r.mode.batch_size else None,
                     "rng": r.mode.rng, "seed": r.mode.seed, "steps": int(t.steps), "loss_every": r.config.loss_every,
                     "final_w": float(t.params.w[-1]), "final_b": float(t.params.b[-1]),
                     "final_loss": float(t.loss[-1]), "diverged_at": None if d < 0 else d,
                     "state": state, "why": why})
    return rows


MAX_STEPS_KEPT = 2000  # per run in results.json and metrics.csv; results.npz keeps every step


def kept_steps(T: int) -> np.ndarray:
    """The steps of a ``T``-step run kept in results.json and metrics.csv: all up to
    :data:`MAX_STEPS_KEPT` + 1 points, else that many evenly spaced, the last included (results.npz
    keeps all)."""
    return evenly(T + 1, MAX_STEPS_KEPT + 1)


def results(data) -> dict:
    """Everything needed to reproduce and check the report, JSON-ready (timings excluded). A run
    longer than :data:`MAX_STEPS_KEPT` steps keeps some of its steps (``"steps_kept"`` lists them)."""
    gc = data.grad_check
    runs = []
    for row, r in zip(run_rows(data), data.runs):
        t = r.traj
        idx = kept_steps(int(t.steps))
        bidx = idx[idx < int(t.steps)]
        moments = {k: None if m is None else {"w": np.asarray(m.w)[bidx], "b": np.asarray(m.b)[bidx]}
                   for k, m in (("first_moment", t.first_moment), ("second_moment", t.second_moment))}
        every = len(idx) == int(t.steps) + 1
        runs.append(row | {"steps_kept": "all" if every else idx,
                           "params": {"w": np.asarray(t.params.w)[idx], "b": np.asarray(t.params.b)[idx]},
                           "loss": np.asarray(t.loss)[idx], "batch_loss": np.asarray(t.batch_loss)[bidx],
                           "grad_norm": np.asarray(t.grad_norm)[bidx], "update_norm": np.asarray(t.update_norm)[bidx]}
                    | moments)
    out = {
        "config": config_dict(data.config), "meta": data.meta,
        "problem": {"name": data.problem.name,
                    "minimum": None if data.problem.minimum is None else list(data.problem.minimum),
                    "minima": [list(m) for m in data.problem.minima],
                    "w_range": list(data.problem.w_range), "b_range": list(data.problem.b_range)},
        "grad_check": {"max_abs_error": gc.max_abs_error, "max_rel_error": gc.max_rel_error,
                       "grid": list(np.shape(gc.autodiff.w))},
        "runs": runs,
    }
    if data.scan is not None:
        out["sweep"] = scan_dict(data.scan)
    return out


def scan_dict(sc: LRScan) -> dict:
    """An LRScan, JSON-ready: per optimizer the final losses, divergence steps and boundary."""
    return {"lrs": sc.lrs, "epochs": sc.epochs, "batch_size": sc.batch_size, "stability_limit": sc.stability_limit,
            "optimal_lr": sc.optimal_lr,
            "optimizers": {k: {"final_loss": sc.final_loss[k], "diverged_at": sc.diverged_at[k],
                               "divergence_boundary": divergence_boundary(sc.lrs, sc.diverged_at[k])}
                           for k in sc.final_loss}}


def config_dict(cfg: ReportConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["optimizers"] = list(cfg.optimizers)
    d.pop("out")
    return d


def npz_arrays(data, res: dict) -> dict:
    arrays = {"w_grid": data.w, "b_grid": data.b, "surface": data.surface,
              "meta_json": np.array(jio.dumps({k: v for k, v in res.items() if k != "runs"}))}
    if data.problem.data is not None:
        arrays["x"], arrays["y"] = (np.asarray(a) for a in data.problem.data)
    for r in data.runs:
        key = f"{r.optimizer}/{r.mode.name}"
        t = r.traj
        for field, v in (("w", t.params.w), ("b", t.params.b), ("loss", t.loss), ("batch_loss", t.batch_loss),
                         ("grad_norm", t.grad_norm), ("update_norm", t.update_norm),
                         ("diverged_at", t.diverged_at)):
            arrays[f"{key}/{field}"] = np.asarray(v)
        for field, m in (("first_moment", t.first_moment), ("second_moment", t.second_moment)):
            if m is not None:
                arrays[f"{key}/{field}_w"], arrays[f"{key}/{field}_b"] = np.asarray(m.w), np.asarray(m.b)
    if data.scan is not None:
        arrays["sweep/lrs"] = data.scan.lrs
        for k in data.scan.final_loss:
            arrays[f"sweep/{k}/final_loss"] = data.scan.final_loss[k]
            arrays[f"sweep/{k}/diverged_at"] = data.scan.diverged_at[k]
    return arrays


def metrics_csv(data, res: dict) -> str:
    buf = io.StringIO()
    buf.write(f"# jaxgd report: {jio.dumps({k: res[k] for k in ('config', 'meta')})}\n")
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["optimizer", "mode", "lr", "batch_size", "seed", "dtype", "step", "w", "b", "loss", "batch_loss",
                 "grad_norm", "update_norm", "m_w", "m_b", "v_w", "v_b"])

    def num(v):
        v = float(v)
        return repr(v) if np.isfinite(v) else ""

    for r in data.runs:
        t = r.traj
        T = int(t.steps)
        for k in kept_steps(T).tolist():
            last = k == T
            wr.writerow([r.optimizer, r.mode.name, repr(r.lr), r.mode.batch_size or "", r.mode.seed,
                         data.meta["dtype"], k, num(t.params.w[k]), num(t.params.b[k]), num(t.loss[k]),
                         "" if last else num(t.batch_loss[k]), "" if last else num(t.grad_norm[k]),
                         "" if last else num(t.update_norm[k]),
                         *("" if last or m is None else num(getattr(m, c)[k])
                           for m in (t.first_moment, t.second_moment) for c in ("w", "b"))])
    return buf.getvalue()


def sweep_doc(scan: LRScan, config: dict, meta: dict) -> dict:
    """The contents of ``sweep.json``: the command's config, the device and versions, the scan."""
    return {"config": config, "meta": meta, "sweep": scan_dict(scan)}
