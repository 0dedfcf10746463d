"""The report in a real browser: Debian's chromium, headless, driven by Playwright.

What a person sees: every figure drawn with no page error and no console error during load,
play, pause, slider drags, a change of the slider's unit and the run toggles; no horizontal
overflow at 1400 and 420 px; labels where their lines are; a diverging run kept on the grid.
Skipped (with the way to install it) when /usr/bin/chromium is missing. Screenshots are kept in
``test-artifacts/`` at the repository root for a person to look at; the time the page took to
draw its figures is printed (``-s``), not asserted.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from helpers import CHROMIUM, click_key, needs_chromium
from helpers import open_page as _open

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FIGURES = ["data", "surface3d", "contour", "loss", "diagnostics", "sweep", "whatif", "phase", "cloud", "spread",
           "batch-phase", "spread-batch"]

if os.environ.get("JAXGD_REQUIRE_BROWSER") and not os.path.exists(CHROMIUM):  # set by .ci/run
    raise RuntimeError(f"JAXGD_REQUIRE_BROWSER is set but there is no chromium at {CHROMIUM}")

pytestmark = [pytest.mark.xdist_group("cli_report"), needs_chromium]


@pytest.fixture(scope="session")
def page(browser, cli_report):
    pg = _open(browser, cli_report / "report.html", 1400)
    ms = pg.evaluate("window.jaxgdDrawMs")
    print(f"\nreport.html drew its figures {ms / 1000:.2f} s after load (headless chromium, software WebGL)")
    yield pg
    pg.close()


def test_every_figure_drawn_without_errors(page):
    ids = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => e.id)")
    assert ids == FIGURES
    for fig_id in ids:
        w = page.evaluate(f"document.getElementById('{fig_id}').querySelector('.main-svg').getBoundingClientRect().width")
        assert w > 300, fig_id
    assert page.locator("#surface3d canvas").count() >= 1
    assert "WebGL is not supported" not in page.inner_text("body")
    assert page.inner_text("#loading") == ""
    # the player starts at the end, and says so with every digit (not "epoch 1 of 100")
    assert page.inner_text("#pos-label") == "epoch 100 of 100"
    assert page.errors == []


def _paths(page, fig):
    """The number of points drawn of each run's path trace (traces 1..runs) in figure ``fig``."""
    return page.evaluate(f"""() => {{ const g = document.getElementById('{fig}');
        return g.data.slice(1, 1 + document.querySelectorAll('.toggles input').length).map(t => t.x.length); }}""")


def test_one_slider_moves_every_view(page):
    n_runs = page.locator(".toggles input").count()
    page.evaluate("window.jaxgd.setPosition(0)")
    assert _paths(page, "contour") == [1] * n_runs and _paths(page, "surface3d") == [1] * n_runs
    line = page.evaluate("document.getElementById('data').data.at(-1).name")
    assert "step 0:" in line
    page.evaluate("window.jaxgd.setPosition(3)")  # epoch ~1: full batch has made one step, SGD about 51
    mid = _paths(page, "contour")
    top = int(page.get_attribute("#pos", "max"))
    page.evaluate(f"window.jaxgd.setPosition({top})")
    end = _paths(page, "contour")
    assert all(1 <= a <= b for a, b in zip(mid, end)) and mid != end
    assert _paths(page, "surface3d") == end
    # the current points: one per run, on top of the contour's path traces
    marks = page.evaluate("document.getElementById('contour').data.find(t => t.name === 'current point').x.length")
    exits = page.evaluate("document.getElementById('contour').data.find(t => t.name === 'left the plot').x.length")
    assert marks + exits == n_runs
    assert page.inner_text("#pos-label").startswith("epoch ")


def test_play_pause_drag_unit_and_toggles_raise_no_error(page):
    play = page.locator("#play").bounding_box()
    click = lambda: page.mouse.click(play["x"] + 5, play["y"] + 5)  # noqa: E731  (no actionability wait)
    page.evaluate("window.jaxgd.setPosition(0)")
    click()
    page.wait_for_function("window.jaxgd.playing && document.getElementById('pos').value > 0", timeout=60_000)
    click()  # pause: today's plotly animate raised "Plotly.animate rejected" here
    page.wait_for_function("!window.jaxgd.playing", timeout=60_000)
    moved = int(page.input_value("#pos"))
    assert moved > 0
    box = page.locator("#pos").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)  # a drag (each move: one draw)
    page.mouse.up()
    page.select_option("#unit", "updates")
    page.wait_for_function("document.getElementById('pos-label').innerText.startsWith('update ')", timeout=60_000)
    page.select_option("#unit", "epochs")
    # the run toggles: a click on the element itself (Playwright's actionability wait costs seconds here)
    page.evaluate("document.querySelector('.player details').open = true")
    page.evaluate("document.querySelector(\".quick button[data-only='sgd']\").click()")
    page.wait_for_function("document.getElementById('contour').data[1].visible === false", timeout=60_000)
    vis = page.evaluate("document.getElementById('contour').data.slice(1, 13).map(t => t.visible)")
    assert vis == [m == "SGD" for _ in range(4) for m in ("full", "SGD", "mini")]
    page.evaluate("document.querySelector(\".quick button[data-only='all']\").click()")
    page.wait_for_function("document.getElementById('contour').data[1].visible === true", timeout=60_000)
    page.evaluate("window.jaxgd.draw()")
    assert page.errors == []


def test_flows_beside_gd_are_drawn_from_their_key(page):
    """gd's flows (gradient, modified: the notebook is quadratic) after every other trace of the contour, off
    at first and named in the key under the plot; a click on an entry draws that flow from gd's start up to
    gd's step at the slider, a second click takes it off; no page error."""
    flows = "document.getElementById('contour').data.slice(-2)"
    assert page.evaluate(f"{flows}.map(t => [t.name, t.visible])") == [
        ["gradient flow", "legendonly"], ["modified flow (Barrett & Dherin 2021)", "legendonly"]]
    assert page.eval_on_selector_all("#contour .legend .traces", "els => els.map(e => e.textContent)") == [
        "gradient flow", "modified flow (Barrett & Dherin 2021)"]
    click_key(page, "contour", 0)
    page.wait_for_function(f"{flows}[0].visible === true", timeout=60_000)
    page.evaluate("window.jaxgd.setPosition(0)")
    assert page.evaluate(f"{flows}.map(t => t.x.length)") == [1, 1]
    gd = "document.getElementById('contour').data[1]"  # gd · full batch
    assert page.evaluate(f"[{flows}[0].x[0], {flows}[0].y[0]]") == page.evaluate(f"[{gd}.x[0], {gd}.y[0]]")
    page.evaluate(f"window.jaxgd.setPosition({page.get_attribute('#pos', 'max')})")
    assert page.evaluate(f"{flows}.map(t => t.x.length)") == [21, 21]  # gd's 20 steps
    click_key(page, "contour", 0)
    page.wait_for_function(f"{flows}[0].visible === 'legendonly'", timeout=60_000)
    assert page.errors == []


def test_sweep_labels_sit_on_their_lines(page):
    """Each vertical line's label ends at its line (within 6 px): a label at x = value on the
    log axis would sit decades away."""
    pairs = page.evaluate("""() => { const g = document.getElementById('sweep'), ax = g._fullLayout.xaxis;
        const texts = [...g.querySelectorAll('.annotation')].map(a => [a.textContent, a.getBoundingClientRect().right]);
        const left = g.getBoundingClientRect().left;
        return texts.map(([t, right], i) => [t, right - left, ax._offset + ax.l2p(g.layout.annotations[i].x)]); }""")
    assert {t.split(" = ")[0] for t, _, _ in pairs} >= {"2/λmax", "2/(λmin+λmax)"}
    for text, right, line in pairs:
        assert abs(right - line) < 6, (text, right, line)


def test_whatif_shows_the_second_knob_only_where_there_is_one(page):
    visible = "() => document.getElementById('whatif-knob-label').getBoundingClientRect().height > 0"
    page.select_option("#whatif-opt", "gd")
    assert page.evaluate(visible) is False  # gd has no β: its slider is hidden, not shown at 0
    page.select_option("#whatif-opt", "momentum")
    assert page.evaluate(visible) is True and page.inner_text("#whatif-knob-name") == "β"
    assert page.errors == []


def test_whatif_limit_mark_sits_where_the_thumb_would_be(page, cli_report):
    """momentum at β 0.9: the red mark sits where the lr slider's thumb would be for the limit lr
    (issue 22: it sat under the 2.72 stop, which diverges). Thumb centres run from 8 px to width − 8
    (Chromium's 16 px thumb), one stop per index; the limit is placed between its stops by log lr."""
    import base64
    import gzip
    import re

    html = (cli_report / "report.html").read_text()
    D = json.loads(gzip.decompress(base64.b64decode(
        re.search(r'<script id="jaxgd-data" type="application/octet-stream">([^<]*)</script>', html).group(1))))
    opt = [w["optimizer"] for w in D["whatif"]].index("momentum")
    wf = D["whatif"][opt]
    k = wf["values"].index(0.9)
    lrs, lim = np.array(wf["lrs"]), wf["limit"][k]
    first = int(np.flatnonzero(np.array(wf["diverged_at"])[:, k] >= 0)[0])  # the first stop whose run diverges
    assert lrs[first - 1] < lim < lrs[first] and (round(lim, 3), round(lrs[first], 2)) == (2.192, 2.72)
    page.select_option("#whatif-opt", "gd")
    page.select_option("#whatif-opt", str(opt))  # β back at its default, 0.9
    assert page.inner_text("#whatif-knob-value") == "β = 0.9"
    left, width, mark = page.evaluate("""() => { const r = document.getElementById('whatif-lr').getBoundingClientRect();
        const m = document.getElementById('whatif-limit').getBoundingClientRect(); return [r.left, r.width, m.left + m.width / 2]; }""")
    x = lambda i: left + 8 + i / (len(lrs) - 1) * (width - 16)  # the thumb's centre at stop i (fractional: between)
    assert x(first - 1) < mark < x(first)
    assert abs(mark - x(np.interp(np.log(lim), np.log(lrs), np.arange(len(lrs))))) < 1
    assert page.errors == []


def test_batch_phase_tells_no_change_from_diverged(page):
    """The colour of a loss that did not move (log ratio 0) is far from the grey of a diverged run."""
    g = page.evaluate("""() => { const g = document.getElementById('batch-phase');
        const t = g._fullData[0], cs = t.colorscale, at0 = (0 - t.zmin) / (t.zmax - t.zmin), bg = g._fullLayout.plot_bgcolor;
        const mid = cs.reduce((a, b) => (Math.abs(b[0] - at0) < Math.abs(a[0] - at0) ? b : a));
        return [Math.abs(mid[0] - at0) < 1e-9 ? mid[1] : 'no stop at 0', bg, g.data.filter(t => t.mode === 'markers').map(t => t.name)]; }""")
    mid, bg, marks = g
    def rgb(c):  # "#rgb", "#rrggbb" or "rgb(r, g, b)" (plotly's own scales)
        if c.startswith("rgb"):
            return [int(float(v)) for v in c[c.index("(") + 1:-1].split(",")[:3]]
        h = c[1:] if len(c) == 7 else "".join(2 * x for x in c[1:])
        return [int(h[i:i + 2], 16) for i in (0, 2, 4)]

    assert sum(abs(a - b) for a, b in zip(rgb(mid), rgb(bg))) > 120, (mid, bg)
    assert len(marks) == 2 and all("preset" in m for m in marks)  # the SGD and minibatch modes' lr, marked


def test_no_horizontal_overflow_on_a_phone(browser, cli_report, page):
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    phone = _open(browser, cli_report / "report.html", 420)
    try:
        assert phone.evaluate("document.documentElement.scrollWidth") <= 420
        assert phone.evaluate("document.querySelector('meta[name=viewport]').content").startswith("width=device-width")
        ARTIFACTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(ARTIFACTS / "report-420.png"), clip={"x": 0, "y": 0, "width": 420, "height": 2400})
        assert phone.errors == []
    finally:
        phone.close()


def test_3d_screenshot_has_colour(page):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-3d.png"
    # the sticky bar (with the run toggles another test opened) would lie over the figure's top
    page.evaluate("document.querySelector('.player details').open = false; "
                  "document.getElementById('player').style.position = 'static'")
    page.locator("#surface3d").scroll_into_view_if_needed()
    page.locator("#surface3d").screenshot(path=str(shot))
    from PIL import Image

    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    saturation = rgb.max(axis=2) - rgb.min(axis=2)  # grey, white and the pale axis planes are < 20
    coloured = float((saturation > 40).mean())
    print(f"3-D figure screenshot: {shot} ({coloured:.1%} coloured pixels)")
    # Measured on the earlier page: 8.1 % with the surface drawn; 0.6 % when chromium runs with
    # --disable-webgl and plotly shows "WebGL is not supported".
    assert coloured > 0.03, f"only {coloured:.1%} coloured pixels in {shot}"
    page.evaluate("document.getElementById('player').style.position = ''")


def test_a_diverging_lr_keeps_the_axes_on_the_grid(browser, run_report, tmp_path):
    out = tmp_path / "lr100"
    run_report(out, "--lr", "100", "--grid", "21", "--optimizers", "gd,rmsprop")  # with the explorables: at lr 100
    # every seed-cloud run diverges, and a point at 1e300 is one SVG cannot draw (a console error)
    doc = json.loads((out / "results.json").read_text())
    pg = _open(browser, out / "report.html", 1400)
    try:
        info = pg.evaluate("""() => { const g = document.getElementById('surface3d'), s = g._fullLayout.scene;
            return {x: s.xaxis.range, y: s.yaxis.range, z: s.zaxis.range,
                    paths: g.data.filter(t => t.type === 'scatter3d' && t.mode === 'lines').map(t => [t.x, t.y]),
                    exits: g.data.find(t => t.name === 'left the plot').x.length,
                    loss: document.getElementById('loss').data.slice(0, 6).map(t => t.y.length)}; }""")
        (wlo, whi), (blo, bhi) = doc["problem"]["w_range"], doc["problem"]["b_range"]
        assert np.allclose(info["x"], [wlo, whi]) and np.allclose(info["y"], [blo, bhi])
        assert info["z"][1] < 1e4  # the surface's height, not the diverged points' 1e7
        for xs, ys in info["paths"]:
            assert all(wlo - 1e-9 <= v <= whi + 1e-9 for v in xs) and all(blo - 1e-9 <= v <= bhi + 1e-9 for v in ys)
        diverged = [r for r in doc["runs"] if r["diverged_at"] is not None]
        assert diverged and info["exits"] >= 1
        # a path's end off the grid: ✕ (3-D: +) only where the run diverged, ○ where it just left the plot
        ends = pg.evaluate("""() => ['surface3d', 'contour'].map((id) => {
            const t = document.getElementById(id).data.find((t) => t.name === 'left the plot'); return [t.text, t.marker.symbol]; })""")
        for (texts, symbols), cross in zip(ends, ("cross", "x")):
            assert texts and list(symbols) == [cross if t.split(": ", 1)[1].startswith("diverged") else "circle-open" for t in texts]
        assert any(t.split(": ", 1)[1].startswith("diverged") for t in ends[0][0])
        assert all(n >= 1 for n in info["loss"])  # every run's loss curve, up to its divergence
        states = pg.eval_on_selector_all("#runs tr td:last-child", "tds => tds.map(t => t.textContent)")
        assert any(s.startswith("did not converge") for s in states) and any(s.startswith("diverged") for s in states)
        assert pg.evaluate("document.documentElement.scrollWidth") <= 1400
        assert pg.errors == []
    finally:
        pg.close()



def _rgb(hex_color):
    h = hex_color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


KEY = """() => { const k = document.getElementById('key'), box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height}; };
  return {box: box(k), height: innerHeight, width: innerWidth, closed: !!k.closest('details:not([open])'),
    chips: [...k.querySelectorAll('.chip')].map((c) => { const s = getComputedStyle(c.querySelector('line')), m = c.querySelector('g > *');
      return {text: c.textContent, stroke: s.stroke, dash: s.strokeDasharray, mark: m ? m.tagName : null, box: box(c)}; })}; }"""
# the contour's path traces as plotly drew them: name, colour and (the SVG's own) dash; the current points' symbols
TRACES = """() => { const g = document.getElementById('contour'), n = document.querySelectorAll('.toggles input').length;
  const lines = [...g.querySelectorAll('.scatterlayer .trace')].slice(0, n).map((t) => getComputedStyle(t.querySelector('.js-line')).strokeDasharray);
  const cur = g.data.find((t) => t.name === 'current point');
  return {paths: g.data.slice(1, 1 + n).map((t, i) => [t.name, t.line.color, lines[i]]),
          marks: cur.customdata.map((c, i) => [c[2], cur.marker.symbol[i]])}; }"""
SVG_MARK = {"circle": "circle", "diamond": "path", "square": "rect"}  # how the key draws plotly's marker symbols


@pytest.mark.parametrize("width", [1400, 420])
def test_the_key_is_on_screen_and_agrees_with_the_traces(browser, cli_report, width):
    """Which colour is which optimizer and which mark (and dash) is which sampling mode, without a click: the key
    sits in the sticky player bar, in the first screen at load at 1400 px (one line) and, on a phone, in view (two
    lines at most) once the figures are: with the contour scrolled to the top. Its chips' drawn colours and dashes
    are those plotly drew on the contour, and each mode's mark is the contour's current-point symbol of that mode's
    runs; every optimizer and mode of the page is listed (a phone drops the batch sizes: "SGD", not "SGD (batch 1)")."""
    pg = _open(browser, cli_report / "report.html", width)
    try:
        k = pg.evaluate(KEY)
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"report-key-{width}.png"))
        assert not k["closed"] and k["box"]["width"] > 0 and k["box"]["height"] > 0
        assert all(0 <= c["box"]["left"] and c["box"]["right"] <= k["width"] and c["box"]["height"] > 0 for c in k["chips"])
        if width == 1400:
            assert 0 <= k["box"]["top"] and k["box"]["bottom"] <= k["height"], k["box"]  # the first screen
        assert k["box"]["height"] < (36 if width == 1400 else 60), k["box"]  # one line; two on a phone
        t = pg.evaluate(TRACES)
        short = (lambda m: m.split(" (")[0]) if width < 600 else (lambda m: m)  # noqa: E731
        chips = {c["text"]: c for c in k["chips"]}
        optimizers = {name.split(" · ")[0] for name, _, _ in t["paths"]}
        modes = {short(name.split(" · ")[1]) for name, _, _ in t["paths"]}
        assert optimizers == {"gd", "momentum", "rmsprop", "adam"} and len(modes) == 3
        assert set(chips) == optimizers | modes
        for name, color, dash in t["paths"]:
            opt, mode = name.split(" · ")
            mode = short(mode)
            assert chips[opt]["stroke"] == _rgb(color), (name, chips[opt]["stroke"], color)
            assert chips[mode]["dash"] == dash, (name, chips[mode]["dash"], dash)
        assert {"none", "3px, 3px", "9px, 9px"} == {chips[m]["dash"] for m in modes}  # solid, dot, dash all told apart
        for label, symbol in t["marks"]:
            assert chips[short(label.split(" · ")[1])]["mark"] == SVG_MARK[symbol], (label, symbol)
        assert len(t["marks"]) == 12  # every run's current point (none left the plot on the default page)
        # with the contour scrolled to the top of the window, the key stays in view, above the figure
        pg.evaluate("document.getElementById('contour').scrollIntoView()")
        k2 = pg.evaluate(KEY)
        assert 0 <= k2["box"]["top"] and k2["box"]["bottom"] <= k2["height"] and k2["box"]["height"] > 0
        # the data's lines read with their signs: the true line and gd's start (-4, -7), not "y = -4x + -7"
        names = pg.evaluate("window.jaxgd.setPosition(0).then(() => document.getElementById('data').data.map(t => t.name))")
        assert "true line y = 2x + 3" in names and names[-1] == "gd · full batch, step 0: y = −4x − 7"
        assert pg.errors == []
    finally:
        pg.close()
