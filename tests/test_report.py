"""The report: its files (strict JSON, npz, CSV, PNG, GIF), its figures, its configuration."""

import json
from pathlib import Path

import numpy as np
import pytest

from jaxgd import plots
from jaxgd.app import config, report
from jaxgd.app.plan import plan

pytestmark = pytest.mark.xdist_group("report")  # its module fixtures are made once (make test: --dist loadgroup)

SMALL = config.ReportConfig(optimizers=("gd", "adam"), grid=21, sweep_points=20)


@pytest.fixture(scope="module")
def small():
    return report.compute(plan(config.check(SMALL)))


@pytest.fixture(scope="module")
def written(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    files = report.write(small, out, png=True, gif=True)
    return out, files


def _strict_json(text):
    def bad(c):
        raise ValueError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=bad)


def test_runs_follow_the_presets_and_share_orders(small):
    assert [(r.optimizer, r.mode.name) for r in small.runs] == [
        (o, m) for o in ("gd", "adam") for m in ("full", "sgd", "minibatch")]
    gd_full = small.runs[0]
    assert (gd_full.lr, gd_full.epochs, gd_full.traj.steps) == (0.05, 20, 20)
    np.testing.assert_allclose(gd_full.traj.params.b[-1], 1.7842334540943074, rtol=1e-12)
    seeds = {r.mode.name: r.mode.seed for r in small.runs}
    assert seeds == {"full": 0, "sgd": 2, "minibatch": 1}


def test_files_written_atomically(written):
    out, files = written
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["results.json", "results.npz", "metrics.csv", "report.html", "data.png", "contour.png",
                            "loss.png", "surface3d.png", "sweep.png", "diagnostics.png", "paths.gif"])
    assert sorted(p.name for p in files) == names  # and no temporary file is left


def test_results_json(written, small):
    out, _ = written
    doc = _strict_json((out / "results.json").read_text())
    assert doc["config"]["optimizers"] == ["gd", "adam"] and doc["config"]["grid"] == 21
    assert doc["meta"]["dtype"] == "float64" and {"jax", "jaxlib", "optax", "numpy", "jaxgd"} <= set(doc["meta"]["versions"])
    assert len(doc["runs"]) == 6
    r = doc["runs"][1]
    assert (r["optimizer"], r["mode"], r["seed"], r["steps"], r["batch_size"]) == ("gd", "sgd", 2, 102, 1)
    assert len(r["params"]["w"]) == 103 and len(r["batch_loss"]) == 102
    assert r["final_w"] == pytest.approx(1.9310482368920623, rel=1e-12)
    assert doc["grad_check"]["max_rel_error"] < 1e-12


def test_results_npz_and_csv_agree_with_json(written):
    out, _ = written
    doc = _strict_json((out / "results.json").read_text())
    z = np.load(out / "results.npz")
    assert z["surface"].shape == (21, 21)
    np.testing.assert_array_equal(z["adam/minibatch/w"], doc["runs"][5]["params"]["w"])
    meta = json.loads(str(z["meta_json"]))
    assert meta["config"] == doc["config"]
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("# jaxgd report: ") and json.loads(lines[0][16:])["config"] == doc["config"]
    import csv

    rows = list(csv.DictReader(lines[1:]))
    assert len(rows) == sum(r["steps"] + 1 for r in doc["runs"])
    last_sgd = [row for row in rows if row["optimizer"] == "gd" and row["mode"] == "sgd"][-1]
    assert (last_sgd["step"], float(last_sgd["w"])) == ("102", doc["runs"][1]["final_w"])
    assert last_sgd["batch_loss"] == ""  # the final point takes no step
    adam = [row for row in rows if row["optimizer"] == "adam" and row["mode"] == "full"]
    assert float(adam[0]["m_w"]) == doc["runs"][3]["first_moment"]["w"][0] and adam[0]["v_b"] != ""
    assert doc["runs"][0]["first_moment"] is None and last_sgd["m_w"] == ""  # gd keeps no moments
    assert "adam/full/second_moment_b" in z.files


def test_pngs_and_gif_are_images(written):
    from PIL import Image

    out, _ = written
    for name in ("data.png", "contour.png", "loss.png", "surface3d.png"):
        im = Image.open(out / name)
        assert im.format == "PNG" and im.size[0] > 400
    gif = Image.open(out / "paths.gif")
    assert gif.format == "GIF" and gif.n_frames > 10


def _page_data(html: str) -> dict:
    """The JSON object a report page draws from (gzip + base64 in its ``jaxgd-data`` script)."""
    import base64
    import gzip
    import re

    b64 = re.search(r'<script id="jaxgd-data" type="application/octet-stream">([^<]*)</script>', html).group(1)
    return _strict_json(gzip.decompress(base64.b64decode(b64)).decode("utf-8"))


def test_html_is_self_contained(written, small):
    out, _ = written
    html = (out / "report.html").read_text()
    import base64
    import gzip
    import re

    assert re.findall(r"<script[^>]*\ssrc=", html) == []  # every script is inline: nothing to fetch
    assert re.findall(r"https?://(?!www\.w3\.org)", html.split('<script id="plotly-gz"')[0]) == []
    packed = re.search(r'<script id="plotly-gz" type="application/octet-stream">([^<]*)</script>', html).group(1)
    from plotly.offline import get_plotlyjs

    assert gzip.decompress(base64.b64decode(packed)).decode("utf-8") == get_plotlyjs()  # plotly.js, whole
    for fig_id in ("data", "surface3d", "contour", "loss", "diagnostics", "sweep", "whatif", "cloud", "spread",
                   "batch-phase", "spread-batch"):
        assert f'id="{fig_id}"' in html
    assert 'id="phase"' not in html  # heavy ball's phase diagram comes with momentum among the optimizers
    assert 'id="gradcheck"' in html and 'id="runs"' in html and 'id="sweep-boundaries"' in html
    assert "2/λmax = 0.11538" in html and "β = 0.2429" in html  # theory stated
    assert '<meta name="viewport"' in html
    D = _page_data(html)
    assert [r["label"] for r in D["runs"]] == [r.label for r in small.runs]
    assert len(D["runs"]) == 6 and {"grid", "minima", "sweep", "whatif", "cloud", "batchPhase"} <= set(D)
    assert "phase" not in D and "basins" not in D
    bp = D["batchPhase"]  # lr × every batch size 1 … m, the theory's line at full-batch gd's 2/λmax
    assert bp["batch_sizes"] == list(range(1, 52)) and len(bp["lrs"]) == 100 and len(bp["final_loss"][0]) == 51
    assert bp["limit"] == pytest.approx(0.11538461538, rel=5e-6)
    assert bp["steps"][0] == [bp["epochs"] * -(-51 // s) for s in range(1, 52)]
    sweep = D["sweep"]["layout"]  # plotly_figs.sweep_spec's figure: the theory's black line at 2/λmax, labelled
    limit = [s["x0"] for s in sweep["shapes"] if s["line"] == {"color": "black", "width": 2}]
    assert limit == [pytest.approx(0.11538461538, rel=5e-6)]  # 6 significant digits on the page
    assert "2/λmax = 0.1154" in [a["text"] for a in sweep["annotations"]]
    run = D["runs"][0]
    assert run["t"] == list(range(21)) and len(run["w"]) == 21 and run["state"] == "did not converge"


def test_packed_plotly_is_kept_in_the_folder_given(tmp_path, monkeypatch):
    """plotly_packed(pack_dir) packs once per process and keeps the pack in ``pack_dir`` for the next
    process: a second process (the memo emptied) reads it back from there rather than packing again."""
    from jaxgd.app import program_cache, shell

    monkeypatch.setattr(shell, "_PACKED", {})
    packed = shell.plotly_packed(tmp_path / "page")
    [kept] = (tmp_path / "page").iterdir()
    assert kept.name.startswith("plotly-") and kept.read_text("ascii").endswith("\n" + packed)  # after its header
    header = kept.read_text("ascii").split("\n")[0]
    assert program_cache.write_entry(kept, header, b"read from the folder")  # a pack of the same header
    monkeypatch.setattr(shell, "_PACKED", {})
    assert shell.plotly_packed(tmp_path / "page") == "read from the folder"
    assert shell.plotly_packed() == "read from the folder"  # then once per process, whatever the folder
    monkeypatch.setattr(shell, "_PACKED", {})
    assert shell.plotly_packed() == packed  # no folder: packed afresh


def test_page_numbers_rounded_and_paths_thinned():
    from jaxgd.app.page import MAX_POINTS
    from jaxgd.app.files import dumps
    from jaxgd.app.shell import SIG
    from jaxgd.planes import evenly as thin

    def to_json(obj):
        return dumps(obj, digits=SIG)

    def _num(x):  # one number on its own, as the page's numbers are pinned: %.6g, null where not finite
        return f"{x:.6g}" if np.isfinite(x) else "null"

    assert to_json({"a": np.array([1 / 3, np.inf, np.nan, 1e300, -2.0]), "n": np.int32(7), "b": True,
                    "x": [np.float32(0.1), None, "é", 3, np.bool_(False), np.array([[1, 2]])]}) == \
        '{"a":[0.333333,null,null,1e+300,-2],"n":7,"b":true,"x":[0.1,null,"\\u00e9",3,false,[[1,2]]]}'
    # arrays (one format call) and single numbers agree with _num on every kind of value, in both dtypes
    v = np.array([1.0, np.nan, -np.inf, np.inf, 1e300, -2.5e-17, 0.0, -0.0, 123456789.0, 0.1, 5e-324])
    with np.errstate(over="ignore"):
        v32 = v.astype(np.float32)
    for a in (v, v32, v[:0], v[:1]):
        assert to_json(a) == "[" + ",".join(map(_num, a.tolist())) + "]"
        assert [to_json(x) for x in a] == [_num(x) for x in a.tolist()]
    assert thin(21, MAX_POINTS).tolist() == list(range(21))
    t = thin(204_001, MAX_POINTS)
    assert len(t) <= MAX_POINTS and t[0] == 0 and t[-1] == 204_000 and np.all(np.diff(t) > 0)


def test_long_runs_keep_the_page_bounded(tmp_path):
    """600 epochs (30,600 SGD steps): the page draws at most MAX_POINTS points per path and stays
    small; results.npz keeps every step."""
    from jaxgd.app.page import MAX_POINTS

    data = report.compute(plan(config.check(config.ReportConfig(optimizers=("gd",), epochs=600, grid=21,
                                                                  sweep=False))))
    report.write(data, tmp_path, png=False)
    html = (tmp_path / "report.html").read_text()
    D = _page_data(html)
    assert max(len(r["w"]) for r in D["runs"]) <= MAX_POINTS
    assert [r["t"][-1] for r in D["runs"]] == [600, 30_600, 4_200]
    assert len(html) < 3_000_000
    assert np.load(tmp_path / "results.npz")["gd/sgd/loss"].shape == (30_601,)  # every step
    doc = _strict_json((tmp_path / "results.json").read_text())
    kept = doc["runs"][1]["steps_kept"]
    assert doc["runs"][0]["steps_kept"] == "all" and len(doc["runs"][0]["loss"]) == 601
    assert kept[0] == 0 and kept[-1] == 30_600 and len(kept) <= 2001 and len(doc["runs"][1]["loss"]) == len(kept)
    np.testing.assert_allclose(doc["runs"][1]["loss"], np.load(tmp_path / "results.npz")["gd/sgd/loss"][kept])
    assert (tmp_path / "results.json").stat().st_size < 2_000_000 and (tmp_path / "metrics.csv").stat().st_size < 2_000_000


def test_folded_full_batch_runs_equal_run(small):
    """With the sweep section on, the full-batch runs are extra runs of the lr sweeps: the same numbers as run()."""
    import jaxgd

    for r in small.runs:
        if r.mode.batch_size is None:
            t = jaxgd.run(small.problem, r.optimizer, lr=r.lr, epochs=r.epochs)
            # vmap sums in another order: a gradient component that cancels to -0.0038 from terms of
            # ~50 differs by 7e-15 (a few ulp of the terms), so the tolerance is relative to each array's scale
            for a, b in zip(jax_leaves(r.traj), jax_leaves(t)):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.nanmax(np.abs(b), initial=0.0))


def test_flows_beside_full_batch_gd(small, written):
    """gd's flows at its lr for its steps from its start, each jaxgd.flows' own numbers (one call per
    kind); on the notebook's quadratic no central flow (it is gradient flow there). The page carries
    them at gd's drawn steps; results.npz every step."""
    from jaxgd import flows
    from jaxgd.app.page import page_data

    gd = small.runs[small.flow_run]
    assert (gd.optimizer, gd.mode.name, gd.lr, gd.traj.steps) == ("gd", "full", 0.05, 20)
    assert list(small.flows) == ["gradient", "modified"]
    D = page_data(small)["flows"]
    assert D["run"] == small.flow_run and D["lr"] == 0.05 and [f["kind"] for f in D["items"]] == list(small.flows)
    with np.load(written[0] / "results.npz") as z:
        for f, (kind, t) in zip(D["items"], small.flows.items()):
            ref = {"gradient": flows.gradient_flow, "modified": flows.modified_flow}[kind](small.problem, lr=0.05, steps=20)
            for got in (t.params, (z[f"flow/{kind}/w"], z[f"flow/{kind}/b"]), (f["w"], f["b"])):
                np.testing.assert_allclose(got[0], ref.params.w, rtol=1e-12)
                np.testing.assert_allclose(got[1], ref.params.b, rtol=1e-12)
            assert (f["w"][0], f["b"][0]) == (gd.traj.params.w[0], gd.traj.params.b[0])  # gd's start
    assert "modified flow</b> of L + (η/4)‖∇L‖²" in (written[0] / "report.html").read_text()


@pytest.mark.parametrize("problem,kinds", [("notebook", ("gradient", "modified")), ("rosenbrock", ("gradient", "modified", "central"))])
def test_flow_kinds(problem, kinds):
    """The central flow where the loss is not quadratic; none without a full-batch gd run of plain lr."""
    p = plan(config.check(config.ReportConfig(problem=problem, optimizers=("adam", "gd"))))
    assert report.flow_kinds(p) == (1 if problem == "rosenbrock" else 3, kinds)
    assert report.flow_kinds(plan(config.check(config.ReportConfig(problem=problem, optimizers=("adam",))))) == (None, ())


def test_basics_are_the_library_functions_numbers(small):
    """The report's one compiled call gives loss_surface's, grad_check's and theory's numbers."""
    import jaxgd

    d = small
    np.testing.assert_array_equal(d.surface, np.asarray(jaxgd.loss_surface(d.problem, d.w, d.b)))
    gc = jaxgd.grad_check(d.problem, d.w, d.b)
    assert (d.grad_check.max_abs_error, d.grad_check.max_rel_error, d.grad_check.worst) == \
        (gc.max_abs_error, gc.max_rel_error, gc.worst)
    th = jaxgd.theory(d.problem)
    np.testing.assert_array_equal(d.theory.hessian, th.hessian)
    assert d.theory.stability_limit == th.stability_limit
    start = float(d.problem.full_loss(d.problem.init))
    assert d.losses["start"] == pytest.approx(start, rel=1e-14)
    assert d.losses["minima"] == pytest.approx([float(d.problem.full_loss(jaxgd.Params(*m))) for m in d.problem.minima],
                                               abs=1e-12)


def jax_leaves(t):
    import jax

    return [np.asarray(x, np.float64) for x in jax.tree.leaves(t)]


@pytest.mark.parametrize("loss, w, b, diverged, state", [
    ([10.0, 1.0, 1e-9], 2.0, 3.0, -1, "converged"),
    ([10.0, 1.0, 0.5], 2.0, 1.8, -1, "did not converge"),  # still 1.2 from (2, 3) on a 16-wide plot
    ([10.0, 50.0, 20.0], 2.0, 3.0, -1, "did not converge"),  # the loss rose
    ([10.0, 1e9, np.inf], np.nan, np.nan, 1, "diverged"),
])
def test_run_status(loss, w, b, diverged, state):
    from jaxgd.app.summary import run_status
    from jaxgd.engine import Trajectory
    from jaxgd.model import Params

    n = len(loss)
    t = Trajectory(Params(np.full(n, w), np.full(n, b)), np.array(loss), np.zeros(n - 1), np.zeros(n - 1),
                   np.zeros(n - 1), np.int32(diverged), np.int32(n - 1))
    assert run_status(t, [(2.0, 3.0)], 16.0)[0] == state
    if state == "converged":  # with no minimum known (the saddle's a² − b²), there is nothing to converge to
        state, why = run_status(t, (), 16.0)
        assert state == "did not converge" and why.startswith("there is no minimum to reach"), why


def test_a_problem_without_a_minimum_gets_a_report(tmp_path):
    """The saddle a² − b² (quadratic, no minimum): it was refused with an internal name ("at must be two
    finite numbers (w, b), got None"); no theory is drawn, and no run is called converged."""
    data = report.compute(plan(config.check(config.ReportConfig(problem="saddle", optimizers=("gd",), epochs=400,
                                                                  grid=11, sweep=False))))
    assert data.theory is None and float(data.runs[0].traj.loss[-1]) < -1  # fell along b, unbounded below
    report.write(data, tmp_path, png=False)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert {r["state"] for r in doc["runs"]} == {"did not converge"}


def test_diverged_runs_stay_valid_everywhere(tmp_path):
    data = report.compute(plan(config.check(config.ReportConfig(optimizers=("gd",), lr=100.0, epochs=4, grid=11,
                                                                  sweep=False))))
    assert all(int(r.traj.diverged_at) > 0 for r in data.runs)
    report.write(data, tmp_path, png=True)
    doc = _strict_json((tmp_path / "results.json").read_text())
    r = doc["runs"][0]
    k = r["diverged_at"]
    assert r["loss"][k] > 1e6 * r["loss"][0] and r["loss"][k - 1] <= 1e6 * r["loss"][0]
    sgd = doc["runs"][1]  # 204 steps at lr 100 overflow to inf and nan, written as null
    assert sgd["final_w"] is None and sgd["loss"][-1] is None
    assert f"diverged at step {k}" in (tmp_path / "report.html").read_text()


def test_same_config_gives_identical_outputs(small, tmp_path):
    again = report.compute(plan(config.check(SMALL)))
    a, b = tmp_path / "a", tmp_path / "b"
    report.write(small, a, png=False)
    report.write(again, b, png=False)
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    za, zb = np.load(a / "results.npz"), np.load(b / "results.npz")
    assert za.files == zb.files
    for k in za.files:
        np.testing.assert_array_equal(za[k], zb[k])


# ----------------------------------------------------------------------------- figures


def test_plotly_surface_orientation_on_a_non_square_grid():
    w, b = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])
    S = w[:, None] + 100 * b[None, :]  # S[i, j] = w_i + 100 b_j
    path = plots.Path("p", np.array([0.0, 2.0]), np.array([10.0, 20.0]), np.array([1000.0, 2002.0]))
    fig = plots.plotly_surface(w, b, S, [path])
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 3)  # plotly: z[row] runs along y = b
    for i in range(3):
        for j in range(2):
            assert z[j, i] == S[i, j]
    assert fig.layout.scene.xaxis.title.text == "W" and fig.layout.scene.yaxis.title.text == "b"
    assert [t.type for t in fig.data] == ["surface", "scatter3d"]
    assert len(fig.frames) == 2 and all(f.traces == (1,) for f in fig.frames)


def test_plot_functions_return_figures_without_pyplot(small):
    from matplotlib.figure import Figure

    ps = report.paths(small)
    x, y = (np.asarray(a) for a in small.problem.data)
    figs = [plots.mpl_data(x, y, small.noisy_y), plots.mpl_contour(small.w, small.b, small.surface, ps),
            plots.mpl_loss_curves(ps), plots.mpl_surface(small.w, small.b, small.surface, ps)]
    assert all(isinstance(f, Figure) for f in figs)
    import sys

    if "matplotlib.pyplot" in sys.modules:  # another library may have imported it; we made no figure there
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
    import plotly.graph_objects as go

    assert isinstance(plots.plotly_loss_curves(ps), go.Figure)
    frames = plots.mpl_frames(small.w, small.b, small.surface, ps, max_frames=5)
    assert len(frames) == 5 and frames[0].shape[2] == 3 and not np.array_equal(frames[0], frames[-1])


def test_paths_draw_their_finite_part():
    p = plots.Path("p", np.array([0.0, 1.0, np.inf, np.nan]), np.zeros(4), np.array([1.0, 2.0, np.inf, np.nan]),
                   np.array([1.0, 2.0, np.inf]))
    f = p.finite()
    assert f.w.tolist() == [0.0, 1.0] and f.batch_loss.tolist() == [1.0]
    assert p._replace(diverged_at=1).finite().w.tolist() == [0.0]


# ----------------------------------------------------------------------------- CLI and config


def test_cli_report_with_config_file_and_flag_override(tmp_path, cli):
    cfg = tmp_path / "c.toml"
    cfg.write_text('optimizers = ["gd", "rmsprop"]\ngrid = 15\nepochs = 3\npng = false\nsweep = false\n')
    out = tmp_path / "rep"
    code, stdout, err = cli(["report", "--config", str(cfg), "--epochs", "2", "--out", str(out)])
    assert code == 0, err
    doc = _strict_json((out / "results.json").read_text())
    assert doc["config"]["optimizers"] == ["gd", "rmsprop"] and doc["config"]["grid"] == 15
    assert doc["config"]["epochs"] == 2  # the flag overrides the file
    assert not (out / "contour.png").exists()
    assert "rmsprop" in stdout and "wrote" in stdout


def test_notebook_figures_script(tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "notebook_figures.py"
    spec = importlib.util.spec_from_file_location("notebook_figures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    written = mod.main([str(tmp_path)])
    names = sorted(p.name for p in written)
    assert names == sorted(["cell05_data.png", "cell223_surface.png", "cell272_surface.html",
                            "cell314_batch_gd.html", "cell316_sgd.html", "cell318_minibatch.html"])
    assert (tmp_path / "plotly.min.js").exists()  # written once beside the pages: offline
    page = (tmp_path / "cell318_minibatch.html").read_text()
    assert '<script src="plotly.min.js"' in page.replace("charset=\"utf-8\" ", "")
    fig = mod.cell318_minibatch()
    assert fig.layout.scene.xaxis.title.text == "W" and fig.layout.scene.yaxis.title.text == "b"
    # W on the W axis (the notebook plotted b there): the minibatch path's x are its W values
    t = mod.minibatch()
    np.testing.assert_array_equal(np.asarray(fig.data[3].x), np.asarray(t.params.w))
    np.testing.assert_allclose(float(t.final.w), 2.527263422032023, rtol=1e-12)


def test_the_sweep_text_points_to_a_theory_line_only_where_one_is_drawn(written, tmp_path):
    """The sweep's "Look for" names the theory's line on a quadratic (the notebook), not on himmelblau,
    whose sweep draws none (issue 22)."""
    import re

    def text(html):  # what the page says, without its scripts and tags
        return " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", html, flags=re.S)).split())

    cfg = config.ReportConfig(problem="himmelblau", optimizers=("gd",), grid=21, sweep_points=10, sweep_epochs=20,
                              epochs=20)
    html = report.page(report.compute(plan(config.check(cfg))), tmp_path)
    black = [s for s in _page_data(html)["sweep"]["layout"].get("shapes", []) if s["line"].get("color") == "black"]
    assert 'id="sweep"' in html and black == []  # a sweep, and no theory line on it
    assert "theory's line" not in text(html) and "where runs start to diverge: where the path" in text(html)
    assert "theory's line" in text((written[0] / "report.html").read_text())


def test_sweep_theory_labels_sit_on_their_lines():
    """On the log lr axis a label's x is log10 of the value, while its line's is the value itself."""
    fig = plots.plotly_figs.sweep(np.geomspace(1e-3, 10, 9), {"gd": np.ones(9)}, {"gd": -np.ones(9, int)},
                                  stability_limit=0.11538, optimal_lr=0.10345)
    lines = sorted(s.x0 for s in fig.layout.shapes)
    labels = {a.text: a.x for a in fig.layout.annotations}
    assert lines == pytest.approx([0.10345, 0.11538])
    assert labels == pytest.approx({"2/λmax = 0.1154": np.log10(0.11538), "2/(λmin+λmax) = 0.1035": np.log10(0.10345)})


# six significant digits; an integer reads as one ("412", not "412.000000"; also 412 computed as 411.99999999999994),
# and trailing zeros go only where the short number is the value (1.9999998 stays "2.00000": a "2" would read as
# exact); scientific outside [1e-3, 1e6)
@pytest.mark.parametrize("v,text", [(412.0, "412"), (411.99999999999994, "412"), (412.00003, "412.000"), (2.0, "2"), (-155.564453, "-155.564"), (0.0, "0"), (-0.0, "0"),
                                    (1.9999998, "2.00000"), (2.5, "2.5"), (0.0048800123, "0.00488001"), (0.001, "0.001"),
                                    (999999.7, "1.00000e+06"), (1234567.0, "1.23457e+06"), (1.77e300, "1.77e+300"),
                                    (-5.4e13, "-5.4e+13"), (2e-27, "2e-27"), (2.1000003e-27, "2.10000e-27"),
                                    (float("nan"), "—"), (float("inf"), "—"), (None, "—")])
def test_numbers_are_formatted_for_people(v, text):
    from jaxgd.app.summary import number

    assert number(v) == text


@pytest.mark.parametrize("w,b,text", [(2.0, -0.4868, "y = 2x − 0.4868"), (2.0, 3.0, "y = 2x + 3"),
                                      (-4.0, -7.0, "y = −4x − 7"), (1.5, 0.0, "y = 1.5x"),
                                      (1.99999, 0.123456, "y = 2.000x + 0.1235")])
def test_a_line_reads_with_its_sign(w, b, text):
    """The data's line as the page and the PNG name it: never "y = 2x + -0.4868"."""
    from jaxgd.plots.common import line_text

    assert line_text(w, b) == text


def test_big_data_skips_the_sweeps_and_takes_one_epoch(tmp_path, monkeypatch):
    """On more than BIG_DATA examples (10⁴; 100 here) the report's minibatch runs take one epoch,
    the sweeps and explorables are skipped (the page says so) and the gradient check thins its grid."""
    from jaxgd.app import plan as plan_module

    monkeypatch.setattr(plan_module, "BIG_DATA", 100)
    monkeypatch.setattr(report, "GRADCHECK_BUDGET", 300 * 121)
    x = np.linspace(-1, 1, 300)
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[x, 3 * x - 1], delimiter=",")
    data = report.compute(plan(config.check(config.ReportConfig(optimizers=("gd",), data=str(path), grid=21))))
    assert [r.epochs for r in data.runs] == [20, 1, 1] and data.scan is None and data.explore == {}
    assert np.shape(data.grad_check.autodiff.w) == (11, 11)  # every 2nd of 21 points
    report.write(data, tmp_path / "out", png=False)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Skipped: the data have 300 examples" in html and "11×11 points of the grid" in html


def test_ctrl_c_drops_the_queued_work(monkeypatch):
    """Ctrl-C during ``compute`` (a KeyboardInterrupt in the main thread as it waits for the work, where
    SIGINT raises it) stops the report's work: the queued runs are dropped and a chunked run ends at its
    next chunk. (Before, the thread pool's exit ran every queued run first: 223 more progress calls and
    27 s on a 20,000-epoch report.) The interrupt is raised at the main thread's wait, not by a signal
    (which Python drops where it lands in a garbage-collection callback), and the worker that asks for
    it waits until ``compute`` has seen it: nothing here depends on timing."""
    from concurrent.futures import TimeoutError as Pending
    import threading

    asked, seen = threading.Event(), threading.Event()

    class Stop(threading.Event):  # compute's stop flag, which also tells the worker below
        def set(self):
            super().set()
            seen.set()

    def result(f):  # report._result: the main thread's wait, interrupted once asked
        while True:
            if asked.is_set():
                raise KeyboardInterrupt
            try:
                return f.result(timeout=0.01)
            except Pending:
                pass

    monkeypatch.setattr(report, "Event", Stop)
    monkeypatch.setattr(report, "_result", result)
    calls = []

    def callback(done, total):
        calls.append(done)
        if len(calls) == 2:
            asked.set()
            assert seen.wait(120), "compute did not stop its work on Ctrl-C"

    p = plan(config.check(config.ReportConfig(optimizers=("gd", "adam"), epochs=600, grid=11, sweep=False)))
    with pytest.raises(KeyboardInterrupt):
        report.compute(p, callback=callback, threads=1)
    assert len(calls) == 2  # no progress after the Ctrl-C: every later report() raised before calling back


# --- issue 22: the texts and panels depend on the problem, so that nothing on a page talks about what is not drawn

def _words(html):
    """What a page says, without its scripts and tags."""
    import re

    return " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", html, flags=re.S)).split())


@pytest.fixture(scope="module")
def saddle_page(tmp_path_factory):
    """``(data, html)`` of the saddle a² − b², no sweeps."""
    data = report.compute(plan(config.check(config.ReportConfig(problem="saddle", optimizers=("gd",), grid=11, epochs=400,
                                                                  sweep=False))))
    return data, report.page(data, tmp_path_factory.mktemp("saddle"))


def test_a_landscape_page_talks_of_no_data(saddle_page):
    """A landscape has no data, hence one sampling mode and no batch: "How to read" named ◆ SGD and
    ■ minibatch and the batch's gradient, the loss section a batch-loss panel, the contour SGD's noise."""
    words = _words(saddle_page[1])
    for absent in ("SGD", "minibatch", "◆", "■", "batch's gradient", "data's line", "noise of the batch losses",
                   "Left:", "Right:"):
        assert absent not in words, absent
    assert "g: the gradient at θ" in words and "● current point," in words
    assert "there is no batch loss to draw apart from it" in words


def test_the_saddle_page_speaks_of_a_saddle(saddle_page):
    """The saddle a² − b² has no minimum and no basins: its page said "which basin each path falls
    into", "zig-zags ... SGD's noise near the minimum" and drew the loss on a log axis, which drops
    every negative loss. Its loss views now draw the loss as it is, on a linear axis."""
    data, html = saddle_page
    words = _words(html)
    for absent in ("basin", "minimum at", "near the minimum", "☆", "zig-zag"):
        assert absent not in words, absent
    assert "Look for: the saddle at (0, 0)" in words and "Linear scale: this loss has no minimum" in words
    D = _page_data(html)
    assert D["lossMin"] is None and D["lossRange"] is None and D["lossTitle"] == "loss"
    assert float(data.runs[0].traj.loss[-1]) < 0  # the losses the log axis dropped


def test_a_loss_without_minimum_sweeps_on_a_linear_axis():
    """A sweep's negative final losses were drawn at the log axis's floor 1e-30."""
    from jaxgd.plots.plotly_figs import sweep_spec

    spec = sweep_spec(np.array([0.1, 1.0, 10.0]), {"gd": np.array([-1.0, -50.0, 7.0])}, {"gd": np.array([-1, -1, 3])},
                      log=False, ylabel="final loss")
    assert spec["data"][0]["y"].tolist() == [-1.0, -50.0] and "type" not in spec["layout"]["yaxis"]
    assert spec["layout"]["yaxis"]["title"]["text"] == "final loss" and spec["layout"]["xaxis"]["type"] == "log"


CSV_ROWS = [(1, 47), (2, 52.5), (4, 58), (5, 66), (7, 73), (8, 81.5)]


@pytest.fixture(scope="module")
def csv_lr100_page(tmp_path_factory):
    """``(data, html)`` of a noisy CSV file with the header ``hours,score``, fitted at --lr 100 (every run diverges)."""
    d = tmp_path_factory.mktemp("csv")
    (d / "scores.csv").write_text("hours,score\n" + "".join(f"{h},{s}\n" for h, s in CSV_ROWS))
    data = report.compute(plan(config.check(config.ReportConfig(optimizers=("gd",), data=str(d / "scores.csv"), lr=100.0,
                                                                  epochs=4, grid=11, sweep=False))))
    return data, report.page(data, d)


def test_a_csv_page_uses_the_files_column_names(csv_lr100_page):
    """A file with the header ``hours,score``: the page said x and y."""
    from jaxgd.plots.common import line_text

    data, html = csv_lr100_page
    assert data.problem.data_names == ("hours", "score")
    D = _page_data(html)
    w, b = np.polyfit(*zip(*CSV_ROWS), 1)
    assert D["data"]["names"] == ["hours", "score"] and D["data"]["line"]["text"] == line_text(w, b, names=("hours", "score"))
    assert line_text(w, b, names=("hours", "score")).startswith(f"score = {w:.4g}·hours + ")
    words = _words(html)
    assert "Fitting score = W·hours + b" in words and "dashed: the line score = W·hours + b" in words
    assert line_text(2.0, 3.0) == "y = 2x + 3"  # no header: x and y, as before


def test_loss_views_draw_the_loss_above_its_minimum_on_noisy_data(csv_lr100_page):
    """On noisy data the loss cannot go below the best line's, so log-loss views read flat at that
    floor: they draw loss − min, and their axes say so. The minimum is checked against NumPy's least squares."""
    from types import SimpleNamespace

    from jaxgd.app.page import loss_range, sweep_figure

    data, html = csv_lr100_page
    x, y = (np.array(v, np.float64) for v in zip(*CSV_ROWS))
    best = float(np.mean((np.polyval(np.polyfit(x, y, 1), x) - y) ** 2))
    D = _page_data(html)
    assert best > 1 and D["lossMin"] == pytest.approx(best, rel=1e-5)
    assert D["lossTitle"] == f"loss − min (min = {best:.6g})"
    # the axis's top: 3× the largest loss − min of any run before it diverged (figures' rule, on loss − min)
    before = [np.asarray(r.traj.loss, np.float64)[:int(r.traj.diverged_at)] - best for r in data.runs]
    assert all(r.traj.diverged_at > 0 for r in data.runs)
    assert D["lossRange"][1] == pytest.approx(np.log10(3 * max(float(np.nanmax(v)) for v in before)), rel=1e-5)
    lo, hi = loss_range([dict(loss=best + np.array([4.0, 1.0, 1e-3]), t=np.arange(3), diverged_at=-1)], best)
    assert (lo, hi) == (pytest.approx(-3), pytest.approx(np.log10(12)))  # 3 × (loss₀ − min), floor at the last
    # under the page's 6 digits' reach (1e-5·|min|), loss − min is floored there, as page.js draws it
    lo, _ = loss_range([dict(loss=best + np.array([4.0, 1e-9]), t=np.arange(2), diverged_at=-1)], best)
    assert lo == pytest.approx(np.log10(best * 1e-5))
    assert "Math.max(v - D.lossMin, RES)" in (Path(report.__file__).parent / "page.js").read_text()
    assert "Log scale of the loss minus its minimum" in _words(html)
    # the sweep: final losses 5, 3, 2 above a minimum of 1.5 are drawn as 3.5, 1.5, 0.5
    scan = SimpleNamespace(lrs=np.array([0.1, 0.2, 0.3]), final_loss={"gd": np.array([5.0, 3.0, 2.0])}, epochs=4,
                           diverged_at={"gd": np.array([-1, -1, -1])}, stability_limit=None, optimal_lr=None)
    sweep = sweep_figure(SimpleNamespace(scan=scan, losses={"minima": [1.5], "start": 9.0}, theory=None, explore={},
                                         runs=[]))
    assert sweep["data"][0]["y"].tolist() == [3.5, 1.5, 0.5] and sweep["layout"]["yaxis"]["type"] == "log"
    assert sweep["layout"]["yaxis"]["title"]["text"] == "final full-data loss − min (min = 1.5)"
    # the notebook's noiseless data: a minimum of about 0, nothing subtracted
    assert sweep_figure(SimpleNamespace(scan=scan, losses={"minima": [1e-29], "start": 9.0}, theory=None,
                                        explore={}, runs=[]))["data"][0]["y"].tolist() == [5.0, 3.0, 2.0]


def test_the_pages_own_learning_rates_are_starred_on_the_sweep():
    """Issue 22, Missing: the page's presets marked on the learning-rate sweep. Each optimizer's
    full-batch lr is a star on its curve, log-log between the stops around it (none outside the
    sweep's range, none for a run in batches)."""
    from types import SimpleNamespace

    from jaxgd.app.page import sweep_figure

    scan = SimpleNamespace(lrs=np.array([0.01, 0.1, 1.0]), final_loss={"gd": np.array([1.0, 1e-4, np.inf]),
                                                                      "adam": np.array([2.0, 2.0, 2.0])}, epochs=4,
                           diverged_at={"gd": np.array([-1, -1, 3]), "adam": np.array([-1, -1, -1])},
                           stability_limit=None, optimal_lr=None)
    run = lambda o, lr, b=None: SimpleNamespace(optimizer=o, lr=lr, config=SimpleNamespace(batch_size=b))  # noqa: E731
    runs = [run("gd", 0.5, 8), run("gd", np.sqrt(0.1 * 0.01)), run("adam", 5.0)]
    fig = sweep_figure(SimpleNamespace(scan=scan, losses={"minima": [0.0], "start": 9.0}, theory=None, explore={}, runs=runs))
    stars = [t for t in fig["data"] if t.get("marker", {}).get("symbol") == "star"]
    assert [t["name"] for t in stars] == ["gd", "this page's runs"]  # adam's 5.0 is past the sweep's 1.0; the key
    assert stars[0]["x"] == [pytest.approx(np.sqrt(1e-3))] and stars[0]["y"] == [pytest.approx(1e-2)]  # halfway, log-log
    assert "★" in fig["layout"]["title"]["text"]
    # no star where the curve is broken by a divergence around the lr (gd at 0.5: the 1.0 stop diverged), nor a word of it
    fig = sweep_figure(SimpleNamespace(scan=scan, losses={"minima": [0.0], "start": 9.0}, theory=None, explore={},
                                       runs=[run("gd", 0.5), run("adam", 5.0)]))
    assert not [t for t in fig["data"] if t.get("marker", {}).get("symbol") == "star"]
    assert "★" not in fig["layout"]["title"]["text"]


def test_diverged_runs_are_named_where_budgets_were_said_to_reach_the_minimum(csv_lr100_page):
    """At --lr 100 the runs table's note said budgets were "chosen so that every path ends near the
    minimum" while every run diverged: it now says which runs did not reach it, and how they ended."""
    data, html = csv_lr100_page
    steps = [int(r.traj.diverged_at) for r in data.runs]
    assert all(s > 0 for s in steps)
    words = _words(html)
    assert "Here 3 of the 3 runs did not end near a minimum: gd (diverged in every mode)." in words
    assert [words.count(f"diverged at step {s}") for s in sorted(set(steps))] == [steps.count(s) for s in sorted(set(steps))]
    # and the "Look for" texts say where the paths go, not how they settle (the screenshot review's lr 100 page)
    assert "swinging from its start towards the data" not in words and "crawl along its floor" not in words
    assert "Look for: the dashed line leaving the data: no run here ends near the best fit" in words
    assert "Look for: where the paths go: no run here ends near the minimum" in words


def test_explorable_texts_name_their_panels_and_explain_their_diagrams(written):
    """The explorables said "Left:"/"Right:" (false on a phone, where the panels stack), drew a grey
    noisy sample that no run fits, and left the lr × batch diagram's paler rows unexplained: those
    batch sizes B whose last batch holds one of the m = 51 examples (51 mod B = 1)."""
    html = (written[0] / "report.html").read_text()
    words, D = _words(html), _page_data(html)
    assert "Left:" not in words and "Right:" not in words
    assert "swinging from its start towards the data" in words and "no run here ends near" not in words  # runs converge
    assert "“Spread of the final point”" in words and "“Spread of the final point against the batch size”" in words
    assert "noisy" not in D["data"] and "noisy sample" not in words and "Y_rand" not in words
    ragged = [B for B in range(2, 52) if 51 % B == 1]
    assert ragged == [2, 5, 10, 25, 50]
    assert "a single example for B = 2, 5, 10, 25, 50 (m mod B = 1, m = 51)" in words and "One row per batch size, 1 … 51." in words


def test_the_lr_beta_diagram_states_its_budget_and_marks_polyaks_optimum(tmp_path):
    """Its budget was not stated, and Polyak's optimum was quoted under the sweep but not marked.
    On 0.1·a² + 2·b² (curvatures 0.2 and 4): β = ((√κ − 1)/(√κ + 1))², lr = 4/(√4 + √0.2)²/(1 − β)."""
    data = report.compute(plan(config.check(config.ReportConfig(problem="ill_conditioned", optimizers=("momentum",),
                                                                  grid=11, epochs=30, sweep_points=10, sweep_epochs=30))))
    html = report.page(data, tmp_path)
    ph = _page_data(html)["phase"]
    k = np.sqrt(4 / 0.2)
    beta = ((k - 1) / (k + 1)) ** 2
    assert ph["steps"] == 30 and ph["polyak"] == pytest.approx([4 / (2 + np.sqrt(0.2)) ** 2 / (1 - beta), beta], rel=1e-5)
    words = _words(html)
    assert "Each cell is one full-batch run of 30 steps" in words
    assert f"The white cross marks Polyak's optimum for heavy ball on this quadratic, β = {beta:.4g}" in words
