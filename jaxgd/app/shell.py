"""What every page of the app needs: the numbers as compact JSON, the packer, the one thinning
rule, plotly.js packed, and the page around them (``page.html``, ``page.css``, ``shell.js``).

A page is self-contained and offline: its numbers (one JSON object) and plotly.js are stored
gzip-compressed and base64-encoded, unpacked by the browser's ``DecompressionStream`` (Chromium
80+, Firefox 113+, Safari 16.4+) in ``shell.js``, which then hands them to the page's own script.
plotly.js alone is 4.8 MB; packed, 2.0 MB. The JSON files the app writes go through
:func:`jaxgd.app.files.dumps` (exact numbers, strict); the page's numbers through :func:`to_json`
(the same rules, compact, at :data:`SIG` significant digits).
"""

from __future__ import annotations

import base64
import gzip
import math
import re
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from jaxgd.app.files import dumps, write_text_atomic

SIG = 6  # significant digits of the numbers on a page


def thin(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``range(n)``, evenly spaced, the first and last included (all
    of them when ``n <= most``)."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def _num(x) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "null"
    return f"{x:.{SIG}g}"  # "1e+300", "0.1", "3": all valid JSON


_NON_FINITE = {"nan": "null", "inf": "null", "-inf": "null"}


def _floats(a: np.ndarray) -> str:
    """A 1-D float array as comma-separated :func:`_num` strings (one C-level format call)."""
    values = a.astype(np.float64).tolist()
    text = (f"%.{SIG}g," * len(values) % tuple(values))[:-1]
    if not np.isfinite(a).all():
        text = ",".join(_NON_FINITE.get(v, v) for v in text.split(","))
    return text


def to_json(obj) -> str:
    """Compact JSON with every float at :data:`SIG` significant digits and non-finite numbers as null."""
    if isinstance(obj, dict):
        return "{" + ",".join(f"{dumps(str(k))}:{to_json(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in obj) + "]"
    if isinstance(obj, np.ndarray):
        if obj.dtype == bool:
            return to_json(obj.astype(np.int8))
        if obj.ndim > 1:
            return "[" + ",".join(to_json(a) for a in obj) + "]"
        if obj.dtype.kind in "iu":
            return "[" + ",".join(map(str, obj.tolist())) + "]"
        return "[" + _floats(obj) + "]"
    if isinstance(obj, (bool, np.bool_)):
        return "true" if obj else "false"
    if obj is None or isinstance(obj, str):
        return dumps(obj)
    if isinstance(obj, (int, np.integer)):
        return str(int(obj))
    if isinstance(obj, (float, np.floating)):
        return _num(obj)
    raise TypeError(f"cannot write {type(obj)} to the page")


def pack(text: str) -> str:
    """``text`` gzip-compressed (no timestamp: the same text packs the same) and base64-encoded."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=4, mtime=0)).decode("ascii")


_PLOTLY_CACHE: dict = {}
PACK_DIR = None  # a folder for the packed plotly.js across processes (the jaxgd command sets it), or None


def plotly_packed() -> str:
    """plotly.js (the plotly package's own bundle), packed: once per process, and kept in
    :data:`PACK_DIR` (as ``plotly-<version>-<size of the bundle>.b64``) when it is set."""
    if "js" in _PLOTLY_CACHE:
        return _PLOTLY_CACHE["js"]
    import plotly  # the app's optional dependency: only a page needs it

    path = None
    if PACK_DIR is not None:
        bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        size = bundle.stat().st_size if bundle.exists() else 0
        path = Path(PACK_DIR) / f"plotly-{plotly.__version__}-{size}.b64"
        try:
            packed = path.read_text("ascii")
            if packed and size:  # a packed file from this bundle
                _PLOTLY_CACHE["js"] = packed
                return packed
        except (OSError, ValueError):
            pass
    from plotly.offline import get_plotlyjs

    packed = _PLOTLY_CACHE["js"] = pack(get_plotlyjs())
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, packed)
        except Exception:  # a read-only or full cache folder: pack again next time
            pass
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


def html_page(title: str, body: str, data: dict, script: str) -> str:
    """A whole page: ``body`` (HTML) under ``title`` with the app's style, ``data`` packed
    (:func:`to_json`, :func:`pack`) and plotly.js; ``script`` draws it once ``shell.js`` has
    unpacked both (``jaxgdPage(async (D, P) => ...)``)."""
    return fill("page.html", title=title, css=asset("page.css"), body=body, data=pack(to_json(data)),
                plotly=plotly_packed(), script=asset("shell.js") + script) + "\n"


FIGURES_JS = """jaxgdPage(async (D, P) => {  // each figure as plotly.py built it
  for (const [id, fig] of Object.entries(D.figures))
    await P.newPlot(id, fig.data, fig.layout, { displaylogo: false, responsive: true });
});
"""


def figures_page(title: str, body: str, figures: dict) -> str:
    """A page of plotly figures: ``figures`` maps the id of a ``<div>`` in ``body`` to the
    ``plotly.graph_objects.Figure`` drawn in it, packed as plotly's JSON (on plotly.js's own
    look, as the report's figures, rather than plotly.py's default template)."""
    specs = {}
    for k, fig in figures.items():
        specs[k] = fig.to_plotly_json()
        layout = specs[k]["layout"]
        layout.pop("template", None)
        if isinstance(layout.get("title"), dict):  # titles at the left, as plotly.py's look put them
            layout["title"].setdefault("x", 0.05)
    return html_page(title, body, {"figures": specs}, FIGURES_JS)
