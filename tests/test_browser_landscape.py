"""The page of a landscape with several minima in the real browser (as tests/test_browser.py, but
not tied to the session's report, so it runs on whichever worker is free)."""

from helpers import needs_chromium
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
