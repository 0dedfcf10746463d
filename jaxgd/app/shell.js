// jaxgd pages (see jaxgd/app/shell.py): nothing is fetched. The numbers (one JSON object) and plotly.js are
// inlined gzip + base64; jaxgdPage unpacks both with DecompressionStream, loads plotly.js, then awaits
// draw(D, Plotly, times, t0). When it is done, #loading empties and body[data-ready] is "1".
"use strict";
function jaxgdPage(draw) {
  (async function () {
    const t0 = performance.now();
    async function gunzip(id) { // base64 decoded natively by a data: URL (nothing leaves the page)
      const b64 = document.getElementById(id).textContent.trim();
      const res = await fetch("data:application/gzip;base64," + b64);
      return await new Response(res.body.pipeThrough(new DecompressionStream("gzip"))).text();
    }
    const [D, plotlySource] = await Promise.all([gunzip("jaxgd-data").then(JSON.parse), gunzip("plotly-gz")]);
    const tUnzip = performance.now() - t0;
    const tag = document.createElement("script");
    tag.textContent = plotlySource;
    document.head.appendChild(tag);
    await draw(D, window.Plotly, { unzipped: tUnzip, unpacked: performance.now() - t0 }, t0);
    document.getElementById("loading").textContent = "";
    window.jaxgdDrawMs = performance.now() - t0;
    document.body.dataset.ready = "1";
  })().catch((e) => {
    const el = document.getElementById("loading");
    if (el) el.textContent = "This page could not draw its figures: " + e;
    throw e;
  });
}
