// jaxgd report: draws every figure from one JSON object (see jaxgd/app/page.py), unpacked by shell.js.
// One slider, one play button and one set of run toggles drive the data, 3-D, contour and loss views
// together; a frame is a slice of the same arrays.
jaxgdPage(async (D, P, times, t0) => {
  const CONFIG = { displaylogo: false, responsive: true };
  // on a phone a log axis labels only its decades: the 2s and 5s between them run into "10⁻¹" and read as 10⁻¹²
  const LOG = { type: "log", exponentformat: "power", showexponent: "all", ...(window.innerWidth < 600 ? { nticks: 5 } : {}) };
  // a log axis over the values given, labelled at whole decades only from 1.5 decades on (jaxgd.plots.common.decade_ticks)
  const decades = (...vs) => { const l = vs.flat(3).filter((v) => v > 0 && isFinite(v)).map(Math.log10);
    const s = l.length ? Math.max(...l) - Math.min(...l) : 0; return { ...LOG, ...(s >= 1.5 ? { dtick: Math.ceil(s / (narrow() ? 5 : 8)) } : {}) }; };
  // ColorBrewer's RdBu (11 classes) over [lo, hi] with its white at 0: blues below, reds above
  const RDBU = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"];
  const diverging = (lo, hi) => { const w = -lo / (hi - lo);
    return RDBU.map((c, i) => [i <= 5 ? (w * i) / 5 : w + ((1 - w) * (i - 5)) / 5, c]); };
  const names = D.names, G = D.grid, runs = D.runs;
  const [wlo, whi] = [G.w[0], G.w[G.w.length - 1]], [blo, bhi] = [G.b[0], G.b[G.b.length - 1]];
  // d significant digits, trailing zeros after the point dropped (100 stays 100; 2.500 is 2.5; 1.000e+6 is 1e+6)
  const trim = (s) => { const [m, e] = s.split("e"); const t = m.includes(".") ? m.replace(/\.?0+$/, "") : m; return e === undefined ? t : `${t}e${e}`; };
  const fmt = (v, d = 4) => (v === null || !isFinite(v) ? "—" : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 || v === 0
    ? trim((+v).toPrecision(d)) : trim((+v).toExponential(d - 1)));
  const fin = (v) => v !== null && isFinite(v);
  const [xName, yName] = D.data ? D.data.names : ["x", "y"];  // the data's columns (a CSV file's header)
  const lineText = (w, b) => `${yName} = ${w < 0 ? "−" : ""}${fmt(Math.abs(w))}${xName === "x" ? "x" : "·" + xName}` +
    (b ? ` ${b < 0 ? "−" : "+"} ${fmt(Math.abs(b))}` : "");
  // the loss as the loss views draw it: loss − min on a log axis, or as it is on a linear one (no minimum: D.lossMin null).
  // The page's numbers have 6 digits, so loss − min is known to about 1e-5·|min|: below that it is drawn at that floor
  const RES = Math.abs(D.lossMin || 0) * 1e-5;
  const excess = (v) => (D.lossMin === null ? v : Math.max(v - D.lossMin, RES)), drawn = (v) => fin(v) && (D.lossMin === null || v > 0);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const narrow = () => window.innerWidth < 600;

  // --- geometry: bilinear surface value, and clipping a path at the grid's edge
  function surfaceAt(w, b) {
    const n = G.w.length, m = G.b.length;
    const fi = Math.min(Math.max((w - wlo) / (whi - wlo) * (n - 1), 0), n - 1);
    const fj = Math.min(Math.max((b - blo) / (bhi - blo) * (m - 1), 0), m - 1);
    const i = Math.min(Math.floor(fi), n - 2), j = Math.min(Math.floor(fj), m - 2);
    const u = fi - i, v = fj - j, S = G.S; // S[j][i] = loss(w[i], b[j])
    return (1 - u) * (1 - v) * S[j][i] + u * (1 - v) * S[j][i + 1] + (1 - u) * v * S[j + 1][i] + u * v * S[j + 1][i + 1];
  }
  const inside = (w, b) => fin(w) && fin(b) && w >= wlo && w <= whi && b >= blo && b <= bhi;
  function edgePoint(w0, b0, w1, b1) { // where the segment from inside (0) to outside (1) crosses the box
    let s = 1;
    for (const [p0, p1, lo, hi] of [[w0, w1, wlo, whi], [b0, b1, blo, bhi]]) {
      if (p1 > hi) s = Math.min(s, (hi - p0) / (p1 - p0));
      if (p1 < lo) s = Math.min(s, (lo - p0) / (p1 - p0));
    }
    return [w0 + s * (w1 - w0), b0 + s * (b1 - b0)];
  }
  // A path's first k points inside the grid (before point `stop`, if given) and, if it leaves, its exit on the edge.
  function clip(w, b, stop = w.length) {
    let k = 0;
    while (k < w.length && k < stop && inside(w[k], b[k])) k++;
    if (k === w.length || k === 0) return { k, exit: null };
    return { k, exit: fin(w[k]) && fin(b[k]) ? edgePoint(w[k - 1], b[k - 1], w[k], b[k]) : [w[k - 1], b[k - 1]] };
  }
  // Each run once: its points inside the grid and, if it leaves, the exit.
  for (const r of runs) {
    const stop = r.t.findIndex((t) => r.diverged_at >= 0 && t >= r.diverged_at); // its points before it diverged
    const { k, exit } = clip(r.w, r.b, stop < 0 ? r.t.length : stop);
    r.kept = k;
    r.exit = null;
    if (exit) {
      const why = r.diverged_at >= 0 && r.t[k] >= r.diverged_at ? `diverged at step ${r.diverged_at}` : `left the plot at step ${r.t[k]}`;
      r.exit = { w: exit[0], b: exit[1], z: surfaceAt(...exit), step: r.t[k], why };
    }
    r.visible = true;
    // the loss curve: every measured (finite) point, up to and including where the run diverged
    r.lossAt = [];
    r.lossY = r.loss.map(excess);
    r.t.forEach((t, i) => { if (drawn(r.lossY[i]) && (r.diverged_at < 0 || t <= r.diverged_at)) r.lossAt.push(i); });
    r.lossN = r.lossAt.length;
    r.lossLast = r.lossN ? r.lossAt[r.lossN - 1] : -1;
  }
  const lift = 0.005 * (G.zmax - G.zmin);
  // the known minima as white stars (on the contour, the what-if and the seed cloud)
  const stars = (size, more) => ({ type: "scatter", mode: "markers", x: D.minima.map((m) => m[0]), y: D.minima.map((m) => m[1]),
    marker: { symbol: "star", size, color: "white", line: { color: "black", width: 1.5 } }, ...more });
  const dataRange = D.data && [Math.min(...D.data.x), Math.max(...D.data.x)]; // the data figure's lines span it
  // 1:1 where both axes are one unit (a landscape's a, b); a line's W and b are not (score/hour, score: a file's b may span 10× W)
  const square = D.data ? {} : { scaleanchor: "x", scaleratio: 1, constrain: "domain" };

  // --- the slider: a position on one scale for every run (epochs = data seen, or updates)
  const maxSteps = Math.max(...runs.map((r) => r.steps));
  const maxEpochs = Math.max(...runs.map((r) => r.steps / r.spe));
  const maxSpe = Math.max(...runs.map((r) => r.spe));
  const unitSel = document.getElementById("unit"), slider = document.getElementById("pos");
  const posLabel = document.getElementById("pos-label"), playBtn = document.getElementById("play");
  let unit = "epochs", N = 1;
  function setUnit(u) {
    const frac = N ? +slider.value / N : 1;
    unit = u;
    N = Math.max(1, Math.min(1000, unit === "epochs" ? Math.round(maxEpochs * maxSpe) : maxSteps));
    slider.max = N;
    slider.value = Math.round(frac * N);
  }
  const scale = () => (unit === "epochs" ? maxEpochs : maxSteps) * (+slider.value) / N;
  function stepOf(r, u) { // the step run r has reached at slider value u
    const k = unit === "epochs" ? Math.floor(u * r.spe + 1e-9) : Math.round(u);
    return Math.min(k, r.steps);
  }
  function shown(r, k) { // how many stored points have t <= k
    let lo = 0, hi = r.t.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (r.t[mid] <= k) lo = mid + 1; else hi = mid; }
    return lo;
  }
  const xOf = (r, t) => (unit === "epochs" ? t / r.spe : t);
  const xTitle = () => (unit === "epochs" && D.data ? "epoch (passes over the data)" : "update (step)");  // no data: a step

  // The part of run r drawn at step k: points, and the exit ✕ once reached.
  function partOf(r, k) {
    const n = Math.min(shown(r, k), r.kept);
    // z: the loss, or where it was not measured (loss_every > 1) the surface under the point
    const out = { w: r.w.slice(0, n), b: r.b.slice(0, n), z: r.loss.slice(0, n).map((v, i) => (fin(v) ? v : surfaceAt(r.w[i], r.b[i])) + lift),
                  c: r.t.slice(0, n).map((t, i) => [t, r.loss[i]]), exit: null };
    if (r.exit && k >= r.exit.step) out.exit = r.exit;
    return out;
  }
  const hoverPath = `%{fullData.name}<br>step %{customdata[0]}<br>${names[0]} = %{x:.4g}<br>${names[1]} = %{y:.4g}` +
    "<br>loss = %{customdata[1]:.4g}<extra></extra>";
  const width3d = { full: 6, minibatch: 4, sgd: 2.5 };

  // --- the figures that move with the slider
  const figs = {}; // id -> {div, start: index of the start trace (the paths are 1..runs), ...}
  async function newPlot(id, data, layout) {
    const div = document.getElementById(id);
    if (!div) return null;
    const t = performance.now();
    await P.newPlot(div, data, Object.assign({ margin: { t: 40, r: 10, l: 60, b: 50 } }, layout), CONFIG);
    (window.jaxgdPlotMs = window.jaxgdPlotMs || {})[id] = Math.round(performance.now() - t);
    return div;
  }
  function drawStatic() {
    const legend = { orientation: "h", y: -0.15 };
    // 3-D
    const surf = { type: "surface", x: G.w, y: G.b, z: G.S, colorscale: "Viridis", opacity: 0.85, name: "loss surface",
      showscale: true, colorbar: { title: { text: "loss" }, len: 0.6, thickness: 14 },
      lighting: { ambient: 0.9, diffuse: 0.4, specular: 0.05, fresnel: 0.1 },
      hovertemplate: `${names[0]} = %{x:.3f}<br>${names[1]} = %{y:.3f}<br>loss = %{z:.4g}<extra></extra>` };
    const paths3d = runs.map((r) => ({ type: "scatter3d", mode: "lines", name: r.label, x: [], y: [], z: [],
      line: { color: r.color, width: width3d[r.mode] || 4, dash: r.dash }, hovertemplate: hoverPath, customdata: [] }));
    const start3d = { type: "scatter3d", mode: "markers", name: "start", showlegend: false,
      x: runs.map((r) => r.w[0]), y: runs.map((r) => r.b[0]), z: runs.map((r) => r.loss[0] + lift),
      marker: { size: 6, color: "white", line: { color: "black", width: 2 }, symbol: "circle-open" },
      hovertemplate: "start<extra></extra>" };
    const min3d = { type: "scatter3d", mode: "markers", name: "minimum", showlegend: false,
      x: D.minima.map((m) => m[0]), y: D.minima.map((m) => m[1]), z: D.minLoss.map((v) => v + lift),
      marker: { size: 7, color: "white", symbol: "diamond", line: { color: "black", width: 2 } },
      hovertemplate: "minimum<br>%{x:.4g}, %{y:.4g}<extra></extra>" };
    const marks3d = { type: "scatter3d", mode: "markers", name: "current point", showlegend: false, x: [], y: [], z: [],
      marker: { size: 6, color: [], line: { color: "black", width: 1 } }, hovertemplate: "%{customdata[2]}<br>step %{customdata[0]}<extra></extra>" };
    const exits3d = { type: "scatter3d", mode: "markers", name: "left the plot", showlegend: false, x: [], y: [], z: [],
      marker: { size: 9, color: [], symbol: [] }, hovertemplate: "%{text}<extra></extra>", text: [] }; // 3-D "x" is ❌: no font has it
    const z0 = G.zmin, z1 = G.zmax;
    specs.surface3d = { data: [surf, ...paths3d, start3d, min3d, marks3d, exits3d], layout: {
      title: { text: "Loss surface and paths" }, showlegend: false, margin: { l: 0, r: 0, t: 40, b: 0 },
      scene: { xaxis: { title: { text: names[0] }, range: [wlo, whi] }, yaxis: { title: { text: names[1] }, range: [blo, bhi] },
               zaxis: { title: { text: D.data ? "loss (MSE)" : "loss" }, range: [z0 - 0.02 * (z1 - z0), z1 + 0.05 * (z1 - z0)] },
               camera: { eye: !D.data ? { x: 0.9, y: -1.5, z: 1.9 } : G.eye }, // data: over the lowest corner (camera_eye)
               aspectmode: "cube" } } };
    figs.surface3d = { start: 1 + runs.length };
    // contour
    const cont = { type: "contour", x: G.w, y: G.b, z: G.logS, colorscale: "Viridis", ncontours: 30, customdata: G.S,
      colorbar: { title: { text: D.logLabel, side: "right" }, thickness: 14 }, name: D.logLabel,
      hovertemplate: `${names[0]} = %{x:.3f}<br>${names[1]} = %{y:.3f}<br>loss = %{customdata:.4g}<extra></extra>` };
    const paths2d = runs.map((r) => ({ type: "scatter", mode: "lines+markers", name: r.label, x: [], y: [], customdata: [],
      line: { color: r.color, width: 2, dash: r.dash }, marker: { size: 3, color: r.color }, hovertemplate: hoverPath }));
    const start2d = { type: "scatter", mode: "markers", name: "start", x: runs.map((r) => r.w[0]), y: runs.map((r) => r.b[0]),
      marker: { size: 11, color: "white", symbol: "circle", line: { color: "black", width: 2 } }, hovertemplate: "start<extra></extra>" };
    const marks2d = { type: "scatter", mode: "markers", name: "current point", x: [], y: [], customdata: [],
      marker: { size: 11, color: [], symbol: [], line: { color: "black", width: 1.5 } },
      hovertemplate: "%{customdata[2]}<br>step %{customdata[0]}<br>loss = %{customdata[1]:.4g}<extra></extra>" };
    const exits2d = { type: "scatter", mode: "markers", name: "left the plot", x: [], y: [], text: [], cliponaxis: false,
      marker: { size: 14, color: [], symbol: [], line: { color: "black", width: 1 } }, hovertemplate: "%{text}<extra></extra>" };
    const min2d = stars(18, { name: D.minima.length > 1 ? "minima" : "minimum", hovertemplate: "minimum<br>%{x:.4g}, %{y:.4g}<extra></extra>" });
    // gd's flows (D.flows), off at first: the legend turns each on; the point at time k·η moves with gd's step k
    const F = D.flows ? D.flows.items : [], gt = F.length ? runs[D.flows.run].t : [];
    const flows2d = F.map((f) => ({ type: "scatter", mode: "lines", name: f.label, x: [], y: [], visible: "legendonly",
      line: { color: f.color, dash: f.dash, width: 1.5 }, customdata: gt.map((k) => [k, k * D.flows.lr]), meta: { kept: clip(f.w, f.b).k },
      hovertemplate: `${f.label}<br>t = %{customdata[1]:.4g} (gd's step %{customdata[0]})<br>${names[0]} = %{x:.4g}<br>${names[1]} = %{y:.4g}<extra></extra>` }));
    [cont, ...paths2d, start2d, marks2d, exits2d, min2d].forEach((t) => { t.showlegend = false; });
    specs.contour = { data: [cont, ...paths2d, start2d, marks2d, exits2d, min2d, ...flows2d], layout: {
      title: { text: "Contours of the loss and paths" }, showlegend: F.length > 0,
      legend: { ...(D.flows || {}).key, y: narrow() ? -0.25 : -0.15 }, margin: { t: 40, r: 10, l: 60, b: D.flows ? 90 : 50 },
      xaxis: { title: { text: names[0] }, range: [wlo, whi], zeroline: false, constrain: "domain" },
      yaxis: { title: { text: names[1] }, range: [blo, bhi], zeroline: false, ...square } } };
    figs.contour = { start: 1 + runs.length, quick: true };
    // loss per step
    const lossTraces = [];
    runs.forEach((r) => lossTraces.push({ type: "scatter", mode: r.lossN < 3 ? "lines+markers" : "lines", name: r.label,
      x: [], y: [], line: { color: r.color, dash: r.dash, width: 2 }, marker: { size: 5 }, xaxis: "x", yaxis: "y",
      hovertemplate: `${r.label}<br>%{x:.4g}<br>loss = %{y:.4g}<extra></extra>` }));
    const two = !!D.data; // a landscape's batch loss is its loss: one panel (its batch traces lie under the loss's)
    runs.forEach((r) => lossTraces.push({ type: "scatter", mode: "lines", name: r.label, x: [], y: [], showlegend: false,
      line: { color: r.color, dash: r.dash, width: 1 }, xaxis: two ? "x2" : "x", yaxis: two ? "y2" : "y",
      hovertemplate: `${r.label}<br>%{x:.4g}<br>batch loss = %{y:.4g}<extra></extra>` }));
    const divMarks = runs.filter((r) => r.diverged_at >= 0 && r.lossN > 0);
    lossTraces.push({ type: "scatter", mode: "markers", name: "diverged", xaxis: "x", yaxis: "y", showlegend: false,
      x: [], y: divMarks.map((r) => (D.lossRange ? Math.min(r.lossY[r.lossLast], 10 ** (D.lossRange[1] - 0.3)) : r.lossY[r.lossLast])), cliponaxis: false,
      marker: { symbol: "x", size: 12, color: divMarks.map((r) => r.color) }, text: divMarks.map((r) => `${r.label}: diverged at step ${r.diverged_at}`),
      hovertemplate: "%{text}<extra></extra>" });
    // log axes of loss − min at decades (no range: the batch loss's own), linear where there is no minimum
    const ax = (t, range) => (D.lossMin === null ? { title: { text: t } }
      : { ...decades(range ? range.map((v) => 10 ** v) : runs.map((r) => r.batch_loss)), title: { text: t }, range });
    specs.loss = { data: lossTraces, layout: {
      title: { text: "Loss per step" }, showlegend: false,
      ...(two ? { grid: narrow() ? { rows: 2, columns: 1, pattern: "independent", ygap: 0.25 } : { rows: 1, columns: 2, pattern: "independent" } } : {}),
      xaxis: { title: { text: xTitle() } }, xaxis2: { title: { text: xTitle() } },
      yaxis: ax(D.data ? `full-data ${D.lossTitle} (MSE)` : D.lossTitle, D.lossRange),
      yaxis2: ax("batch loss", D.lossMin ? undefined : D.lossRange),  // a batch's loss is drawn as it is: it can be under the minimum
      annotations: two ? [{ text: "full-data loss at each point", x: 0.5, xref: "x domain", y: 1.06, yref: "y domain", showarrow: false },
                    { text: "loss of each step's batch", x: 0.5, xref: "x2 domain", y: 1.06, yref: "y2 domain", showarrow: false }] : [] } };
    // the cursor: a dotted trace per panel across its y range (a layout shape would replot every trace when it moves)
    const span = (vs) => { const v = vs.filter((x) => fin(x) && (D.lossMin === null || x > 0)); return [v.reduce((a, x) => Math.min(a, x), Infinity), v.reduce((a, x) => Math.max(a, x), -Infinity)]; };
    const cursorY = [D.lossRange ? D.lossRange.map((v) => 10 ** v) : span(runs.flatMap((r) => r.lossY)),
                     D.lossRange && !D.lossMin ? D.lossRange.map((v) => 10 ** v) : span(runs.flatMap((r) => r.batch_loss))];
    for (const k of ["", "2"]) lossTraces.push({ type: "scatter", mode: "lines", name: "slider", x: [0, 0], y: cursorY[+!!k],
      xaxis: "x" + (two ? k : ""), yaxis: "y" + (two ? k : ""), showlegend: false, hoverinfo: "skip", line: { color: "#888", dash: "dot", width: 1 } });
    figs.loss = { divMarks, quick: true };
    // diagnostics: four panels, static (x in the slider's unit)
    const keys = ["grad_norm", "update_norm", "first", "second"];
    const titles = ["gradient norm ‖g‖", "update norm ‖Δθ‖", "first moment ‖m‖ (velocity)", "second moment ‖v‖"];
    const diag = [];
    runs.forEach((r) => keys.forEach((key, k) => {
      if (!r[key]) return;
      diag.push({ type: "scatter", mode: "lines", name: r.label, x: [],  // up to where the run diverged
        y: r[key].map((v, i) => (fin(v) && v > 0 && (r.diverged_at < 0 || r.tb[i] < r.diverged_at) ? v : null)),
        line: { color: r.color, dash: r.dash, width: 1.5 }, xaxis: "x" + (k ? k + 1 : ""), yaxis: "y" + (k ? k + 1 : ""),
        meta: { run: runs.indexOf(r) }, hovertemplate: `${r.label}<br>%{x:.4g}<br>%{y:.4g}<extra></extra>` });
    }));
    const dl = { title: { text: "Per-step diagnostics" }, showlegend: false,
      grid: narrow() ? { rows: 4, columns: 1, pattern: "independent", ygap: 0.3 } : { rows: 2, columns: 2, pattern: "independent", ygap: 0.25 },
      annotations: titles.map((t, k) => ({ text: t, showarrow: false, xref: "x" + (k ? k + 1 : "") + " domain",
        yref: "y" + (k ? k + 1 : "") + " domain", x: 0.5, y: 1.08 })) };
    for (let k = 1; k <= 4; k++) { dl["yaxis" + (k > 1 ? k : "")] = decades(diag.filter((t) => t.yaxis === "y" + (k > 1 ? k : "")).map((t) => t.y)); dl["xaxis" + (k > 1 ? k : "")] = { title: { text: k > 2 || narrow() ? xTitle() : "" } }; }
    specs.diagnostics = { data: diag, layout: dl };
    figs.diagnostics = {};
    // the data and the line of a chosen run
    if (D.data) {
      const x = D.data.x, xs = dataRange;
      const tr = [];
      tr.push({ type: "scatter", mode: "markers", x, y: D.data.y, name: "data fitted", marker: { color: "#1f77b4", size: 6 },
        hovertemplate: `${esc(xName)} = %{x:.4g}<br>${esc(yName)} = %{y:.4g}<extra></extra>` });
      const L = D.data.line;
      tr.push({ type: "scatter", mode: "lines", x: xs, y: xs.map((v) => L.w * v + L.b), name: `${L.label} ${L.text}`, line: { color: "#d62728" } });
      tr.push({ type: "scatter", mode: "lines", x: xs, y: [0, 0], name: "fit of the run", line: { color: "#333", dash: "dash", width: 3 } });
      specs.data = { data: tr, layout: { title: { text: "The data and the line of the chosen run" }, legend,
        xaxis: { title: { text: xName } }, yaxis: { title: { text: yName } } } };
      figs.data = { line: tr.length - 1 };
      const sel = document.getElementById("data-run");
      runs.forEach((r, i) => sel.add(new Option(r.label, i)));
      sel.addEventListener("change", () => draw());
    }
    // the first frame goes into the specs themselves: each figure is drawn once, when its turn comes (see the end)
    send(moving(curves()));
  }
  function setPath(obj, path, value) { // "marker.color", "shapes[0].x0"
    const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
    let o = obj;
    for (const k of keys.slice(0, -1)) o = o[k] = o[k] === undefined ? {} : o[k];
    o[keys[keys.length - 1]] = value;
  }
  function apply(spec, u) { // u: {traces: {index: {path: value}}, layout: {path: value}}; undefined leaves a value as it is
    for (const [i, t] of Object.entries(u.traces)) for (const [key, v] of Object.entries(t)) if (v !== undefined) setPath(spec.data[i], key, v);
    for (const [key, v] of Object.entries(u.layout)) setPath(spec.layout, key, v);
  }
  const specs = {};

  // --- a slider position (moving) and the runs shown in the slider's unit (curves) as one update per figure, U[id]
  function put(U, id, i, vals) { // i: a trace's index, or null for the layout
    const f = (U[id] = U[id] || { traces: {}, layout: {} });
    Object.assign(i === null ? f.layout : (f.traces[i] = f.traces[i] || {}), vals);
  }
  function moving(U = {}) {
    const u = scale();
    const parts = runs.map((r) => partOf(r, stepOf(r, u)));
    const vis = runs.map((r) => r.visible);
    const cur = [], exits = [];
    runs.forEach((r, i) => {
      const p = parts[i], n = p.w.length;
      if (!vis[i]) return;
      if (p.exit) exits.push({ w: p.exit.w, b: p.exit.b, z: p.exit.z + lift, color: r.color, text: `${r.label}: ${p.exit.why}`,
                               diverged: p.exit.why.startsWith("diverged") });  // ✕ (+ in 3-D) only where it diverged, else ○
      else if (n) cur.push({ w: p.w[n - 1], b: p.b[n - 1], z: p.z[n - 1], color: r.color, symbol: r.symbol, step: r.t[n - 1], loss: r.loss[n - 1], label: r.label });
    });
    const withExit = (p, key) => (p.exit ? [...p[key], key === "z" ? p.exit.z + lift : p.exit[key]] : p[key]);
    const xyz = (ps, z) => ({ x: ps.map((p) => p.w), y: ps.map((p) => p.b), ...(z ? { z: ps.map((p) => p.z) } : {}) });
    // the paths (traces 1..runs), then the current points (the mode's symbol) and the exits (their two traces after the
    // start's, the 3-D view's after its minimum too): the same in both views, the 3-D one with z
    for (const [id, z, next] of [["surface3d", true, 2], ["contour", false, 1]]) {
      const first = figs[id].start + next;
      parts.forEach((p, i) => put(U, id, 1 + i, { x: withExit(p, "w"), y: withExit(p, "b"), ...(z ? { z: withExit(p, "z") } : {}), customdata: p.c }));
      put(U, id, first, { ...xyz(cur, z), "marker.color": cur.map((p) => p.color), "marker.symbol": cur.map((p) => p.symbol),
        customdata: cur.map((p) => [p.step, p.loss, p.label]) });
      put(U, id, first + 1, { ...xyz(exits, z), "marker.color": exits.map((p) => p.color), text: exits.map((p) => p.text),
        "marker.symbol": exits.map((p) => (p.diverged ? (z ? "cross" : "x") : "circle-open")) });
    }
    const g = D.flows && runs[D.flows.run], n = g && shown(g, stepOf(g, u)), fl = specs.contour.data.slice(figs.contour.start + 4);
    if (g) fl.forEach((f, j) => { const it = D.flows.items[j], k = Math.min(n, f.meta.kept);  // up to gd's step, in the grid
      put(U, "contour", figs.contour.start + 4 + j, { x: it.w.slice(0, k), y: it.b.slice(0, k) }); });
    [1, 2].forEach((k) => put(U, "loss", 2 * runs.length + k, { x: [u, u] }));
    if (D.data) {
      const i = +document.getElementById("data-run").value || 0, r = runs[i], p = parts[i], n = p.w.length;
      if (n) {
        const w = p.w[n - 1], b = p.b[n - 1];
        put(U, "data", figs.data.line, { x: dataRange, y: dataRange.map((v) => w * v + b),
          name: `${r.label}, step ${r.t[n - 1]}: ${lineText(w, b)}${p.exit ? `; then ${p.exit.why}` : ""}` });
      }
    }
    const ep = (v) => (v < 100 ? fmt(v, 3) : `${Math.floor(v)}`);  // whole epochs past 100, never "1e+3"
    posLabel.textContent = unit === "epochs" ? `epoch ${ep(u)} of ${ep(maxEpochs)}` : `update ${Math.round(u)} of ${maxSteps}`;
    return U;
  }
  // the loss and diagnostics curves, x in the slider's unit, and the paths, for the runs shown
  function curves(U = {}) {
    const n = runs.length;
    runs.forEach((r, i) => {
      put(U, "loss", i, { x: r.lossAt.map((k) => xOf(r, r.t[k])), y: r.lossAt.map((k) => r.lossY[k]), visible: r.visible });
      put(U, "loss", n + i, { x: r.tb.map((t) => xOf(r, t)), y: r.batch_loss.map((v) => (fin(v) && v > 0 ? v : null)), visible: r.visible });
      for (const id of ["surface3d", "contour"]) put(U, id, 1 + i, { visible: r.visible });
    });
    put(U, "loss", 2 * n, { x: figs.loss.divMarks.map((r) => xOf(r, r.t[r.lossLast])) });
    put(U, "loss", null, { "xaxis.title.text": xTitle(), "xaxis2.title.text": xTitle() });
    specs.diagnostics.data.forEach((t, i) => { const r = runs[t.meta.run]; put(U, "diagnostics", i, { x: r.tb.map((s) => xOf(r, s)), visible: r.visible }); });
    put(U, "diagnostics", null, { "xaxis3.title.text": xTitle(), "xaxis4.title.text": xTitle() });
    return U;
  }
  // Each figure draws its updates in turn, the latest of those that came while it drew replacing the others; a figure
  // out of the window only takes the numbers (stale) and draws them when scrolled to; one not drawn yet, into its spec.
  // A trace's values unchanged since they were last sent are not sent again (a path's prefix: its length and end).
  const sig = (t) => JSON.stringify(Object.entries(t).map(([k, v]) => [k, Array.isArray(v) && v.length > 50 ? [v.length, v[v.length - 1]] : v]));
  function send(U) {
    const todo = [];
    for (const [id, u] of Object.entries(U)) {
      const f = figs[id];
      if (!f) continue;
      f.sent = f.sent || {};
      for (const [i, t] of Object.entries(u.traces)) { const s = sig(t); if (f.sent[i] === s) delete u.traces[i]; else f.sent[i] = s; }
      if (!Object.keys(u.traces).length && !Object.keys(u.layout).length) continue;
      if (!f.drawn) { apply(specs[id], u); f.stale = f.stale || f.drawing; continue; }
      if (!f.run && !f.shown) { apply(f.div, u); f.stale = true; continue; }
      if (!f.next) f.next = u;
      else { for (const [i, t] of Object.entries(u.traces)) Object.assign(f.next.traces[i] = f.next.traces[i] || {}, t); Object.assign(f.next.layout, u.layout); }
      todo.push(kick(f));
    }
    return Promise.all(todo);
  }
  const kick = (f) => (f.run = f.run || (f.next || f.stale ? turns(f) : null));
  async function turns(f) {
    await null; // f.run is set before the loop can end
    try { while (f.next || f.stale) { const u = f.next || { traces: {}, layout: {} }; f.next = null; await show(f, u); } } finally { f.run = null; }
  }
  // 2-D paths and markers move by a frame of their traces alone (plotly redraws nothing else); anything else by one update
  const QUICK = new Set(["x", "y", "customdata", "text", "marker.color", "marker.symbol"]);
  const STILL = { transition: { duration: 0 }, frame: { duration: 0, redraw: false }, mode: "immediate" };
  function show(f, u) {
    const idx = Object.keys(u.traces).map(Number), tr = idx.map((i) => u.traces[i]);
    if (f.stale) { f.stale = false; apply(f.div, u); return P.redraw(f.div); }
    if (f.quick && !Object.keys(u.layout).length && tr.every((t) => Object.keys(t).every((k) => QUICK.has(k))))
      return P.animate(f.div, { data: tr.map((t) => { const o = {}; apply({ data: [o] }, { traces: [t], layout: {} }); return o; }), traces: idx }, STILL);
    const keys = [...new Set(tr.flatMap(Object.keys))];
    return idx.length ? P.update(f.div, Object.fromEntries(keys.map((k) => [k, tr.map((t) => t[k])])), u.layout, idx) : P.relayout(f.div, u.layout);
  }
  // shown: in the window or within 100 px below it; above it the opaque bar hides a figure coming in (the 3-D's bottom
  // is 12 px above the window when the contour, beside its text, is at its top: not drawn at every step)
  const seen = new IntersectionObserver((es) => es.forEach((e) => { const f = Object.values(figs).find((g) => g.div === e.target);
    if ((f.shown = e.isIntersecting)) kick(f); }), { rootMargin: "0px 0px 100px" });
  async function plot(id) { // a moving figure, from its spec
    const f = figs[id];
    f.drawing = true;
    f.div = await newPlot(id, specs[id].data, specs[id].layout);
    f.drawn = !!f.div;
    if (f.div) seen.observe(f.div);
    // plotly rebuilds every trace of a 3-D scene at each update: the surface (101² points, half of a step) only when
    // its z is a new array, which on this page it never is (plotly's own objects: without them, as before)
    const scene = id === "surface3d" && f.div && f.div._fullLayout.scene._scene, surf = scene && scene.traces && scene.traces[f.div._fullData[0].uid];
    const update = surf && surf.update;
    if (typeof update === "function") surf.update = function (d) { if (d.z !== this.keptZ) { this.keptZ = d.z; update.call(this, d); } };
  }
  const draw = () => send(moving());
  const drawCurves = () => send(curves());

  // --- the key in the player bar (always shown): each optimizer's colour, each sampling mode's mark and dash (where
  // there are several), drawn from the runs' own styles as the traces are; each run toggle's swatch is drawn the same way
  const SVG_DASH = { dot: "3 3", dash: "9 9" }; // plotly's dashes of a 2 px line
  const SHAPE = { circle: '<circle cx="15" cy="6" r="4"/>', diamond: '<path d="M15 1 20 6 15 11 10 6z"/>', square: '<rect x="11" y="2" width="8" height="8"/>' };
  const swatch = (color, r) => `<svg class="sw" width="30" height="12" viewBox="0 0 30 12" aria-hidden="true"><line x1="0" y1="6" x2="30" y2="6" stroke="${color}" ` +
    `stroke-width="2.5" stroke-dasharray="${r ? SVG_DASH[r.dash] || "" : ""}"/>${r ? `<g fill="${color}" stroke="#000">${SHAPE[r.symbol]}</g>` : ""}</svg>`;
  const firstOf = (k) => runs.filter((r, i) => runs.findIndex((s) => s[k] === r[k]) === i);
  const chip = (sw, text) => `<span class="chip">${sw}${esc(text)}</span>`, modes = firstOf("mode");
  const group = (head, chips) => `<span class="key-g"><span class="key-h">${head}</span>${chips.join("")}</span>`;
  document.getElementById("key").innerHTML = group("optimizer", firstOf("optimizer").map((r) => chip(swatch(r.color), r.optimizer))) +
    (modes.length > 1 ? group("sampling", modes.map((r) => chip(swatch("#666", r), narrow() ? r.modeLabel.replace(/ \(.*/, "") : r.modeLabel))) : "");
  document.querySelector(".toggles").innerHTML = runs.map((r, i) =>
    `<label><input type="checkbox" checked data-run="${i}">${swatch(r.color, r)}${esc(r.label)}</label>`).join("");

  // --- controls: play / pause at a speed, step ± 1, go to, slider, unit, run toggles
  let playing = false;
  const frame = () => new Promise((res) => requestAnimationFrame(() => res()));
  const speedSel = document.getElementById("speed"), goto = document.getElementById("goto");
  async function play() { // through the slider in the speed's seconds (positions a slow draw skips are skipped), or each in turn
    playing = true;
    playBtn.textContent = narrow() ? "❚❚" : "❚❚ pause";
    if (+slider.value >= N) { slider.value = 0; await draw(); }
    let p = +slider.value, last = performance.now();
    while (playing && p < N) {
      await frame();
      const now = performance.now(), secs = +speedSel.value;
      p = Math.min(N, secs ? p + ((now - last) * N) / (1000 * secs) : p + 1);
      last = now;
      if (playing && Math.floor(p) > +slider.value) { slider.value = Math.floor(p); await draw(); }
    }
    playing = false;
    playBtn.textContent = narrow() ? "▶" : "▶ play";
  }
  const moveTo = (v) => { playing = false; slider.value = Math.max(0, Math.min(N, Math.round(v))); return draw(); };
  playBtn.addEventListener("click", () => { if (playing) playing = false; else play(); });
  slider.addEventListener("input", () => { playing = false; draw(); });
  document.getElementById("back").addEventListener("click", () => moveTo(+slider.value - 1));
  document.getElementById("fwd").addEventListener("click", () => moveTo(+slider.value + 1));
  goto.addEventListener("change", () => goto.value !== "" && moveTo((+goto.value * N) / (unit === "epochs" ? maxEpochs : maxSteps)));
  const bar = document.getElementById("player"); // a figure scrolled to starts under the bar, not behind it
  new ResizeObserver(() => { document.documentElement.style.scrollPaddingTop = `${bar.offsetHeight}px`; }).observe(bar);
  if (narrow()) { unitSel.options[0].text = "epochs"; playBtn.textContent = "▶"; }
  const redo = () => send(moving(curves())); // the unit or the runs shown changed
  unitSel.addEventListener("change", () => { setUnit(unitSel.value); goto.placeholder = `go to ${unit === "epochs" ? "epoch" : "update"}`; redo(); });
  const boxes = [...document.querySelectorAll(".toggles input[type=checkbox]")];
  function applyToggles() {
    boxes.forEach((b) => { runs[+b.dataset.run].visible = b.checked; });
    return redo();
  }
  boxes.forEach((b) => b.addEventListener("change", applyToggles));
  document.querySelectorAll(".quick button").forEach((btn) => btn.addEventListener("click", () => {
    const m = btn.dataset.only;
    boxes.forEach((b) => { b.checked = m === "all" || runs[+b.dataset.run].mode === m; });
    applyToggles();
  }));

  // --- the learning-rate sweep: its figure as plotly_figs.sweep_spec built it, on the page's log axes
  async function drawSweep() {
    if (!D.sweep) return;
    const { data, layout } = D.sweep;  // log axes at decades, its loss axis linear without a minimum (plotly_figs.sweep_spec)
    if (narrow()) layout.title.text = "Final loss against lr";
    await newPlot("sweep", data, layout);
  }

  // --- what if: precomputed paths for a grid of lr (and β / β₂); its controls work at once (the address sets them,
  // see exercises), its figure is drawn in its turn by the function returned
  function whatif() {
    if (!D.whatif) return null;
    const optSel = document.getElementById("whatif-opt"), lrIn = document.getElementById("whatif-lr");
    const knobIn = document.getElementById("whatif-knob"), limit = document.getElementById("whatif-limit");
    D.whatif.forEach((wf, i) => optSel.add(new Option(wf.optimizer, i)));
    const cont = { type: "contour", x: G.w, y: G.b, z: G.logS, colorscale: "Viridis", ncontours: 30, showscale: false,
      hoverinfo: "skip", xaxis: "x", yaxis: "y" };
    const path = { type: "scatter", mode: "lines+markers", x: [], y: [], line: { color: "#d62728", width: 2 }, marker: { size: 3 },
      name: "path", xaxis: "x", yaxis: "y", hovertemplate: `step %{text}<br>${names[0]} = %{x:.4g}<br>${names[1]} = %{y:.4g}<extra></extra>`, text: [] };
    const exit = { type: "scatter", mode: "markers", x: [], y: [], marker: { symbol: [], size: 12, color: "#d62728", line: { width: 2, color: "#d62728" } },
      xaxis: "x", yaxis: "y", text: [], hovertemplate: "%{text}<extra></extra>", cliponaxis: false };
    const min = stars(16, { xaxis: "x", yaxis: "y", hoverinfo: "skip" });
    const curve = { type: "scatter", mode: "lines+markers", x: [], y: [], line: { color: "#d62728" }, marker: { size: 3 }, xaxis: "x2", yaxis: "y2",
      text: [], hovertemplate: "step %{x}<br>loss = %{text}<extra></extra>" };
    let div = null;
    const traces = [cont, path, exit, min, curve];
    const layout = { showlegend: false,
      grid: narrow() ? { rows: 2, columns: 1, pattern: "independent" } : { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: names[0] }, range: [wlo, whi], zeroline: false, constrain: "domain" },
      yaxis: { title: { text: names[1] }, range: [blo, bhi], zeroline: false, ...square }, xaxis2: { title: { text: "step" }, tickformat: "d", rangemode: "tozero" },
      yaxis2: D.lossMin === null ? { title: { text: "full-data loss" } }
        : { ...decades(D.whatifRange.map((v) => 10 ** v)), title: { text: `full-data ${D.lossTitle}` }, range: D.whatifRange } };
    function update() {
      const wf = D.whatif[+optSel.value], li = +lrIn.value, ki = wf.knob ? +knobIn.value : 0;
      const w = wf.w[li][ki], b = wf.b[li][ki], loss = wf.loss[li][ki], d = wf.diverged_at[li][ki];
      // the path in the box up to where it diverged: a stretch ends on the edge where it leaves (○) and starts again
      // where it comes back; a ✕ only for a run that diverged, at its last point drawn (its exit, if it ended outside)
      const pw = [], pb = [], pt = [], mw = [], mb = [], mt = [], put = (p, t) => { pw.push(p[0]); pb.push(p[1]); pt.push(t); };
      for (let i = 0; i < w.length && fin(w[i]) && fin(b[i]) && (d < 0 || i <= d); i++) {
        const now = inside(w[i], b[i]), e = i && now !== inside(w[i - 1], b[i - 1]) &&
          (now ? edgePoint(w[i], b[i], w[i - 1], b[i - 1]) : edgePoint(w[i - 1], b[i - 1], w[i], b[i]));
        if (e) put(e, `${i - 1}–${i}, on the edge`);
        if (e && !now) { put([null, null], null); mw.push(e[0]); mb.push(e[1]); mt.push(`left the view at step ${i}`); }
        if (now) put([w[i], b[i]], i);
      }
      const ms = mw.map(() => "circle-open");
      if (d >= 0 && pw.at(-1) !== null) { mw.push(pw.at(-1)); mb.push(pb.at(-1)); ms.push("x"); }
      if (d >= 0) { ms[ms.length - 1] = "x"; mt[ms.length - 1] = `diverged at step ${d}`; }
      let n = 0;
      while (n < loss.length && drawn(excess(loss[n])) && (d < 0 || n <= d)) n++;
      const cy = loss.slice(0, n).map(excess), e = d >= 0 ? n - 1 : -1;
      if (e >= 0 && D.whatifRange) cy[e] = Math.min(cy[e], 10 ** (D.whatifRange[1] - 0.3));  // its ✕ on the axis (the hover gives the loss)
      const upd = { x: [pw, mw, [...Array(n).keys()]], y: [pb, mb, cy], text: [pt, mt, loss.slice(0, n).map((v) => fmt(v))],
        "marker.symbol": [undefined, ms, cy.map((_, i) => (i === e ? "x" : "circle"))],
        "marker.size": [undefined, undefined, cy.map((_, i) => (i === e ? 14 : 3))] };
      if (div) P.restyle(div, upd, [1, 2, 4]); else [1, 2, 4].forEach((ti, j) => { for (const k in upd) if (upd[k][j] !== undefined) setPath(traces[ti], k, upd[k][j]); });
      document.getElementById("whatif-lr-value").textContent = `lr = ${fmt(wf.lrs[li], 3)}`;
      const kl = document.getElementById("whatif-knob-label");
      kl.hidden = !wf.knob;
      if (wf.knob) {
        document.getElementById("whatif-knob-name").textContent = wf.knob;
        document.getElementById("whatif-knob-value").textContent = `${wf.knob} = ${fmt(wf.values[ki], 3)}`;
      }
      const lim = wf.limit[ki], at = wf.limit_at[ki];  // at: the limit among the stops (page.css puts stop i under the thumb)
      limit.hidden = at == null;
      limit.style.setProperty("--at", at / (wf.lrs.length - 1));
      limit.title = `stability limit lr = ${fmt(lim)}`;
      const state = d >= 0 ? `diverged at step ${d}` : `final loss ${fmt(loss[loss.length - 1])} after ${loss.length - 1} steps`;
      document.getElementById("whatif-state").textContent = `${wf.optimizer}, lr = ${fmt(wf.lrs[li], 3)}` +
        (wf.knob ? `, ${wf.knob} = ${fmt(wf.values[ki], 3)}` : "") + `: ${state}` +
        (lim ? `; the theory's limit is lr = ${fmt(lim)}` : "");
    }
    function setOpt() {
      const wf = D.whatif[+optSel.value];
      lrIn.min = 0; lrIn.max = wf.lrs.length - 1; lrIn.step = 1;
      // start at a third of the stability limit, else at the optimizer's own full-batch lr (the runs table's)
      const own = runs.find((r) => r.optimizer === wf.optimizer && r.mode === "full");
      const target = wf.limit[wf.default] ? wf.limit[wf.default] / 3 : own && typeof own.lr === "number" ? own.lr : 0.05;
      let best = 0;
      wf.lrs.forEach((v, i) => { if (Math.abs(Math.log(v / target)) < Math.abs(Math.log(wf.lrs[best] / target))) best = i; });
      lrIn.value = best;
      knobIn.min = 0; knobIn.max = Math.max(0, wf.values.length - 1); knobIn.step = 1; knobIn.value = wf.default;
      update();
    }
    optSel.addEventListener("change", setOpt);
    lrIn.addEventListener("input", update);
    knobIn.addEventListener("input", update);
    setOpt();
    return async () => { div = await newPlot("whatif", traces, layout); };
  }

  // --- phase diagram (heavy-ball momentum, lr × β)
  async function drawPhase() {
    if (!D.phase) return;
    const ph = D.phase;
    // a loss of exactly 0 (reached in float64) is drawn at 1e-30, as in the sweep; null (grey) only for diverged runs
    // no minimum (D.lossMin null): sign(loss)·log10(1 + |loss|), as the sweep's axis (plots.common.symlog)
    const lin = D.lossMin === null, what = lin ? "sign·log10(1 + |final loss|)" : `log10 final ${D.lossTitle}`;
    const z = ph.betas.map((_, k) => ph.lrs.map((_, l) => { const v = ph.final_loss[l][k];
      return ph.diverged_at[l][k] >= 0 || !fin(v) ? null : lin ? Math.sign(v) * Math.log10(1 + Math.abs(v)) : Math.log10(Math.max(excess(v), 1e-30)); }));
    const tr = [{ type: "heatmap", x: ph.lrs, y: ph.betas, z, colorscale: "Viridis", colorbar: { title: { text: what, ...(narrow() ? { side: "right" } : {}) }, thickness: 14 },
      hovertemplate: `lr = %{x:.3g}<br>β = %{y:.2f}<br>${what} = %{z:.3g}<extra></extra>` }];
    if (ph.boundary) {
      const keep = ph.boundary.map((v, k) => [v, ph.betas[k]]).filter(([v]) => v && v >= ph.lrs[0] && v <= ph.lrs[ph.lrs.length - 1]);
      tr.push({ type: "scatter", mode: "lines", x: keep.map((p) => p[0]), y: keep.map((p) => p[1]), name: "theory: lr = 2(1+β)/((1−β)λmax)",
        line: { color: "black", width: 3 } });
    }
    if (ph.polyak) tr.push({ type: "scatter", mode: "markers", x: [ph.polyak[0]], y: [ph.polyak[1]], name: "Polyak's optimum",
      marker: { symbol: "x", size: 14, color: "white", line: { color: "black", width: 1 } },
      hovertemplate: `Polyak's optimum: lr = ${fmt(ph.polyak[0])}, β = ${fmt(ph.polyak[1])}<extra></extra>` });
    // the axes end at the outer cells' edges: no padding, which the grey background would draw as diverged runs
    const edges = (v) => [v[0] - (v[1] - v[0]) / 2, v[v.length - 1] + (v[v.length - 1] - v[v.length - 2]) / 2];
    await newPlot("phase", tr, { title: { text: `${narrow() ? "Heavy ball" : "Final loss of heavy-ball momentum"}, ${ph.steps} steps (grey: diverged)` }, plot_bgcolor: "#bbb",
      xaxis: { ...decades(ph.lrs), title: { text: "learning rate" }, range: edges(ph.lrs.map(Math.log10)) },
      yaxis: { title: { text: "β" }, zeroline: false, range: edges(ph.betas) }, legend: { orientation: "h", y: -0.2 } });
  }

  // --- the seed cloud
  // every run here is gd: colours (and dashes, as in the paths) tell the sampling modes apart, in hues no optimizer uses
  const MODE_COLORS = { sgd: "#6a3d9a", minibatch: "#b8860b" }, MODE_DASH = { sgd: "dot", minibatch: "dash" };
  async function drawCloud() {
    if (!D.cloud) return;
    const tr = [{ type: "contour", x: G.w, y: G.b, z: G.logS, colorscale: "Greys", reversescale: true, showscale: false, ncontours: 30,
      opacity: 0.5, hoverinfo: "skip" }];
    // only the runs that stayed sane: a diverged run's 1e300 would stretch the axes (and SVG cannot draw it)
    const sane = (c) => c.w.map((_, i) => i).filter((i) => !c.diverged[i] && fin(c.w[i]) && fin(c.b[i]));
    for (const [name, c] of Object.entries(D.cloud)) {
      const ok = sane(c), lost = c.w.length - ok.length;
      tr.push({ type: "scatter", mode: "markers", x: ok.map((i) => c.w[i]), y: ok.map((i) => c.b[i]),
        name: `${c.label}: lr ${fmt(c.lr)}, ${c.epochs} epochs` + (lost ? ` (${lost} of ${c.w.length} diverged, not drawn)` : ""),
        marker: { size: 4, opacity: 0.5, color: MODE_COLORS[name] || "#333" }, hovertemplate: `${name}<br>%{x:.4g}, %{y:.4g}<extra></extra>` });
    }
    const full = runs.find((r) => r.optimizer === "gd" && r.mode === "full");
    if (full) tr.push({ type: "scatter", mode: "lines+markers", x: full.w.slice(0, full.kept), y: full.b.slice(0, full.kept),
      name: "gd · full batch path", line: { color: "#d62728", width: 2 }, marker: { size: 3 } });
    tr.push(stars(16, { name: "minimum" }));
    const ws = Object.values(D.cloud).flatMap((c) => sane(c).map((i) => c.w[i])), around = (k, lo, hi) => { // the sane ends and the minima
      const v = [...Object.values(D.cloud).flatMap((c) => sane(c).map((i) => c[k][i])), ...D.minima.map((m) => m[+(k === "b")])];
      const a = Math.min(...v), z = Math.max(...v), d = Math.max(z - a, 0.02 * (hi - lo)); return ws.length ? [a - 0.1 * d, z + 0.1 * d] : [lo, hi]; };
    const xr = around("w", wlo, whi), yr = around("b", blo, bhi);
    const none = ws.length ? [] : [{ text: "every run diverged at this learning rate", xref: "paper", yref: "paper", x: 0.5, y: 0.9,
      showarrow: false, bgcolor: "rgba(255,255,255,0.85)" }];
    await newPlot("cloud", tr, { title: { text: narrow() ? "1,000 seeds of gd" : "Final points of 1,000 seeds of gd (colour: sampling mode)" },
      legend: { orientation: "h", y: narrow() ? -0.35 : -0.2 }, annotations: none,
      xaxis: { title: { text: names[0] }, range: xr, zeroline: false }, yaxis: { title: { text: names[1] }, range: yr, zeroline: false } });
    const sp = Object.entries(D.cloud).map(([name, c]) => ({ type: "scatter", mode: "lines+markers", x: c.spread_lrs, y: c.spread,
      name: c.label, line: { color: MODE_COLORS[name] || "#333", dash: MODE_DASH[name] || "solid" },
      hovertemplate: "lr = %{x:.3g}<br>spread = %{y:.3g}<extra></extra>" }));
    const lostNote = (trs) => (trs.flatMap((t) => t.y).every((v) => v === null || !fin(v)) ? [{ text: "every run diverged: no spread to draw",
      xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, bgcolor: "rgba(255,255,255,0.85)" }] : []);
    await newPlot("spread", sp, { title: { text: "Spread of the final point" }, legend: { orientation: "h", y: -0.2 },
      annotations: lostNote(sp),
      xaxis: { ...decades(sp.map((t) => t.x)), title: { text: "learning rate" } },
      yaxis: { ...decades(sp.map((t) => t.y)), title: { text: "RMS distance to the cloud's centre" } } });
    if (!document.getElementById("spread-batch")) return;
    const how = (c) => (c.batch_size === 1 ? "drawn with replacement (as SGD)" : "shuffled (as minibatch)");
    const sb = Object.entries(D.cloud).map(([name, c]) => ({ type: "scatter", mode: "lines+markers", x: c.spread_batches, y: c.spread_by_batch,
      name: `${how(c)}, lr ${fmt(c.lr)}, ${c.epochs} epochs`, line: { color: MODE_COLORS[name] || "#333", dash: MODE_DASH[name] || "solid" },
      hovertemplate: "batch size %{x}<br>spread = %{y:.3g}<extra></extra>" }));
    const ticks = Object.values(D.cloud)[0].spread_batches;
    await newPlot("spread-batch", sb, { title: { text: "Spread of the final point against the batch size" }, legend: { orientation: "h", y: -0.2 },
      annotations: lostNote(sb),
      xaxis: { type: "log", tickvals: ticks, ticktext: ticks.map(String), title: { text: "batch size" } },
      yaxis: { ...decades(sb.map((t) => t.y)), title: { text: "RMS distance to the cloud's centre" } } });
  }

  // --- phase diagram (SGD, lr × batch size)
  async function drawBatchPhase() {
    if (!D.batchPhase) return;
    const ph = D.batchPhase, s0 = Math.max(excess(ph.start_loss), 1e-300);
    // colour: log10(final loss / starting loss), white at 0 (blue: fell, clipped at −8 decades; red: grew, up to the
    // divergence rule's 10⁶); null (grey) only for runs the divergence rule stopped — a row of few steps grows without
    // reaching it
    const LO = -8, HI = 6;
    const rel = (l, k) => Math.max(LO, Math.min(HI, Math.log10(Math.max(excess(ph.final_loss[l][k]), 1e-300) / s0)));
    const z = ph.batch_sizes.map((_, k) => ph.lrs.map((_, l) => (ph.diverged_at[l][k] >= 0 || !fin(ph.final_loss[l][k]) ? null : rel(l, k))));
    const info = ph.batch_sizes.map((_, k) => ph.lrs.map((_, l) => [ph.steps[l][k], fmt(ph.final_loss[l][k], 3)]));
    // plotly's own "RdBu" is grey (190) in the middle: a loss that barely moved would look like a diverged run
    const tr = [{ type: "heatmap", x: ph.lrs, y: ph.batch_sizes, z, customdata: info, colorscale: diverging(LO, HI),
      zmin: LO, zmax: HI, colorbar: { title: { text: D.lossMin ? "log10 of (loss − min), final / start" : "log10(final / start loss)" }, thickness: 14 },
      hovertemplate: "lr = %{x:.3g}, batch size %{y}: %{customdata[0]} steps<br>final loss %{customdata[1]} (log10 ratio %{z:.2f})<extra></extra>" }];
    const lo = ph.lrs[0], hi = ph.lrs[ph.lrs.length - 1], bs = ph.batch_sizes, K = bs.length, top = bs[K - 1];
    // rows' edges: halfway between sizes; log-spaced sizes (not every 1 … m) on a log axis
    const logY = top > K, y0 = bs[0] - 0.5, y1 = K > 1 ? top + (top - bs[K - 2]) / 2 : top + 0.5, mid = K > 1 ? (top + bs[K - 2]) / 2 : y0;
    const notes = [];
    if (ph.limit && ph.limit >= lo && ph.limit <= hi) {
      tr.push({ type: "scatter", mode: "lines", x: [ph.limit, ph.limit], y: [mid, y1], showlegend: false, hoverinfo: "skip",
        line: { color: "black", width: 4 } }, { type: "scatter", mode: "lines", x: [ph.limit, ph.limit], y: [y0, mid],
        showlegend: false, hoverinfo: "skip", line: { color: "black", width: 2, dash: "dash" } });
      notes.push({ x: Math.log10(ph.limit), y: 1, yref: "paper", yanchor: "bottom", xanchor: "center", showarrow: false,
        text: `2/λmax = ${fmt(ph.limit, 3)} (full batch)`, font: { size: 12 } });
    }
    for (const [name, c] of Object.entries(D.cloud || {})) { // where the page's SGD and minibatch runs sit
      if (c.lr < lo || c.lr > hi) continue;
      tr.push({ type: "scatter", mode: "markers", x: [c.lr], y: [c.batch_size], name: `${c.label}'s preset: lr ${fmt(c.lr)}`,
        marker: { symbol: "circle-open", size: 14, color: MODE_COLORS[name] || "#333", line: { width: 3 } }, cliponaxis: false,
        hovertemplate: `${c.label}: lr ${fmt(c.lr)}, batch size ${c.batch_size}<extra></extra>` });
    }
    const ep = `${ph.epochs} epoch${ph.epochs === 1 ? "" : "s"}`;
    await newPlot("batch-phase", tr, { title: { text: narrow() ? `gd, ${ep} (grey: diverged)` : `gd on shuffled minibatches, ${ep} each (grey: diverged)` }, plot_bgcolor: "#bbb",
      xaxis: { ...decades(lo, hi), title: { text: "learning rate" }, range: [Math.log10(lo), Math.log10(hi)] },
      yaxis: { title: { text: "batch size" }, zeroline: false, ...(logY ? { type: "log", range: [Math.log10(y0), Math.log10(y1)] } : { range: [y0, y1] }) },
      annotations: notes,
      margin: { t: 60, r: 10, l: 60, b: 50 },
      legend: { orientation: "h", y: -0.2 } });
  }

  // --- basins of attraction
  async function drawBasins() {
    if (!D.basins) return;
    const B = D.basins, sel = document.getElementById("basins-opt");
    const k = B.minima.length;
    // a palette no optimizer uses (Set3-like pastels), so a basin is not read as an optimizer's colour
    const palette = ["#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5", "#ffffb3"];
    // z: −2 diverged, −1 none, 0..k−1 the minimum; a discrete colour scale over [−2, k−1]
    const colors = ["#000000", "#bbbbbb", ...B.minima.map((_, i) => palette[i % palette.length])];
    const scale = [];
    colors.forEach((c, i) => { scale.push([i / colors.length, c], [(i + 1) / colors.length, c]); });
    Object.keys(B.labels).forEach((o) => sel.add(new Option(o, o)));
    const txt = (v) => (v === -2 ? "diverged" : v === -1 ? "no minimum" : `minimum ${v + 1}: (${fmt(B.minima[v][0])}, ${fmt(B.minima[v][1])})`);
    const T = (M, f = (v) => v) => B.b.map((_, j) => B.w.map((_, i) => f(M[i][j])));  // [i_w][j_b] -> plotly's z[j][i]
    const zOf = (o) => T(B.labels[o]), nOf = (o) => T(B.steps[o]), sOf = (o) => T(B.steps[o], (v) => (v >= 0 ? Math.log10(v + 1) : null));
    const hm = { type: "heatmap", x: B.w, y: B.b, z: zOf(sel.value), zmin: -2.5, zmax: k - 0.5, colorscale: scale, showscale: false,
      text: zOf(sel.value).map((row) => row.map(txt)), hovertemplate: `start ${names[0]} = %{x:.3g}, ${names[1]} = %{y:.3g}<br>%{text}<extra></extra>` };
    const mins = { type: "scatter", mode: "markers+text", x: B.minima.map((m) => m[0]), y: B.minima.map((m) => m[1]),
      text: B.minima.map((_, i) => `${i + 1}`), textposition: "top center", marker: { symbol: "star", size: 18, color: "white", line: { color: "black", width: 1.5 } }, hoverinfo: "skip" };
    const axes = { xaxis: { title: { text: `start ${names[0]}` }, constrain: "domain" },
      yaxis: { title: { text: `start ${names[1]}` }, scaleanchor: "x", constrain: "domain" },  // both maps in one box: the key under
      margin: { t: 40, l: 60, r: 90, b: narrow() ? 150 : 110, autoexpand: false } };  // the left, the colour bar right of the other
    const key = [...B.minima.map((m, i) => [`${i + 1}: (${fmt(m[0], 3)}, ${fmt(m[1], 3)})`, colors[i + 2]]), ["none", colors[1]], ["diverged", colors[0]]]
      .map(([name, color]) => ({ type: "scatter", mode: "markers", x: [null], y: [null], name, marker: { symbol: "square", size: 12, color },
        hoverinfo: "skip" }));
    const bottom = { orientation: "h", y: narrow() ? -0.35 : -0.14, x: 0.5, xanchor: "center" };
    const div = await newPlot("basins", [hm, { ...mins, showlegend: false }, ...key], { title: { text: "Which minimum each start reaches" }, showlegend: true,
      legend: bottom, ...axes });
    // steps to come within the tolerance of a minimum, on one log scale for every optimizer; null (grey) for never
    let most = 1; // a loop, not Math.max(...): 201² values per optimizer are too many arguments
    for (const S of Object.values(B.steps)) for (const row of S) for (const v of row) if (v > most) most = v;
    const ticks = [0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000].filter((v) => v <= most);
    const st = { type: "heatmap", x: B.w, y: B.b, z: sOf(sel.value), customdata: nOf(sel.value), colorscale: "Viridis", zmin: 0,
      zmax: Math.log10(most + 1), colorbar: { title: { text: "steps" }, thickness: 14, tickvals: ticks.map((v) => Math.log10(v + 1)), ticktext: ticks.map(String) },
      hovertemplate: `start ${names[0]} = %{x:.3g}, ${names[1]} = %{y:.3g}<br>%{customdata} steps to its minimum<extra></extra>` };
    const div2 = await newPlot("basins-steps", [st, { ...mins, textfont: { color: "white" } }], { title: { text: "Steps taken to reach it (dark: fast)" },
      showlegend: false, plot_bgcolor: "#bbb", ...axes });
    sel.addEventListener("change", () => {
      const z = zOf(sel.value);
      P.restyle(div, { z: [z], text: [z.map((row) => row.map(txt))] }, [0]);
      P.restyle(div2, { z: [sOf(sel.value)], customdata: [nOf(sel.value)] }, [0]);
    });
  }

  // --- exercises for class (issue 22): the cards' readouts (D.exercise, jaxgd.explore.exercises) for the what-if's
  // setting and a batch size, and the page's state in the address's hash, #opt=gd&lr=0.08698&beta=0.9&batch=4&step=1000&card=a
  // (beta: the what-if's second slider; step: the player's slider), read at load and on hashchange, written
  // (replaceState) when a control moves. A missing, unknown or malformed value leaves that part at its default.
  function exercises() {
    const E = D.exercise, $ = (id) => document.getElementById(id);
    if (!E || !$("exercises") || !D.whatif) return;
    const optSel = $("whatif-opt"), lrIn = $("whatif-lr"), knobIn = $("whatif-knob"), bs = $("ex-batch-size");
    const fire = (el, type) => el.dispatchEvent(new Event(type)), int = (v) => (v >= 0 ? `${v}` : "—");
    const put = (row, vals) => Object.entries(vals).forEach(([k, v]) => { row.querySelector(`[data-k=${k}]`).textContent = v; });
    const cards = [...document.querySelectorAll("#exercises .card")].map((c) => c.id.slice(5));
    if (bs) E.batch.sizes.forEach((s) => bs.add(new Option(s, s)));
    const def = { opt: optSel.value, step: slider.value };
    let card = "", applying = false;
    function readout() {
      const o = +optSel.value, wf = D.whatif[o], R = E.readouts[o], i = +lrIn.value, k = wf.knob ? +knobIn.value : 0;
      put($("ex-path"), { setting: `${wf.optimizer}, lr ${fmt(wf.lrs[i])}` + (wf.knob ? `, ${wf.knob} ${fmt(wf.values[k])}` : ""),
        steps: int(R.steps[i][k]), loss: fmt(R.loss[i][k]), w: fmt(R.w[i][k]), b: fmt(R.b[i][k]), diverged: int(R.diverged_at[i][k]) });
      if (bs) E.batch.rows.forEach((r, m) => { const j = bs.selectedIndex;
        put($(`ex-batch-${m}`), { spread: fmt(r.spread[j]), loss: fmt(r.loss[j]), w: fmt(r.w[j]), b: fmt(r.b[j]), diverged: `${r.diverged[j]} of ${r.seeds}` }); });
      document.querySelectorAll("#exercises .card").forEach((c) => c.classList.toggle("current", c.id === `card-${card}`));
    }
    function write() {
      readout();
      if (applying) return;
      const wf = D.whatif[+optSel.value], q = new URLSearchParams({ opt: wf.optimizer, lr: fmt(wf.lrs[+lrIn.value]) });
      if (wf.knob) q.set("beta", fmt(wf.values[+knobIn.value]));
      if (bs) q.set("batch", bs.value);
      q.set("step", slider.value);
      if (card) q.set("card", card);
      history.replaceState(null, "", `#${q}`);
      $("ex-link").href = `#${q}`;
    }
    function apply() {
      const q = new URLSearchParams(location.hash.slice(1)), num = (k) => (/^\s*[-+.\deE]+\s*$/.test(q.get(k) || "") ? +q.get(k) : NaN);
      const near = (vals, v, ok) => { const i = vals.reduce((a, x, j) => (Math.abs(x - v) < Math.abs(vals[a] - v) ? j : a), 0); return ok(vals[i]) ? i : -1; };
      applying = true;
      const o = D.whatif.findIndex((w) => w.optimizer === q.get("opt"));
      optSel.value = o >= 0 ? o : def.opt;
      fire(optSel, "change"); // the what-if's own: that optimizer's default lr and β
      const wf = D.whatif[+optSel.value], lr = num("lr"), beta = num("beta"), b = num("batch"), s = num("step");
      const li = lr > 0 ? near(wf.lrs.map(Math.log), Math.log(lr), (x) => Math.abs(x - Math.log(lr)) < 0.2) : -1;
      const ki = wf.knob && isFinite(beta) ? near(wf.values, beta, (x) => Math.abs(x - beta) < 1e-4) : -1;
      if (li >= 0) lrIn.value = li;
      if (ki >= 0) knobIn.value = ki;
      fire(lrIn, "input");
      if (bs) bs.value = E.batch.sizes.includes(b) ? b : E.batch.sizes[0];
      const pos = `${Number.isInteger(s) && s >= 0 && s <= +slider.max ? s : def.step}`, moved = pos !== slider.value;
      slider.value = pos;
      card = cards.includes(q.get("card")) ? q.get("card") : "";
      applying = false;
      readout();
      $("ex-link").href = location.hash || "#";
      if (card) $(`card-${card}`).scrollIntoView({ block: "start" });
      return moved ? draw() : null;
    }
    [optSel, knobIn, lrIn, bs, slider].forEach((el) => el && el.addEventListener(el.tagName === "SELECT" ? "change" : "input", write));
    ["play", "back", "fwd"].forEach((id) => $(id).addEventListener("click", write));  // after the player's own: the new position
    $("goto").addEventListener("change", write);
    document.querySelectorAll("#exercises button[data-hash]").forEach((btn) => btn.addEventListener("click", async () => {
      history.replaceState(null, "", `#${btn.dataset.hash}`);
      await apply();
      write();
    }));
    window.addEventListener("hashchange", apply);
    return location.hash.length > 1 ? apply() : readout();
  }

  setUnit("epochs");
  slider.value = N;
  drawStatic();
  const drawWhatif = whatif();
  window.jaxgd = { draw, setPosition: (v) => { slider.value = v; return draw(); }, get playing() { return playing; } };
  window.jaxgdTimes = times;
  await exercises(); // the address's view (the what-if's controls, the player's position) before any figure is drawn
  // the figures in the window first, then the others in page order, one at a time (the player works meanwhile)
  const jobs = [...Object.keys(specs).map((id) => [id, () => plot(id)]), ["sweep", drawSweep], ["whatif", drawWhatif], ["phase", drawPhase],
    ["cloud", drawCloud], ["batch-phase", drawBatchPhase], ["basins", drawBasins]]
    .map(([id, fn]) => ({ el: document.getElementById(id), fn })).filter((j) => j.el && j.fn)
    .sort((a, b) => a.el.getBoundingClientRect().top - b.el.getBoundingClientRect().top);
  const inView = (j) => { const r = j.el.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; };
  const first = new Set(jobs.filter(inView));
  for (let j; (j = jobs.find(inView) || jobs[0]); await new Promise((res) => setTimeout(res))) { // input and scrolling between figures
    if (!first.size && !times.firstScreen) times.firstScreen = performance.now() - t0;
    jobs.splice(jobs.indexOf(j), 1);
    await j.fn();
    first.delete(j);
  }
  times.drawn = performance.now() - t0;
  times.firstScreen = times.firstScreen || times.drawn;
});