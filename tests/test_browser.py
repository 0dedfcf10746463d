"""The report in a real browser: Debian's chromium, headless, driven by Playwright.

Skipped (with the way to install it) when /usr/bin/chromium is missing. The screenshot is
kept in ``test-artifacts/`` at the repository root for a person to look at.
"""

import os
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("JAXGD_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking"]

if os.environ.get("JAXGD_REQUIRE_BROWSER") and not os.path.exists(CHROMIUM):  # set by .ci/run
    raise RuntimeError(f"JAXGD_REQUIRE_BROWSER is set but there is no chromium at {CHROMIUM}")

pytestmark = [pytest.mark.xdist_group("cli_report"), pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"no chromium at {CHROMIUM}: install it with `apt-get update && apt-get install -y chromium` "
           "(never `playwright install`), or set JAXGD_CHROMIUM",
)]


@pytest.fixture(scope="session")
def report_dir(cli_report):
    """The session's ``jaxgd report`` and its run labels (from results.json)."""
    import json

    runs = json.loads((cli_report / "results.json").read_text())["runs"]
    labels = {"full": "full batch", "sgd": "SGD (batch 1)", "minibatch": "minibatch (batch 8)"}
    return cli_report, [f"{r['optimizer']} · {labels[r['mode']]}" for r in runs]


@pytest.fixture(scope="session")
def page(report_dir):
    from playwright.sync_api import sync_playwright

    out, _ = report_dir
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1300, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto((out / "report.html").as_uri())
        pg.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 6", timeout=60_000)
        pg.wait_for_timeout(1500)  # WebGL draws after the plot promise resolves
        pg.errors = errors
        yield pg
        browser.close()


def test_no_page_errors_and_every_figure_rendered(page):
    assert page.errors == []
    ids = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => e.id)")
    assert ids == ["data", "surface3d", "contour", "loss", "diagnostics", "sweep"]
    for fig_id in ids:
        # a rendered plotly figure has its main svg drawn with a non-zero size
        w = page.evaluate(f"document.getElementById('{fig_id}').querySelector('.main-svg').getBoundingClientRect().width")
        assert w > 300, fig_id
    assert "WebGL is not supported" not in page.inner_text("body")  # visible text, not the inlined JS
    assert page.locator("#surface3d canvas").count() >= 1


def test_3d_figure_traces_and_axes(page, report_dir):
    _, labels = report_dir
    info = page.evaluate("""() => { const g = document.getElementById('surface3d');
        return {types: g.data.map(t => t.type), names: g.data.map(t => t.name),
                x: g._fullLayout.scene.xaxis.title.text, y: g._fullLayout.scene.yaxis.title.text,
                z: g._fullLayout.scene.zaxis.title.text}; }""")
    assert info["types"] == ["surface"] + ["scatter3d"] * len(labels)
    assert info["names"][1:] == labels
    assert (info["x"], info["y"], info["z"]) == ("W", "b", "loss")


def test_3d_screenshot_has_colour(page):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-3d.png"
    page.locator("#surface3d").screenshot(path=str(shot))
    from PIL import Image

    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    saturation = rgb.max(axis=2) - rgb.min(axis=2)  # grey, white and the pale axis planes are < 20
    coloured = float((saturation > 40).mean())
    print(f"3-D figure screenshot: {shot} ({coloured:.1%} coloured pixels)")
    # Measured on this figure: 8.1 % with the surface drawn; 0.6 % (legend and slider only) when
    # chromium runs with --disable-webgl and plotly shows "WebGL is not supported".
    assert coloured > 0.03, f"only {coloured:.1%} coloured pixels in {shot}"


def test_slider_moves_the_paths(page):
    def drawn():
        return page.evaluate("() => document.getElementById('surface3d')._fullData.slice(1).map(t => t._length)")

    before = drawn()
    rail = page.locator("#surface3d .slider-rail-rect").first
    rail.scroll_into_view_if_needed()  # a click outside the viewport does nothing (the tests may run in any order)
    box = rail.bounding_box()
    page.mouse.click(box["x"] + 3, box["y"] + box["height"] / 2)  # the slider's start: step 0
    page.wait_for_function("() => document.getElementById('surface3d')._fullData.slice(1).every(t => t._length === 1)",
                           timeout=15_000)
    at_start = drawn()
    assert at_start != before
    assert all(n == 1 for n in at_start)  # step 0: every path is its starting point
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.wait_for_timeout(800)
    middle = drawn()
    assert all(1 <= a <= b for a, b in zip(middle, before)) and middle != at_start
    label = page.locator("#surface3d .slider-container .slider-label").first.text_content()
    assert label.startswith("step ")
    # the surface is not part of the frames: it is still there, unchanged
    assert page.evaluate("document.getElementById('surface3d').data[0].type") == "surface"
