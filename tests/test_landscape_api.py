"""``jaxgd.landscape`` from Python: the fields of a Landscape, its files and the page's name for
the model, pca_plane of several paths, span="auto", the sharpness-vs-2/lr figure, and the command
as a thin caller of it (its files hold what the library computes)."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import planes
from jaxgd._checks import ArgumentError
from jaxgd.app import files as jio
from jaxgd.planes import evenly as thin

pytestmark = pytest.mark.xdist_group("landscape")

SIZES = (64, 8, 10)
COUNT = 64 * 8 + 8 + 8 * 10 + 10  # the parameters of a 64-8-10 MLP with biases
EPOCHS = 12
RUNS = {"gd": {"optimizer": "gd", "lr": 0.5, "epochs": EPOCHS, "sharpness_every": 4},
        "adam": {"optimizer": "adam", "lr": 0.02, "epochs": EPOCHS, "sharpness_every": 4}}


def _mlp_problem(data: str, sizes, m=None, seed=0):
    ds = jaxgd.datasets.load(data)
    model = jaxgd.models.mlp(sizes, "tanh", ds.task, "xent")
    x, y = (ds.x, ds.y) if m is None else (ds.x[:m], ds.y[:m])
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(seed)), (x, y))


@pytest.fixture(scope="module")
def problem():
    return _mlp_problem("digits", SIZES, m=200)


@pytest.fixture(scope="module")
def ls(problem):
    return jaxgd.landscape(problem, RUNS, grid=7)


def test_every_field(ls, problem):
    assert isinstance(ls, jaxgd.Landscape) and ls.plane_kind == "pca"
    assert ls.name == ls.model == f"64-8-10 MLP · {COUNT:,} parameters"
    assert list(ls.trajectories) == list(ls.projections) == list(ls.interpolation) == ["gd", "adam"]
    assert ls.a.shape == ls.b.shape == (7,) and ls.surface.shape == (7, 7) and np.isfinite(ls.surface).all()
    assert ls.t.shape == (61,) and ls.t[0] == -0.25 and ls.t[-1] == 1.25
    for k, t in ls.trajectories.items():
        p = ls.projections[k]
        for v in p:
            assert v.shape == (EPOCHS + 1,)
        np.testing.assert_allclose(p.loss, t.loss, rtol=1e-10)  # the true loss at each point of the path
        assert ls.gaps()[k].shape == (EPOCHS + 1,) and (p.distance >= 0).all()
        assert ls.interpolation[k].shape == (61,)
        np.testing.assert_allclose(ls.interpolation[k][np.argmin(np.abs(ls.t - 1))], t.loss[-1], rtol=1e-10)
        assert t.sharpness.shape == (EPOCHS,) and np.isfinite(t.sharpness[::4]).all()
        assert np.isnan(t.sharpness[1::4]).all()  # measured every 4 steps, inside the scan
    assert ls.limits == {"gd": 2 / 0.5, "adam": None}
    assert ls.explained.shape == ls.random_walk_explained.shape == (2,)
    assert 0 < ls.explained[1] <= ls.explained[0] <= 1
    np.testing.assert_allclose(ls.projections["gd"].distance[-1], 0, atol=1e-9)  # through the first run's end
    summary = ls.summary()
    assert summary["gd"]["lr"] == 0.5 and summary["gd"]["steps"] == EPOCHS and summary["adam"]["stability_limit"] is None
    assert summary["gd"]["final_loss"] == float(ls.trajectories["gd"].loss[-1])


def test_trajectories_give_the_same_landscape(ls, problem):
    """The trajectories of the runs, given instead of their settings, give the same numbers."""
    again = jaxgd.landscape(problem, ls.trajectories, grid=7)
    np.testing.assert_array_equal(again.surface, ls.surface)
    for k in ls.projections:
        np.testing.assert_array_equal(again.projections[k].distance, ls.projections[k].distance)
    assert again.settings == {"gd": None, "adam": None} and again.limits == {"gd": None, "adam": None}
    assert again.summary()["gd"]["lr"] is None


def test_write_names_the_model(ls, tmp_path):
    out = tmp_path / "out"
    written = ls.write(out, png=False)
    assert sorted(p.name for p in written) == sorted(p.name for p in out.iterdir()) == [
        "landscape.html", "landscape.json", "landscape.npz"]
    page = (out / "landscape.html").read_text()
    assert f"64-8-10 MLP · {COUNT:,} parameters; 200 examples." in page and "mlp:32" not in page
    assert "Each optimizer trained for 12 epochs (full batch) from the same start, at lr gd 0.5, adam 0.02." in page
    doc = json.loads((out / "landscape.json").read_text())
    assert doc["config"]["name"] == ls.name and doc["meta"]["num_params"] == COUNT and "versions" in doc["meta"]
    assert doc["runs"] == json.loads(jio.dumps(ls.summary()))
    with np.load(out / "landscape.npz") as z:
        assert sorted(z.files) == sorted(ls.arrays())
        np.testing.assert_array_equal(z["surface"], ls.surface)
    assert list(ls.figures()) == ["contour", "surface3d", "interpolation", "sharpness", "gaps", "variance"]


def test_a_given_name_and_other_trees():
    assert jaxgd.survey.describe({"w": np.zeros((3, 4)), "b": np.zeros(3)}) == "4-3 linear model · 15 parameters"
    flax_like = {"Dense_0": {"bias": np.zeros(8), "kernel": np.zeros((4, 8))},
                 "Dense_1": {"bias": np.zeros(2), "kernel": np.zeros((8, 2))}}
    assert jaxgd.survey.describe(flax_like, neuron_axis=-1) == "4-8-2 MLP · 58 parameters"
    conv = {"k": np.zeros((8, 3, 3, 3)), "c": np.zeros(8), "s": np.zeros(())}
    assert jaxgd.survey.describe(conv) == "3 arrays (8, 8×3×3×3, scalar) · 225 parameters"


def test_the_name_of_an_equinox_model():
    eqx = pytest.importorskip("equinox")
    params, _ = eqx.partition(eqx.nn.MLP(64, 10, 16, 1, key=jax.random.key(0)), eqx.is_inexact_array)
    assert jaxgd.survey.describe(params) == "64-16-10 MLP · 1,210 parameters"


def test_an_equinox_model_through_from_equinox_writes_a_page_that_names_it(tmp_path):
    eqx = pytest.importorskip("equinox")
    ds = jaxgd.datasets.load("digits")
    model = eqx.nn.MLP(64, 10, 16, 1, activation=jax.numpy.tanh, key=jax.random.key(0))
    loss = lambda m, x, y: -jax.nn.log_softmax(m(x))[y]  # noqa: E731
    problem = jaxgd.from_equinox(model, loss, (ds.x[:100], ds.y[:100]))
    ls = jaxgd.landscape(problem, {"adam": {"lr": 0.01, "epochs": 5}}, grid=5)
    assert ls.model == "64-16-10 MLP · 1,210 parameters"
    ls.write(tmp_path, png=False)
    assert "64-16-10 MLP · 1,210 parameters; 100 examples." in (tmp_path / "landscape.html").read_text()
    assert json.loads((tmp_path / "landscape.json").read_text())["meta"]["num_params"] == 1210


def test_pca_of_several_paths_is_the_commands_joined_path(ls):
    """pca_plane(first, second, max_points=300) is the PCA the command computed before: each path
    thinned by the app's rule, the others first and the first path last (its end the origin)."""
    first = ls.trajectories["gd"].params
    long = jax.tree.map(lambda v: np.concatenate([v] * 40), ls.trajectories["adam"].params)  # 520 points: thinned
    old = jax.tree.map(lambda *a: np.concatenate(a), *[jax.tree.map(lambda v: v[thin(len(jax.tree.leaves(p)[0]), 300)], p)
                                                       for p in (long, first)])
    a = planes.pca_plane(old, key=jax.random.key(3))
    b = planes.pca_plane(first, long, key=jax.random.key(3), max_points=300)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(jax.tree.leaves(b.plane.origin), jax.tree.leaves(first)):
        np.testing.assert_array_equal(x, y[-1])


def test_span(ls):
    margin = planes.AUTO_MARGIN
    for axis, coords in ((ls.a, [p.a for p in ls.projections.values()]), (ls.b, [p.b for p in ls.projections.values()])):
        c = np.concatenate(coords)
        width = c.max() - c.min()
        assert axis[0] <= c.min() and c.max() <= axis[-1]  # every projected point, each start and end included
        np.testing.assert_allclose([axis[0], axis[-1]], [c.min() - margin * width, c.max() + margin * width],
                                   rtol=1e-12)
    a, b = planes.grid_axes(ls.projections.values(), 5, 2.5)
    np.testing.assert_array_equal(a, np.linspace(-2.5, 2.5, 5))
    a, b = planes.grid_axes([], 3, ((0, 1), (-4, -2)))
    np.testing.assert_array_equal(b, [-4, -3, -2])
    for bad in ("wide", -1, ((1, 0), (0, 1)), (1, 2)):
        with pytest.raises(ArgumentError, match="^span "):
            planes.grid_axes([], 3, bad)


def test_sharpness_figure_has_a_dashed_2_over_lr_line_per_run(ls):
    runs = ls.trajectories
    fig = jaxgd.plots.sharpness(runs, lr={"gd": 0.5, "adam": 0.02})
    dashed = [tr for tr in fig.data if tr.line.dash == "dash"]
    assert [tr.legendgroup for tr in dashed] == ["gd", "adam"]
    assert [tr.y[0] for tr in dashed] == [2 / 0.5, 2 / 0.02]
    assert [tr.name for tr in fig.data if tr.line.dash != "dash"] == ["gd", "adam"]
    np.testing.assert_array_equal(fig.data[0].y, runs["gd"].sharpness[::4])
    page_fig = jaxgd.plots.sharpness(ls)  # the page's: gd's limit, none for adam
    assert [tr.y[0] for tr in page_fig.data if tr.line.dash == "dash"] == [4.0]


def test_figures_take_a_projection(ls):
    p = ls.projections["adam"]
    fig = jaxgd.plots.landscape_contour(p)
    assert [tr.type for tr in fig.data] == ["scatter"] * 3 and fig.data[0].name == "path"
    np.testing.assert_array_equal(fig.data[0].x, p.a)
    fig = jaxgd.plots.landscape_contour({"adam": p}, a=ls.a, b=ls.b, surface=ls.surface)
    assert fig.data[0].type == "contour" and list(fig.layout.xaxis.range) == [ls.a[0], ls.a[-1]]
    assert len(jaxgd.plots.landscape_gaps(p).data) == 2


def test_bad_runs(problem, ls):
    with pytest.raises(ArgumentError, match="^runs .*one name"):
        jaxgd.landscape(problem, ["gd", {"optimizer": "gd"}], grid=3)
    with pytest.raises(ArgumentError, match="^runs "):
        jaxgd.landscape(problem, {}, grid=3)
    with pytest.raises(ArgumentError, match="^span "):
        jaxgd.landscape(problem, ls.trajectories, grid=3, span="everything")


def test_the_command_writes_what_the_library_computes(cli, tmp_path):
    out = tmp_path / "cli"
    code, _, err = cli(["landscape", "--data", "iris", "--model", "mlp:5", "--optimizers", "gd,momentum",
                        "--lr", "0.5,0.1", "--epochs", "10", "--grid", "6", "--sharpness-every", "3",
                        "--plane", "random", "--seed", "2", "--no-png", "--out", out])
    assert code == 0, err
    problem = _mlp_problem("iris", (4, 5, 3), seed=2)
    runs = {o: {"optimizer": o, "lr": lr, "epochs": 10, "seed": 2, "sharpness_every": 3}
            for o, lr in (("gd", 0.5), ("momentum", 0.1))}
    ls = jaxgd.landscape(problem, runs, plane="random", grid=6, key=jax.random.key(2))
    doc = json.loads((out / "landscape.json").read_text())
    mine = json.loads(jio.dumps(ls.document()))
    assert doc["plane"] == mine["plane"] and doc["runs"] == mine["runs"]
    assert {k: doc["meta"][k] for k in mine["meta"] if k in doc["meta"]} == {
        k: v for k, v in mine["meta"].items() if k in doc["meta"]}
    with np.load(out / "landscape.npz") as z:
        arrays = ls.arrays()
        assert list(z.files) == list(arrays)
        for k in z.files:
            np.testing.assert_array_equal(z[k], arrays[k], err_msg=k)
    assert doc["runs"]["momentum"]["stability_limit"] == pytest.approx(2 * 1.9 / (0.1 * 0.1))


def test_an_optax_factory_runs_in_the_landscape(problem):
    """Issue 19, item 4: the optimizer factory that works in run and sweep works here too."""
    optax = pytest.importorskip("optax")
    settings = {"optimizer": optax.lion, "lr": 1e-3, "b1": 0.8, "epochs": 3}
    ls = jaxgd.landscape(problem, {"lion": {**settings, "sharpness_every": 2}}, grid=5)
    t = jaxgd.run(problem, **settings)
    np.testing.assert_array_equal(ls.trajectories["lion"].loss, t.loss)
    assert np.isfinite(ls.trajectories["lion"].sharpness[::2]).all() and ls.summary()["lion"]["stability_limit"] is None


# ----------------------------------------------------------------------------- issue 21: memory, time, blocks


def test_memory_needed_counts_the_model_the_runs_and_one_grid_block(monkeypatch):
    n, m = 1000, 50
    points = jaxgd.planes.batch_points(11 * 11, n)
    assert points == min(11 * 11, 2**22 // n, *([64] if jax.default_backend() == "cpu" else []))
    train, grid = jaxgd.survey.memory_needed(n, m, 11, [9, 19], per_example=7, lanczos=50)
    kept = 10 * (3 * n + 8) + 20 * (3 * n + 8)  # both trajectories: every point and two moments
    assert train == 8 * (kept + max(55 * n + 3 * m * 7, 3 * n * (10 + 20)))
    assert grid == 8 * (kept + 121 + 3 * n + points * (n + 2 * m * 7))
    monkeypatch.setattr(jaxgd._checks, "available_memory", lambda: 2**30)
    jaxgd.survey.check_memory(n, m, 11, [9, 19])
    with pytest.raises(ArgumentError, match=r"^model asks for 100,000,000 parameters on 50 examples and a 11² grid: "
                                            r"about 3\.7 GiB, and 1\.0 GiB of memory is available$"):
        jaxgd.survey.check_memory(10**8, m, 11, [9], names=("model", "epochs"))  # 5·10⁸ numbers before any run
    with pytest.raises(ArgumentError, match=r"^epochs asks for 100,000 parameters on 50 examples, 1 run of 1,000 "):
        jaxgd.survey.check_memory(10**5, m, 11, [1000], names=("model", "epochs"))  # 3·10⁸ numbers kept
    with pytest.raises(ArgumentError, match=r"^grid asks for "):
        jaxgd.survey.check_memory(10, m, 9001, [5])  # 8.1·10⁷ points on the surface


def test_seconds_needed_from_a_measured_gradient(problem):
    """The rule with a made-up rate: training counts each step's share of a full-data gradient and
    10 HVPs (2 gradients each) a sharpness measurement; the grid a third of a gradient a point."""
    full = jaxgd.runs.check_run_args(problem, "gd", 0.5, 30, sharpness_every=10)  # 30 steps, 4 measurements
    mini = jaxgd.runs.check_run_args(problem, "adam", 0.1, 2, batch_size=50)  # 8 steps of a quarter
    need = jaxgd.survey.seconds_needed(0.5, [full, mini], 41)
    assert need == pytest.approx({"training": 0.5 * (30 + 4 * 20 + 8 / 4), "grid": 0.5 * (41 * 41 + 2 * 61) / 3})
    assert [jaxgd.survey.say_seconds(s) for s in (40, 600, 12600)] == ["40 s", "10 min", "3.5 h"]
    rate = jaxgd.survey.probe(problem)
    assert 0 < rate < 60


def test_a_landscape_past_an_hour_asks_for_yes(monkeypatch, capsys):
    from jaxgd.app import landscape as app

    monkeypatch.setattr(jaxgd.survey, "probe", lambda problem: 1.0)  # a made-up second a gradient
    cfg = app.LandscapeConfig(data="iris", model="mlp:2", epochs=5, grid=105)
    with pytest.raises(ArgumentError, match=r"^grid asks for about 64 min of work \(training 75 s, the grid 62 min; "
                                            r"a full-data gradient took 1 s here\): past an hour, give --yes to go on$"):
        app.check(cfg)  # 3 runs × (5 steps + 1 measurement × 20) = 75 s; (105² + 3·61) / 3 = 3,736 s
    monkeypatch.setattr(jaxgd.survey, "probe", lambda problem: 0.5)
    assert app.check(cfg).runs and capsys.readouterr().err == ""  # half an hour: no word
    monkeypatch.setattr(jaxgd.survey, "probe", lambda problem: 2.0)
    plan = app.check(dataclasses.replace(cfg, yes=True))
    assert plan.config.yes and capsys.readouterr().err == (
        "jaxgd: --yes: about 2.1 h of work (training 2 min, the grid 2.1 h; a full-data gradient took 2 s here)\n")


def test_a_deep_model_is_refused_before_compiling_it(monkeypatch, capsys):
    """Past DEEP hidden layers, the compile time is estimated from the first 16 layers' (one compile,
    scaled by the square of the depth) and refused past an hour: 1,000 layers of width 1 ran for over
    10 minutes compiling before (issue 23)."""
    from jaxgd.app import landscape as app

    clock = iter(range(100))
    monkeypatch.setattr(app.time, "perf_counter", lambda: float(next(clock)))  # the one compile "takes" 1 s
    ds = jaxgd.datasets.load("iris")
    assert app.compile_seconds((4, *[1] * 64, 3), "tanh", ds, "xent", "float64") == app.PROGRAMS * 1.0 * (64 / 16) ** 2
    monkeypatch.setattr(app, "compile_seconds", lambda sizes, *a: 4 * (len(sizes) - 2) ** 2 / 16**2)
    cfg = app.LandscapeConfig(data="iris", model="mlp:" + ",".join(["1"] * 1000), epochs=1, grid=3, sharpness_every=0)
    monkeypatch.setattr(jaxgd.survey, "probe", lambda problem: pytest.fail("compiled the model"))
    with pytest.raises(ArgumentError, match=r"^model has 1,000 hidden layers: compiling it is estimated at about "
                                            r"4\.3 h here \(.*\): past an hour, give --yes to go on$"):
        app.check(cfg)  # 4·1000²/256 = 15,625 s
    monkeypatch.setattr(app, "compile_seconds", lambda *a: pytest.fail("probed a shallow model"))
    monkeypatch.setattr(jaxgd.survey, "probe", lambda problem: 1e-6)
    assert app.check(dataclasses.replace(cfg, model="mlp:" + ",".join(["1"] * app.DEEP))).runs
    monkeypatch.setattr(app, "compile_seconds", lambda *a: 2 * 3600.0)
    assert app.check(dataclasses.replace(cfg, yes=True)).runs
    assert capsys.readouterr().err.startswith("jaxgd: --yes: --model has 1,000 hidden layers: compiling it is "
                                              "estimated at about 2.0 h here")


def test_the_library_refuses_past_an_hour_unless_going_on(problem, monkeypatch):
    """jaxgd.landscape from Python is bounded as the command is: work whose lower bound from the flops
    passes a minute is timed by the probe and refused past an hour, before anything is compiled."""
    monkeypatch.setattr(jaxgd.survey, "probe", lambda problem: 1.0)  # a made-up second a gradient
    def trained(*a, **k):
        raise RuntimeError("trained")

    monkeypatch.setattr(jaxgd.runs, "run_checked", trained)
    runs = {"gd": {"optimizer": "gd", "lr": 0.5, "epochs": 5, "sharpness_every": 0}}
    low = jaxgd.survey.seconds_needed(jaxgd.budget.optimistic(problem, [(1, 1, None)]), [], 6000)["grid"]
    assert low > jaxgd.budget.MINUTE  # 6000² points at a third of the fastest gradient each: past a minute
    with pytest.raises(ArgumentError, match=r"^grid asks for about .* h of work \(training 5 s, the grid .*\): past an hour, "
                                            r"pass go_on=True$"):
        jaxgd.landscape(problem, runs, grid=6000)
    monkeypatch.setattr(jaxgd.survey, "probe", lambda problem: pytest.fail("probed"))
    with pytest.raises(RuntimeError, match="trained"):  # no probe under a minute's lower bound, nor with go_on
        jaxgd.landscape(problem, runs, grid=7)
    with pytest.raises(RuntimeError, match="trained"):
        jaxgd.landscape(problem, runs, grid=6000, go_on=True)


def test_blocks_small_enough_for_a_signal_give_the_same_numbers(problem, monkeypatch):
    """With blocks of one gradient's flops a run goes one step a chunk (not a twentieth of 40) and
    the grid 3 points a call (pieces of a row of 5, not whole rows): the run is bit-identical to one
    scan, the surface equal to one plane_surface call."""
    calls, chunks = [], []
    run_checked = jaxgd.runs.run_checked
    surface = planes.checked_surface  # what the landscape calls per block (the plane checked once before)
    monkeypatch.setattr(planes, "checked_surface", lambda f, pl, a, b: calls.append((len(a), len(b))) or surface(f, pl, a, b))
    monkeypatch.setattr(jaxgd.runs, "run_checked", lambda rc, chunk, callback: chunks.append(chunk) or run_checked(
        rc, chunk=chunk, callback=callback))
    monkeypatch.setattr(jaxgd.survey, "BLOCK_FLOPS", 6 * COUNT * 200)
    small = jaxgd.landscape(problem, {"gd": {"lr": 0.5, "epochs": 40, "sharpness_every": 0}}, grid=5)
    assert chunks == [1] and set(calls) == {(1, 3)} and len(calls) == 10
    monkeypatch.undo()
    np.testing.assert_array_equal(small.trajectories["gd"].loss, jaxgd.run(problem, "gd", lr=0.5, epochs=40).loss)
    whole = np.asarray(planes.plane_surface(problem, small.plane, small.a, small.b))
    np.testing.assert_allclose(small.surface, whole, rtol=1e-13)


def test_a_pca_plane_of_two_points_is_refused(problem):
    with pytest.raises(ArgumentError, match=r"^plane 'pca' needs at least 3 points on the paths in all; 1 run\(s\) of "
                                            r"1 step\(s\) have 2"):
        jaxgd.landscape(problem, {"gd": {"epochs": 1, "sharpness_every": 0}}, grid=3)


def test_a_diverged_run_is_left_out_of_the_plane(ls, problem, tmp_path):
    """A run that diverges (momentum at lr 1e300, first: its points reach ~1e300 at once) is left out
    of the plane from the step it diverged at: the PCA is the one of the other paths and its points
    before that, the origin is the first run that did not diverge, and everyone's map is finite."""
    runs = {"boom": {"optimizer": "momentum", "lr": 1e300, "epochs": EPOCHS, "sharpness_every": 4}, **ls.trajectories}
    x = jaxgd.landscape(problem, runs, grid=7)
    d, sharp = int(x.trajectories["boom"].diverged_at), x.trajectories["boom"].sharpness
    assert d >= 1 and x.left_out == {"boom": d} and x.summary()["boom"]["diverged_at"] == d
    assert x.summary()["boom"]["final_sharpness"] == sharp[0] and np.isfinite(sharp[4])  # none past divergence
    assert x.document()["plane"]["left_out"] == {"boom": d} and ls.left_out == {}
    before = jax.tree.map(lambda v: v[:d], x.trajectories["boom"].params)
    want = planes.pca_plane(ls.trajectories["gd"].params, ls.trajectories["adam"].params, before,
                            key=jax.random.key(0), max_points=300)
    np.testing.assert_allclose(x.explained, want.explained, rtol=1e-12)
    for got, w, end in zip(jax.tree.leaves(x.plane.origin), jax.tree.leaves(want.plane.origin),
                           jax.tree.leaves(ls.trajectories["gd"].params)):
        np.testing.assert_array_equal(got, w)
        np.testing.assert_array_equal(got, end[-1])
    assert np.isfinite(x.surface).all() and np.isfinite(x.explained).all()
    for k in ("gd", "adam"):
        assert np.isfinite(x.projections[k].a).all() and np.isfinite(x.projections[k].distance).all()
    x.write(tmp_path / "page", png=False)
    assert f"It leaves out boom's points from step {d}, where it diverged." in (tmp_path / "page" / "landscape.html").read_text()
    with pytest.raises(ArgumentError, match=r"^runs diverged \(boom at step 1\): the points before that are too few"):
        jaxgd.landscape(problem, {"boom": {**runs["boom"], "epochs": 2, "sharpness_every": 0}}, grid=3)


def test_a_full_disk_keeps_the_previous_landscape(ls, tmp_path, monkeypatch):
    import errno
    import os

    out = tmp_path / "out"
    ls.write(out, png=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)  # landscape.npz's writer fails after landscape.json's has written
    with pytest.raises(jio.OutputError, match="landscape.npz.*No space left on device"):
        ls.write(out, png=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary left, the old set whole


def test_png_names_are_checked_before_any_work(ls, cli, tmp_path, monkeypatch):
    """A folder where a PNG goes is refused at once (it was refused after the training, issue 23);
    the names checked are the ones the writer makes."""
    from jaxgd.app import landscape as app
    from jaxgd.app.landscape_page import mpl_figures

    assert {f"landscape-{k}.png" for k in mpl_figures(ls)} == set(app.PNGS)  # pca plane, sharpness measured: all
    (tmp_path / "landscape-interpolation.png").mkdir()
    monkeypatch.setattr(app, "check", lambda cfg: pytest.fail("loaded the data"))
    code, out, err = cli(["landscape", "--data", "iris", "--out", tmp_path])
    assert code == 2 and out == "" and err == (f"jaxgd: error: --out '{tmp_path}/landscape-interpolation.png' is a "
                                               "folder, where the file landscape-interpolation.png goes\n")
