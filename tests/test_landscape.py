"""``jaxgd landscape`` and ``loss_surface`` on a plane: a real model's landscape, its files, and
that what is drawn is what was computed. (Bad invocations are in test_robustness.py's table.)"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
    html = (out / "landscape.html").read_text()
    assert "<script" in html and "https://" not in html.split("<body>")[1]  # offline
    assert 'id="sharpness"' in html and 'id="variance"' not in html and "Largest gap" in html
