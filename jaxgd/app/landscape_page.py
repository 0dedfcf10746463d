"""The landscape page and files of a :class:`jaxgd.Landscape` (``jaxgd landscape`` and
``Landscape.write``): ``landscape.html`` (offline, on the page shell), ``landscape.json``,
``landscape.npz`` and the PNGs, written as one set. Every number comes from the Landscape.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import jax
import numpy as np

from jaxgd.app import files as jio
from jaxgd.app.page import flows_note
from jaxgd.app.results import versions
from jaxgd.app.shell import figures_page, fill
from jaxgd.plots.landscape_figs import figures, mpl_figures

FILES = ("landscape.json", "landscape.npz", "landscape.html")  # and landscape-NAME.png with png


def _num(v, spec=".4g") -> str:
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


VERDICT_MARGIN = 0.05  # "no" below the walk's share plus this (a walk's varies by a few hundredths between keys)


def plane_verdict(explained, walk) -> str:
    """Is a PCA plane meaningful, from the ``(2,)`` variance ratios of the paths and of the random walk: "no"
    below the walk's sum + :data:`VERDICT_MARGIN`, "yes" where the paths leave at most half the walk's share
    off the plane (``1 − e₁ − e₂ ≤ (1 − w₁ − w₂) / 2``), else "partly"."""
    e, w = float(np.sum(explained)), float(np.sum(walk))
    return "no" if e < w + VERDICT_MARGIN else "yes" if 1 - e <= (1 - w) / 2 else "partly"


def _same_start(ls) -> bool:
    starts = [np.concatenate([np.ravel(v[0]) for v in jax.tree.leaves(x.params)]) for x in ls.trajectories.values()]
    return all(np.array_equal(starts[0], x) for x in starts)


def _largest_gap(ls, shared: bool) -> str:
    """The page's sentence on the largest gap between a path's true loss and its projection's, after
    the start where all runs share it (``shared``: the table's note gives the start's)."""
    gaps = {k: g[int(shared):] for k, g in ls.gaps().items()}
    opt, g = max(gaps.items(), key=lambda kv: np.nanmax(kv[1], initial=-1.0))
    if not np.isfinite(g).any():
        return "No finite point to compare."
    k, p = int(np.nanargmax(g)) + int(shared), ls.projections[opt]
    return (f"Largest gap{' past the shared start' if shared else ''}: {html.escape(opt)} at step {k}, where "
            f"the true loss is {_num(p.loss[k])} and the loss at its projection {_num(p.projected_loss[k])} (a gap of "
            f"{_num(g[k - int(shared)])}); that point is {_num(p.distance[k], '.3g')} from the plane.")


def _trained(ls) -> str:
    """The page's sentence on the runs: one for runs of one length and batch from one start, else one each."""
    s, t = ls.settings, ls.trajectories
    lr = lambda k: "a schedule" if s[k]["lr"] is None else f"{s[k]['lr']:g}"  # noqa: E731
    if all(s.values()) and len({(v["epochs"], v["batch_size"]) for v in s.values()}) == 1 and _same_start(ls):
        v = next(iter(s.values()))
        batch = "full batch" if v["batch_size"] is None else f"batches of {v['batch_size']}"
        return (f"Each optimizer trained for {v['epochs']} epochs ({batch}) from the same start, at lr "
                f"{', '.join(f'{html.escape(k)} {lr(k)}' for k in s)}.")
    return "Runs: " + "; ".join(f"{html.escape(k)}, {int(x.num_steps)} steps" + (f" at lr {lr(k)}" if s[k] else "")
                                for k, x in t.items()) + "."


def _every(ls) -> str:
    """How often the sharpness was measured: the settings', else the steps between measurements."""
    every = {v["sharpness_every"] for v in ls.settings.values() if v and v["sharpness_every"]}
    for t in ls.trajectories.values():
        steps = np.flatnonzero(np.isfinite(t.sharpness)) if t.sharpness is not None else ()
        if len(steps) > 1 and not every:
            every.add(int(np.min(np.diff(steps))))
    return "/".join(map(str, sorted(every))) or "some"


def page(ls, v: dict, pack_dir=None) -> str:
    """The self-contained page (:func:`jaxgd.app.shell.figures_page`, plotly.js packed in
    ``pack_dir``): ``landscape.html`` filled in with ``ls`` and the versions ``v``, and :func:`figures`."""
    figs = figures(ls)
    P, first = ls.projections, html.escape(next((k for k in ls.trajectories if k not in ls.left_out),
                                                next(iter(ls.trajectories))))
    gone = "".join(f" It leaves out {html.escape(k)}'s points from step {d}, where it diverged." for k, d in ls.left_out.items())
    shared = len(P) > 1 and _same_start(ls)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            opt, _num(r["lr"]), r["steps"], _num(r["final_loss"]), "no" if r["diverged_at"] is None else
            f"at step {r['diverged_at']}", _num(abs(P[opt].loss[-1] - P[opt].projected_loss[-1])),
            _num(P[opt].distance[-1]), _num(r["final_sharpness"]), _num(r["stability_limit"]))) + "</tr>"
        for opt, r in ls.summary().items())
    p0, variance = next(iter(P.values())), {}
    start = fill("landscape.html", "start", d=_num(p0.distance[0], ".3g"), loss=_num(p0.loss[0]),
                 projected=_num(p0.projected_loss[0])) if shared else ""
    if ls.explained is not None:
        e, w = ls.explained, ls.random_walk_explained
        variance = {k: f"{100 * x:.1f}" for k, x in zip(("pc1", "pc2", "rw1", "rw2", "off", "woff", "margin"), (
            *e, *w, 1 - np.sum(e), 1 - np.sum(w), VERDICT_MARGIN))}
        variance["verdict"] = fill("landscape.html", f"verdict-{plane_verdict(e, w)}", **variance)
    axes = fill("landscape.html", "axes-random" if ls.plane_kind == "random" else "axes-unit", first=first,
                n=f"{ls.meta['num_params']:,}")
    values = {"sharpness": {"every": _every(ls)}, "gaps": {"gap": _largest_gap(ls, shared)}, "variance": variance,
              "contour": {"axes": axes, "flows": flows_note(ls.settings["gd"]["lr"], ls.flows, ", projected")
                          if getattr(ls, "flows", None) else ""}}
    body = fill("landscape.html", what=html.escape(ls.what), trained=_trained(ls), first=first, start=start, gone=gone,
                plane=html.escape(fill("landscape.html", f"plane-{ls.plane_kind}")), dtype=str(ls.problem.dtype),
                device=ls.meta["device"], v_jaxgd=v["jaxgd"], v_jax=v["jax"], v_optax=v["optax"], rows=rows,
                sections="\n".join(fill("landscape.html", k, **values.get(k, {})) for k in figs))
    return figures_page("jaxgd landscape", body, figs, pack_dir)


def write(ls, out: str | os.PathLike, png: bool = True, pack_dir=None) -> list[Path]:
    """Write landscape.json, landscape.npz, landscape.html and (``png``) the PNGs of the Landscape
    ``ls`` into ``out``, as one set (:func:`jaxgd.app.files.write_all`: every target checked
    first, the old set kept on a failure); ``meta`` gains the versions."""
    v = versions()
    doc = ls.document()
    device, *rest = doc["meta"].items()
    doc["meta"] = dict([device, ("versions", v), *rest])
    writers = {"landscape.json": jio.text_writer(jio.dumps(doc, indent=1) + "\n"),
               "landscape.npz": jio.npz_writer(ls.arrays),
               "landscape.html": jio.text_writer(page(ls, v, pack_dir))}
    if png:
        for name, fig in mpl_figures(ls).items():
            writers[f"landscape-{name}.png"] = lambda path, fig=fig: fig.savefig(path, dpi=100, format="png")
    return jio.write_all(out, writers)
