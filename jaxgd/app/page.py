"""The report's HTML page: self-contained (plotly.js inlined once; nothing fetched)."""

from __future__ import annotations

import html

import numpy as np

from jaxgd.app import files as jio
from jaxgd.app.plan import modes
from jaxgd.app.results import config_dict, run_rows
from jaxgd.app.summary import number
from jaxgd.runs import divergence_boundary


def page(data, figs: dict) -> str:
    """The self-contained HTML page (plotly.js inlined once; no network needed)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    cfg = data.config
    gc = data.grad_check
    divs = {k: pio.to_html(f, full_html=False, include_plotlyjs=False, div_id=k, auto_play=False, validate=False,
                           config={"displaylogo": False}) for k, f in figs.items()}
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            r["optimizer"], dict((m.name, m.label) for m in modes(cfg, data.problem))[r["mode"]], f"{r['lr']:g}", r["steps"],
            number(r["final_w"]), number(r["final_b"]), _fmt(r["final_loss"], "{:.3e}"),
            "no" if r["diverged_at"] is None else f"diverged at step {r['diverged_at']}")) + "</tr>"
        for r in run_rows(data))
    v = data.meta["versions"]
    names = data.problem.param_names
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>jaxgd report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #f3f3f3; }} td:nth-child(n+3) {{ text-align: right; font-variant-numeric: tabular-nums; }}
.note {{ color: #555; font-size: 0.9em; }} section {{ margin-bottom: 2em; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>jaxgd report</h1>
<p class="note">{html.escape(_describe(data))} {cfg.dtype} on {data.meta['device']};
jaxgd {v['jaxgd']}, jax {v['jax']}, optax {v['optax']}.</p>
{f"<section><h2>Data</h2>{divs['data']}</section>" if 'data' in divs else ""}
<section><h2>Loss surface and paths</h2>
<p class="note">x = {names[0]}, y = {names[1]}, z = loss. Click a legend entry to hide or show a path; the slider and play button
move every path along together (a path shorter than the step shown is drawn whole).</p>{divs['surface3d']}</section>
<section><h2>Contours</h2>{divs['contour']}</section>
<section><h2>Loss per step</h2>{divs['loss']}</section>
<section><h2>Per-step diagnostics</h2>
<p class="note">The gradient and update norms of each step, and the norms of the optimizer's moment estimates
after it (momentum's velocity and Adam's m; RMSProp's s and Adam's v), where the optimizer keeps them.</p>
{divs['diagnostics']}</section>
{_sweep_section(data, divs)}
<section><h2>Gradient check</h2>
<p id="gradcheck">jax.grad against the closed-form gradient{" (dL/dW = 2·mean(e·x), dL/db = 2·mean(e))"
if data.problem.data is not None else ""} at all
{cfg.grid}×{cfg.grid} grid points: max absolute error {gc.max_abs_error:.3e}, max relative error
{gc.max_rel_error:.3e}.</p></section>
<section><h2>Runs</h2>
<table id="runs"><tr><th>optimizer</th><th>mode</th><th>lr</th><th>steps</th><th>final {names[0]}</th><th>final {names[1]}</th>
<th>final loss</th><th>diverged</th></tr>
{rows}
</table>
<p class="note">Config: {html.escape(jio.dumps(config_dict(cfg)))}</p></section>
</body></html>
"""


def _describe(data) -> str:
    p, cfg = data.problem, data.config
    if cfg.problem != "notebook":
        from jaxgd import landscapes

        doc = landscapes.LANDSCAPES[cfg.problem].__doc__.split(":")[0].strip("`")
        mins = "; ".join(f"({m[0]:.4g}, {m[1]:.4g})" for m in p.minima) or "none"
        return f"The {cfg.problem} function f(a, b) = {doc}. Known minima: {mins}."
    what = (f"y = 2x + 3 on {p.num_examples} points of [-5, 5]" if cfg.data is None
            else f"y = W·x + b to the {p.num_examples} points of {cfg.data}")
    return f"Fitting {what} by mean squared error in (W, b); minimum at W = {p.minimum.w:.6g}, b = {p.minimum.b:.6g}."


def _polyak(data) -> tuple[float, float]:
    from jaxgd.curvature import theory

    th = theory(data.problem)
    return th.polyak_beta, th.polyak_lr


def _sweep_section(data, divs: dict) -> str:
    if data.scan is None:
        return ""
    sc = data.scan
    items = []
    for k in sc.final_loss:
        bnd = divergence_boundary(sc.lrs, sc.diverged_at[k])
        items.append(f"<li>{html.escape(k)}: " + ("no run diverged" if bnd is None else
                                                   f"runs diverge from lr = {bnd:.4g}") + "</li>")
    limit = "" if sc.stability_limit is None else (
        f"<p>Theory, for full-batch gd on this quadratic loss: lr &lt; 2/λmax = {sc.stability_limit:.5g} "
        "(λmax from <code>jax.hessian</code>), drawn as the black line; the fastest rate at "
        f"lr = 2/(λmin + λmax) = {sc.optimal_lr:.5g}, the dotted line. Heavy-ball momentum is fastest with "
        "β = {:.4g} and lr = {:.4g} (Polyak's, in jaxgd's EMA convention).</p>".format(*_polyak(data)))
    return f"""<section><h2>Learning-rate sweep</h2>
<p class="note">{len(sc.lrs)} learning rates from {sc.lrs[0]:g} to {sc.lrs[-1]:g}, {sc.epochs} full-batch steps each,
from the default start, every optimizer's runs in one compiled call. A run has diverged when its loss leaves the
finite numbers or its |loss| grows past 10⁶ × max(|start|, 1).</p>{divs['sweep']}{limit}<ul id="sweep-boundaries">{''.join(items)}</ul>
</section>"""


def _fmt(v, f="{:.6f}"):
    return "—" if v is None or not np.isfinite(v) else f.format(v)
