"""The page of a landscape with several minima in the real browser (as tests/test_browser.py, but
not tied to the session's report, so it runs on whichever worker is free)."""

import numpy as np
from helpers import click_key, needs_chromium
from helpers import open_page as _open  # the name test_browser.py uses

pytestmark = needs_chromium


def test_basins_of_a_landscape_with_several_minima(browser, run_report, tmp_path):
    """--problem himmelblau: the basins and their steps draw (201² starts per optimizer), the
    optimizer menu switches both panels, and nothing raises."""
    out = tmp_path / "himmelblau"
    run_report(out, "--problem", "himmelblau", "--optimizers", "gd,momentum", "--epochs", "100")
    pg = _open(browser, out / "report.html", 1400)
    try:
        ids = pg.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => e.id)")
        assert "basins" in ids and "basins-steps" in ids and "cloud" not in ids  # a landscape has no data to sample
        z = "(id) => document.getElementById(id).data[0].z"
        before = pg.evaluate(f"({z})('basins-steps')")
        assert len(before) == 201 and len(before[0]) == 201
        pg.select_option("#basins-opt", "momentum")
        after = pg.evaluate(f"({z})('basins-steps')")
        assert after != before  # momentum's steps, not gd's
        legend = pg.eval_on_selector_all("#basins .legendtext", "els => els.map(e => e.textContent)")
        assert legend[:4] == ["1: (3, 2)", "2: (-2.81, 3.13)", "3: (-3.78, -3.28)", "4: (3.58, -1.85)"]
        assert pg.evaluate("document.documentElement.scrollWidth") <= 1400
        assert pg.errors == []
    finally:
        pg.close()


def test_the_landscape_page_draws_every_figure(browser, cli, tmp_path):
    """``jaxgd landscape``'s page, on the report's shell: packed (under 3 MB), every figure drawn
    from its packed JSON on plotly.js's white look, the contour's paths where landscape.npz puts
    them (a and b in every hover), no page or console error, no horizontal overflow."""
    out = tmp_path / "landscape"
    code, _, err = cli(["landscape", "--data", "iris", "--model", "mlp:4", "--optimizers", "gd,adam", "--lr", "0.5,0.02",
                        "--epochs", "20", "--grid", "9", "--sharpness-every", "5", "--no-png", "--out", out])
    assert code == 0, err
    assert (out / "landscape.html").stat().st_size < 3_000_000
    pg = _open(browser, out / "landscape.html", 1400)
    try:
        ids = pg.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => e.id)")
        assert ids == ["contour", "surface3d", "interpolation", "sharpness", "gaps", "variance"]
        names = pg.evaluate("document.getElementById('contour').data.map(t => t.name)")
        assert len(names) == 1 + 3 * 2 + 2  # the contour, per optimizer its path, start and end, and gd's flows
        assert names[-2:] == ["gradient flow", "modified flow (Barrett & Dherin 2021)"]  # gd stays below 2/lr
        look = pg.evaluate("['contour', 'gaps'].map(id => document.getElementById(id)._fullLayout)"
                           ".map(l => [l.paper_bgcolor, l.plot_bgcolor])")
        assert look == [["#fff", "#fff"]] * 2  # the report's white, not plotly.py's grey template
        drawn = pg.evaluate("document.getElementById('contour')._fullData.map(t => [t.name, t.x, t.y, "
                            "t.customdata && t.customdata.map(c => c[0]), t.hovertemplate])")
        with np.load(out / "landscape.npz") as z:
            for name in ("gd", "adam"):
                _, x, y, steps, _ = next(t for t in drawn if t[0] == name)
                assert len(steps) == 21 and steps[0] == 0 and steps[-1] == 20
                np.testing.assert_allclose(x, z[f"{name}/plane_a"][steps], rtol=1e-5, atol=1e-9)
                np.testing.assert_allclose(y, z[f"{name}/plane_b"][steps], rtol=1e-5, atol=1e-9)
        assert all("a = %{x" in t[4] and "b = %{y" in t[4] for t in drawn)
        assert pg.locator("text=Every run starts at one point").count() == 1
        click_key(pg, "contour", 3)  # the modified flow's entry in the flows' key (after gd's and adam's)
        pg.wait_for_function("document.getElementById('contour').data.at(-1).visible === true", timeout=60_000)
        assert pg.locator("#surface3d canvas").count() >= 1
        assert pg.inner_text("#loading") == ""
        assert pg.evaluate("document.documentElement.scrollWidth") <= 1400
        assert pg.errors == []
    finally:
        pg.close()
