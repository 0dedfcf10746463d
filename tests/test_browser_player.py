"""The report's player in a real browser (issue 22, item 4): what a slider step sends to plotly, the controls (±1,
go to, play one position after another) and the sticky bar on a phone.

A step touches only what moves: the paths, the current points, the exits, the data's line and the loss cursor, never
the 3-D surface or the contour's own trace; a figure out of the window takes the numbers and draws them when scrolled
to. Plotly's calls are counted by wrapping them in the page. The page's draw time and the median time of a step are
printed (``-s``), never asserted: ``scripts/bench.py --only page`` records them against the issue's targets.
"""

import statistics

import pytest

from helpers import needs_chromium
from helpers import open_page as _open

pytestmark = [pytest.mark.xdist_group("cli_report"), needs_chromium]

# every plotly call that draws, recorded as [function, figure id, trace indices or null, attribute names]
WRAP = """() => { window.calls = []; const P = window.Plotly;
  for (const f of ['newPlot', 'react', 'restyle', 'relayout', 'update', 'animate', 'redraw']) { const o = P[f];
    P[f] = function (gd, ...a) { const idx = f === 'animate' ? a[0].traces : f === 'restyle' ? a[1] : f === 'update' ? a[2] : null;
      const keys = f === 'animate' ? a[0].data.flatMap(Object.keys) : f === 'restyle' || f === 'update' ? Object.keys(a[0] || {}) : [];
      window.calls.push([f, gd.id, idx === undefined ? null : idx, keys]); return o.call(P, gd, ...a); }; } }"""
STEP = """async (v) => { window.calls = []; const t = performance.now(); await window.jaxgd.setPosition(v);
  return [performance.now() - t, window.calls]; }"""
SETTLE = "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"  # the observers' callbacks ran


@pytest.fixture(scope="module")
def page(browser, cli_report):
    pg = _open(browser, cli_report / "report.html", 1400)
    t = pg.evaluate("window.jaxgdTimes")
    print(f"\nreport.html: first screen drawn {t['firstScreen'] / 1000:.2f} s, every figure {t['drawn'] / 1000:.2f} s after load")
    pg.evaluate(WRAP)
    yield pg
    pg.close()


def _steps(page, view):
    """Eight slider steps with figure ``view`` at the top of the window: their times (ms) and plotly calls."""
    page.evaluate(f"document.getElementById('{view}').scrollIntoView()")
    page.evaluate(SETTLE)
    page.evaluate("window.jaxgd.setPosition(0)")
    top = int(page.get_attribute("#pos", "max"))
    out = [page.evaluate(STEP, top * k // 8) for k in range(1, 9)]
    print(f"a slider step with #{view} in view: median {statistics.median(t for t, _ in out):.0f} ms (headless chromium, software WebGL)")
    return [c for _, calls in out for c in calls]


def test_a_step_sends_only_what_moves(page):
    n = page.locator(".toggles input").count()
    paths = list(range(1, n + 1))
    calls = _steps(page, "surface3d")
    surface = [c for c in calls if c[1] == "surface3d"]
    # one update of the paths and the current points (and exits) after the minimum's trace, never the surface (trace 0)
    assert surface and all(c[0] == "update" and set(c[2]) <= {*paths, n + 3, n + 4} for c in surface), surface
    # a trace is sent only when its values changed: the first step moves every path, the last (past every SGD and
    # minibatch run's end) only the full-batch paths and the points
    assert set(paths) <= set(surface[0][2]) and not set(paths) <= set(surface[-1][2]), surface
    assert all(k in {"x", "y", "z", "customdata", "marker.color", "marker.symbol", "text"} for c in surface for k in c[3])
    calls = _steps(page, "contour")
    contour = [c for c in calls if c[1] == "contour"]
    # the contour moves by plotly frames of its path, point and flow traces alone (redraw: false), never its trace 0
    assert contour and all(c[0] == "animate" and set(c[2]) <= {*paths, n + 2, n + 3, n + 5, n + 6} for c in contour), contour
    assert not [c for c in calls if c[1] == "surface3d"]  # out of the window: nothing drawn
    assert {c[1] for c in calls} <= {"contour", "loss", "data"}, calls
    loss = [c for c in calls if c[1] == "loss"]  # the loss figure: only its cursor, a frame of its two traces
    assert loss and all(c[0] == "animate" and c[2] == [2 * n + 1, 2 * n + 2] and c[3] == ["x", "x"] for c in loss), loss
    assert page.errors == []


def test_a_figure_out_of_the_window_catches_up_when_scrolled_to(page):
    page.evaluate("document.getElementById('contour').scrollIntoView()")
    page.evaluate(SETTLE)
    page.evaluate("window.jaxgd.setPosition(0)")
    drawn = "document.getElementById('surface3d')._fullData.slice(1, 13).map((t) => t.x.length)"
    numbers = "document.getElementById('surface3d').data.slice(1, 13).map((t) => t.x.length)"
    assert page.evaluate(numbers) == [1] * 12  # the numbers follow at once
    assert page.evaluate(drawn) != [1] * 12  # drawn: not yet
    page.evaluate("window.calls = []; document.getElementById('surface3d').scrollIntoView()")
    page.wait_for_function(f"{drawn}.every((k) => k === 1)", timeout=60_000)
    assert [c[0] for c in page.evaluate("window.calls") if c[1] == "surface3d"] == ["redraw"]
    assert page.errors == []


def test_step_buttons_go_to_and_play_one_by_one(page):
    page.evaluate("document.getElementById('contour').scrollIntoView()")
    page.evaluate("window.jaxgd.setPosition(10)")
    page.click("#fwd")
    page.wait_for_function("document.getElementById('pos').value === '11'")
    page.click("#back")
    page.click("#back")
    page.wait_for_function("document.getElementById('pos').value === '9'")
    # go to epoch 50 of 100: the slider's middle, whatever its number of positions
    page.fill("#goto", "50")
    page.press("#goto", "Enter")
    page.wait_for_function("document.getElementById('pos-label').innerText === 'epoch 50 of 100'")
    assert int(page.input_value("#pos")) == int(page.get_attribute("#pos", "max")) // 2
    # play 1 by 1 (in updates): every position in turn, none skipped
    page.select_option("#unit", "updates")
    page.select_option("#speed", "0")
    page.evaluate("window.jaxgd.setPosition(0)")
    page.evaluate("""window.seen = []; new MutationObserver(() => window.seen.push(document.getElementById('pos-label').innerText))
      .observe(document.getElementById('pos-label'), {childList: true, characterData: true, subtree: true})""")
    page.click("#play")
    page.wait_for_function("document.getElementById('pos').value >= 6", timeout=60_000)
    page.click("#play")
    page.wait_for_function("!window.jaxgd.playing", timeout=60_000)
    seen = [int(s.split()[1]) for s in page.evaluate("window.seen")]
    assert seen[:6] == [1, 2, 3, 4, 5, 6], seen
    page.select_option("#unit", "epochs")
    page.select_option("#speed", "20")
    assert page.errors == []


def test_the_bar_on_a_phone_is_compact_and_opaque(browser, cli_report):
    """At 420 px the bar (with the key) was 146 px tall, see-through, and lay over the top of a figure scrolled to."""
    pg = _open(browser, cli_report / "report.html", 420)
    try:
        pg.evaluate("document.getElementById('contour').scrollIntoView()")
        pg.evaluate(SETTLE)
        bar = pg.evaluate("document.getElementById('player').getBoundingClientRect().toJSON()")
        fig = pg.evaluate("document.getElementById('contour').getBoundingClientRect().toJSON()")
        assert bar["top"] == 0 and bar["height"] < 120, bar
        assert fig["top"] >= bar["bottom"] - 1, (fig, bar)
        assert pg.evaluate("getComputedStyle(document.getElementById('player')).backgroundColor") == "rgb(255, 255, 255)"
        assert pg.errors == []
    finally:
        pg.close()
