"""What every page of the app needs: the numbers as compact JSON, the packer, plotly.js packed,
and the page around them (``page.html``, ``page.css``, ``shell.js``).

A page is self-contained and offline: its numbers (one JSON object) and plotly.js are stored
gzip-compressed and base64-encoded, unpacked by the browser's ``DecompressionStream`` (Chromium
80+, Firefox 113+, Safari 16.4+) in ``shell.js``, which then hands them to the page's own script.
plotly.js alone is 4.8 MB; packed, 2.0 MB. The page's numbers go through the app's one JSON
encoder, :func:`jaxgd.app.files.dumps`, compact at :data:`SIG` significant digits; paths are
thinned by the one rule, :func:`jaxgd.planes.evenly`.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
from importlib import resources
from pathlib import Path
from string import Template

from jaxgd.app import program_cache
from jaxgd.app.files import dumps

SIG = 6  # significant digits of the numbers on a page


def pack(text: str) -> str:
    """``text`` gzip-compressed (no timestamp: the same text packs the same) and base64-encoded."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=4, mtime=0)).decode("ascii")


_PACKED: dict = {}  # plotly.js packed, once per process


def plotly_packed(pack_dir: str | os.PathLike | None = None) -> str:
    """plotly.js (the plotly package's own bundle), packed: once per process, and kept across
    processes in the folder ``pack_dir`` (as ``plotly-<version>-<size of the bundle>.b64``, an entry
    of :func:`jaxgd.app.program_cache.write_entry`) when one is given (the ``jaxgd`` command gives its
    cache's). A pack that is not the user's own, of another plotly, garbage or truncated is packed
    anew and replaced; a folder that cannot be written is skipped."""
    if "js" in _PACKED:
        return _PACKED["js"]
    import plotly  # the app's optional dependency: only a page needs it

    bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    path = header = None
    if pack_dir is not None and bundle.exists():
        name = f"plotly-{plotly.__version__}-{bundle.stat().st_size}"
        path, header = Path(pack_dir) / f"{name}.b64", f"jaxgd-page-pack 1 {name}"
        if kept := program_cache.read_entry(path, header):
            _PACKED["js"] = kept.decode("ascii")
            return _PACKED["js"]
    from plotly.offline import get_plotlyjs

    packed = _PACKED["js"] = pack(get_plotlyjs())
    if path is not None:
        program_cache.write_entry(path, header, packed.encode("ascii"))
    return packed


def asset(name: str) -> str:
    """A file of the page kept beside this module (``page.css``, ``page.js``, ``report.html``, ...)."""
    return resources.files("jaxgd.app").joinpath(name).read_text(encoding="utf-8")


def fill(name: str, block: str = "", /, **values) -> str:
    """A template of the file ``name`` (:func:`asset`) with its ``$names`` replaced by ``values``:
    the file's text up to its first ``<!-- block NAME -->`` line (``block`` ""), or the text
    after that line up to the next (``block`` NAME)."""
    parts = re.split(r"^<!-- block ([\w-]+) -->\n", asset(name), flags=re.M)
    blocks = {"": parts[0], **dict(zip(parts[1::2], parts[2::2]))}
    return Template(blocks[block].rstrip("\n")).substitute(values)


def html_page(title: str, body: str, data: dict, script: str, pack_dir=None) -> str:
    """A whole page: ``body`` (HTML) under ``title`` with the app's style, ``data`` packed
    (:func:`jaxgd.app.files.dumps` at :data:`SIG` digits, :func:`pack`) and plotly.js
    (:func:`plotly_packed`, kept in ``pack_dir``); ``script`` draws it once ``shell.js`` has
    unpacked both (``jaxgdPage(async (D, P) => ...)``)."""
    return fill("page.html", title=title, css=asset("page.css"), body=body, data=pack(dumps(data, digits=SIG)),
                plotly=plotly_packed(pack_dir), script=asset("shell.js") + script) + "\n"


FIGURES_JS = """jaxgdPage(async (D, P) => {  // each figure as plotly.py built it
  for (const [id, fig] of Object.entries(D.figures))
    await P.newPlot(id, fig.data, fig.layout, { displaylogo: false, responsive: true });
});
"""


def figures_page(title: str, body: str, figures: dict, pack_dir=None) -> str:
    """A page of plotly figures: ``figures`` maps the id of a ``<div>`` in ``body`` to the
    ``plotly.graph_objects.Figure`` drawn in it, packed as plotly's JSON (on plotly.js's own
    look, as the report's figures, rather than plotly.py's default template); plotly.js kept in
    ``pack_dir`` (:func:`plotly_packed`)."""
    specs = {}
    for k, fig in figures.items():
        specs[k] = fig.to_plotly_json()
        layout = specs[k]["layout"]
        layout.pop("template", None)
        if isinstance(layout.get("title"), dict):  # titles at the left, as plotly.py's look put them
            layout["title"].setdefault("x", 0.05)
    return html_page(title, body, {"figures": specs}, FIGURES_JS, pack_dir)
