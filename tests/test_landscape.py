"""``jaxgd landscape`` and ``loss_surface`` on a plane: a real model's landscape, its files, and
that what is drawn is what was computed. (Bad invocations are in test_robustness.py's table.)"""

import base64
import gzip
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxgd
from jaxgd import datasets, planes
from jaxgd.app import landscape

pytestmark = pytest.mark.xdist_group("landscape")  # its module fixtures are made once (make test: --dist loadgroup)

SMALL = dict(data="iris", model="mlp:6", optimizers=("gd", "adam"), lr=(0.5, 0.02), epochs=40, grid=9,
             sharpness_every=8)


@pytest.fixture(scope="module")
def computed():
    """The PCA plane (the CLI test below takes the Hessian plane; test_planes.py covers the random one)."""
    return landscape.compute(landscape.check(landscape.LandscapeConfig(plane="pca", **SMALL)))


def test_the_page_names_the_loss_used(computed):
    """--loss mse is said as squared error against one-hot targets, not cross-entropy (issue 22)."""
    assert "(softmax cross-entropy)." in computed.what
    iris, cfg = datasets.load_data("iris"), landscape.LandscapeConfig(loss="mse", **SMALL)
    what = landscape.sentence(cfg, iris, (4, 6, 3), 51, 150)
    assert what.endswith("(squared error against one-hot targets).") and "entropy" not in what
    assert landscape.sentence(cfg, datasets.load_data("diabetes"), (10, 6, 1), 73, 442).endswith(
        "regression (squared error).")


def test_the_grid_is_the_loss_on_the_plane(computed):
    d = computed
    f = d.problem.full_loss
    S = np.asarray(d.surface)
    assert S.shape == (9, 9)
    for i, j in ((0, 0), (3, 7), (8, 2)):
        point = jax.tree.map(lambda o, u, v: o + d.a[i] * u + d.b[j] * v, *d.plane)
        np.testing.assert_allclose(S[i, j], float(f(point)), rtol=1e-10)


def test_paths_are_projected_honestly(computed):
    d = computed
    f = d.problem.full_loss
    for opt, t in d.trajectories.items():
        p = d.projections[opt]
        assert p.a.shape == t.loss.shape
        np.testing.assert_allclose(p.loss, t.loss, rtol=1e-10)  # the true loss at each actual point
        k = len(t.loss) // 2
        point = jax.tree.map(lambda a: jnp.asarray(a[k]), t.params)
        on_plane = jax.tree.map(lambda o, u, v: o + p.a[k] * u + p.b[k] * v, *d.plane)
        np.testing.assert_allclose(p.projected_loss[k], float(f(on_plane)), rtol=1e-10)
        gap = jnp.sqrt(sum(jnp.sum((x - y) ** 2) for x, y in zip(jax.tree.leaves(point), jax.tree.leaves(on_plane))))
        np.testing.assert_allclose(p.distance[k], float(gap), rtol=1e-8, atol=1e-12)
    end = jax.tree.map(lambda a: a[-1], d.trajectories["gd"].params)  # the plane passes through gd's end
    np.testing.assert_allclose(d.projections["gd"].distance[-1], 0, atol=1e-9 * (1 + np.sqrt(sum(
        np.sum(np.square(v)) for v in jax.tree.leaves(end)))))


def test_gd_flows_projected_on_the_plane(computed):
    """gd's flows (below 2/lr: gradient and modified flow) at its lr for its steps from its start,
    projected as jaxgd.flows and jaxgd.project give them; the page's contour carries each, off at first."""
    from jaxgd import flows
    from jaxgd.plots.flow_figs import FLOWS
    from jaxgd.plots.landscape_figs import figures

    d = computed
    assert np.nanmax(d.trajectories["gd"].sharpness) < 2 / 0.5 and list(d.flows) == ["gradient", "modified"]
    traces = {t.name: t for t in figures(d)["contour"].data}
    for kind, f in (("gradient", flows.gradient_flow), ("modified", flows.modified_flow)):
        ref = planes.project(d.plane, jax.tree.map(jnp.asarray, f(d.problem, lr=0.5, steps=40).params), d.problem)
        p = d.flows[kind]
        for got, want in zip(p, ref):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-12)
        assert (p.a[0], p.b[0]) == (d.projections["gd"].a[0], d.projections["gd"].b[0])  # gd's start
        t = traces[FLOWS[kind][0]]
        assert t.visible == "legendonly" and t.legend == "legend2"
        np.testing.assert_array_equal(t.x, p.a)


def test_pca_ratios_and_interpolation(computed):
    d = computed
    assert 0 < d.explained[1] <= d.explained[0] and d.explained.sum() <= 1 + 1e-12
    assert 0.4 < d.random_walk_explained[0] < 0.9
    start = d.problem.init
    for opt, t in d.trajectories.items():
        v = d.interpolation[opt]
        i0, i1 = np.argmin(np.abs(d.t)), np.argmin(np.abs(d.t - 1))
        np.testing.assert_allclose(v[i0], float(d.problem.full_loss(start)), rtol=1e-10)
        np.testing.assert_allclose(v[i1], t.loss[-1], rtol=1e-10)


def test_loss_surface_takes_a_plane():
    """For two parameters, the identity plane gives today's loss_surface (to the last bit or one
    rounding: the two programs sum the 51 squared errors in different orders)."""
    p = jaxgd.notebook()
    w, b = np.linspace(-8, 8, 7), np.linspace(-3, 5, 5)
    ident = planes.Plane(jaxgd.Params(0.0, 0.0), jaxgd.Params(1.0, 0.0), jaxgd.Params(0.0, 1.0))
    np.testing.assert_allclose(np.asarray(jaxgd.loss_surface(p, ident, w, b)), np.asarray(jaxgd.loss_surface(p, w, b)),
                               rtol=4e-16, atol=0)


def test_cli_writes_the_page_and_files(tmp_path, cli):
    out = tmp_path / "out"
    code, stdout, err = cli(["landscape", "--data", "iris", "--model", "mlp:6", "--optimizers", "gd,adam",
                             "--lr", "0.5,0.02", "--epochs", "40", "--grid", "9", "--sharpness-every", "8",
                             "--plane", "hessian", "--out", out])
    assert code == 0, err
    assert "jaxgd landscape: mlp:6" in stdout and "hessian plane" in stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["landscape-contour.png", "landscape-interpolation.png", "landscape-sharpness.png",
                     "landscape.html", "landscape.json", "landscape.npz"]
    doc = json.loads((out / "landscape.json").read_text())
    assert doc["config"]["lr"] == [0.5, 0.02] and doc["plane"]["kind"] == "hessian"
    assert doc["runs"]["gd"]["stability_limit"] == 4.0 and doc["runs"]["adam"]["stability_limit"] is None
    with np.load(out / "landscape.npz") as z:
        assert z["surface"].shape == (9, 9) and z["gd/sharpness"].shape == (40,)
        for opt in ("gd", "adam"):  # each run's line: its own end, as the page's table (not the shared start's)
            line = next(s for s in stdout.splitlines() if s.strip().startswith(opt + " "))
            gap, dist = re.search(r"at the end: gap to the projection (\S+), (\S+) from the plane$", line).groups()
            want = abs(float(z[f"{opt}/loss"][-1]) - float(z[f"{opt}/projected_loss"][-1]))  # (npz: the run's loss)
            np.testing.assert_allclose([float(gap), float(dist)], [want, float(z[f"{opt}/distance"][-1])],
                                       rtol=5e-3, atol=1e-12)  # printed to 3 significant digits
            measured = np.flatnonzero(np.isfinite(z[f"{opt}/sharpness"]))  # every 8th of 40 steps: the last at 32
            assert measured[-1] == 32 and (f"sharpness {float(z[f'{opt}/sharpness'][32]):.4g} at step 32 (" in line
                                           or f"sharpness {float(z[f'{opt}/sharpness'][32]):.4g} at step 32;" in line)
    html = (out / "landscape.html").read_text()
    assert "<script" in html and "https://" not in html.split("<body>")[1]  # offline
    assert 'id="sharpness"' in html and 'id="variance"' not in html and "Largest gap" in html
    assert "along two orthogonal unit directions" in html and "Every run starts at one point" in html  # the Hessian's


@pytest.fixture(scope="module")
def page_html(computed):
    """The page of the small landscape (the library's Landscape as the command computes it)."""
    from jaxgd.app import landscape_page

    return landscape_page.page(computed, {"jaxgd": "0", "jax": "0", "optax": "0"})


def _unpacked(page, script_id: str) -> str:
    return gzip.decompress(base64.b64decode(re.search(f'id="{script_id}"[^>]*>([^<]*)<', page).group(1))).decode()


def test_the_page_is_on_the_reports_shell(computed, page_html):
    """Packed as the report's page (plotly.js gzip + base64, not inline; the figures' JSON packed too),
    on plotly.js's white look (no plotly.py template), under 3 MB; every hover on the plane gives a and b."""
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    assert len(page_html.encode()) <= 3_000_000 < len(bundle.encode())
    assert _unpacked(page_html, "plotly-gz") == bundle and bundle[-3000:] not in page_html
    figs = json.loads(_unpacked(page_html, "jaxgd-data"))["figures"]
    assert list(figs) == ["contour", "surface3d", "interpolation", "sharpness", "gaps", "variance"]
    assert all("template" not in f["layout"] and "plot_bgcolor" not in f["layout"] for f in figs.values())
    hovers = [t["hovertemplate"] for k in ("contour", "surface3d") for t in figs[k]["data"]]
    assert len(hovers) == 1 + 3 * 2 + 2 + 1 + 2  # grid, paths, starts, ends, flows; surface and paths
    assert all("a = %{x" in h and "b = %{y" in h for h in hovers)
    assert figs["contour"]["layout"]["xaxis"]["title"]["text"] == "a: distance along unit d1"


def _cells(page_html) -> dict:
    table = page_html.split('id="runs"')[1].split("</table>")[0]
    return {r[0]: r[1:] for r in (re.findall(r"<td>([^<]*)</td>", row) for row in table.split("<tr>")) if r}


def test_the_runs_table_gives_each_ends_gap_and_distance(computed, page_html):
    """The two columns are at each run's end (they differ per optimizer): the distance from the end to
    its least-squares projection on the plane, and the loss gap there, computed here from the parameters;
    the shared start is given once, under the table; a and b are distances along unit directions (so said)."""
    d = computed
    flat = lambda tree: np.concatenate([np.ravel(v) for v in jax.tree.leaves(tree)])  # noqa: E731
    origin, D = flat(d.plane.origin), np.stack([flat(d.plane.d1), flat(d.plane.d2)], axis=1)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1, rtol=1e-10)  # the page's "unit directions"
    unravel = ravel_pytree(d.plane.origin)[1]
    cells = _cells(page_html)

    def truth(opt, i):
        x = flat(jax.tree.map(lambda v: v[i], d.trajectories[opt].params))
        on = origin + D @ np.linalg.lstsq(D, x - origin, rcond=None)[0]
        f = lambda v: float(d.problem.full_loss(unravel(jnp.asarray(v))))  # noqa: E731
        return abs(f(x) - f(on)), float(np.linalg.norm(x - on))

    for opt in ("gd", "adam"):
        gap, dist = truth(opt, -1)
        np.testing.assert_allclose([float(c) for c in cells[opt][4:6]], [gap, dist], rtol=1e-3, atol=1e-9)
    assert float(cells["gd"][5]) < 1e-9 < float(cells["adam"][5]) and cells["gd"][4] != cells["adam"][4]
    said = re.search(r"Every run starts at one point \(○\), ([-\d.e+]+) from the plane, where the true loss is "
                     r"([-\d.e+]+) and the loss at its projection ([-\d.e+]+)\.", page_html).groups()
    gap, dist = truth("adam", 0)
    np.testing.assert_allclose([float(said[0]), abs(float(said[1]) - float(said[2]))], [dist, gap], rtol=2e-3)
    assert "along two orthogonal unit directions" in page_html


@pytest.mark.parametrize("explained, walk, verdict", [
    ((0.61, 0.30), (0.615, 0.155), "yes"),  # 9 % off the plane against the walk's 23 %: at most half
    ((0.70, 0.186), (0.615, 0.155), "yes"),  # 11.4 % off, just under half the walk's 23 %
    ((0.70, 0.16), (0.615, 0.155), "partly"),  # 14 %: less than 23 %, more than half
    ((0.64, 0.181), (0.615, 0.155), "partly"),  # 82.1 % explained: 5.1 points above the walk's 77 %
    ((0.64, 0.179), (0.615, 0.155), "no"),  # 4.9 points above the walk: within a walk's spread
    ((0.40, 0.20), (0.615, 0.155), "no"),  # below the walk
])
def test_the_planes_verdict_follows_its_rule(explained, walk, verdict):
    from jaxgd.app.landscape_page import plane_verdict

    assert plane_verdict(np.array(explained), np.array(walk)) == verdict


def test_the_page_gives_the_planes_verdict(computed, page_html):
    e, w = float(np.sum(computed.explained)), float(np.sum(computed.random_walk_explained))
    want = "no" if e < w + 0.05 else "yes" if 1 - e <= (1 - w) / 2 else "partly"  # the rule, restated
    said = [v for v in ("Yes", "Partly", "No") if f"<b>{v}:</b>" in page_html]
    assert said == [want.capitalize()]
    assert f"the paths leave {100 * (1 - e):.1f}&nbsp;% of their variance off the plane" in page_html
