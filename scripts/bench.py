"""jaxgd's benchmarks: each case measured side by side with its peers in this one process.

    make bench            # or: python scripts/bench.py [--quick] [--out BENCHMARKS.md] [--json bench.json]
    python scripts/bench.py --only adapters   # one group, printed (files only with --out/--json)

Every timing is the median of repeated runs after a warm-up; for jitted code the first call
(compile + run) is reported apart as "compile". Peers, each written the way a user would:
  - notebook: Python loops over NumPy, in the notebook's style;
  - numpy: vectorised NumPy (broadcasting);
  - optax loop: a Python loop over a jitted optax step (the common JAX idiom);
  - torch: PyTorch eager with torch.optim (skipped when torch is not installed);
  - jaxgd.
Everything runs in float64 on the CPU (the notebook's precision) unless a row says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import jaxgd  # noqa: E402
from jaxgd import engine, sweep  # noqa: E402
from jaxgd import runs as runs_mod  # noqa: E402
from jaxgd.app.config import ReportConfig, check  # noqa: E402
from jaxgd.app.plan import plan as report_plan  # noqa: E402
from jaxgd.app.results import versions as report_versions  # noqa: E402

X = np.linspace(-5, 5, 51)
Y = 2 * X + 3
P = jaxgd.notebook()


def median_time(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def first_call(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def block(x):
    return jax.block_until_ready(x)


# ----------------------------------------------------------------------------- surface


def notebook_surface(g):
    out = np.zeros((len(g), len(g)))
    for i in range(len(g)):
        for j in range(len(g)):
            pred = g[i] * X + g[j]
            out[i, j] = 1 / len(Y) * np.sum(np.square(pred - Y))
    return out


def numpy_surface(g):
    # broadcasting over (len(g), len(g), 51), one block of rows at a time to bound memory
    out = np.empty((len(g), len(g)))
    rows = max(1, 2**22 // (len(g) * len(X)))
    for s in range(0, len(g), rows):
        w = g[s:s + rows, None, None]
        out[s:s + rows] = np.mean(np.square(w * X + g[None, :, None] - Y), axis=-1)
    return out


def surface_cases(quick):
    rows = []
    g = np.linspace(-8, 8, 101)
    jx = lambda gg: block(jaxgd.loss_surface(P, gg, gg))
    comp = first_call(lambda: jx(g))
    t_j = median_time(lambda: jx(g), repeat=20)
    t_nb = median_time(lambda: notebook_surface(g), repeat=3 if quick else 5)
    t_np = median_time(lambda: numpy_surface(g), repeat=10)
    np.testing.assert_allclose(np.asarray(jx(g)), notebook_surface(g), rtol=1e-12)
    rows.append(dict(case="surface 101²", peer="notebook loops", peer_s=t_nb, jaxgd_s=t_j, compile_s=comp,
                     target=300.0))
    rows.append(dict(case="surface 101²", peer="numpy vectorised", peer_s=t_np, jaxgd_s=t_j, compile_s=comp))
    g = np.linspace(-8, 8, 1001)
    comp = first_call(lambda: jx(g))
    t_j = median_time(lambda: jx(g), repeat=10)
    t_np = median_time(lambda: numpy_surface(g), repeat=3 if quick else 5)
    rows.append(dict(case="surface 1001²", peer="numpy vectorised", peer_s=t_np, jaxgd_s=t_j, compile_s=comp,
                     target=10.0))
    # 4001²: jaxgd alone, in a fresh process so its peak memory is its own
    code = textwrap.dedent("""
        import json, resource, time, sys
        import jax; jax.config.update("jax_enable_x64", True)
        import numpy as np, jaxgd
        p = jaxgd.notebook(); g = np.linspace(-8, 8, 4001)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter(); S = jax.block_until_ready(jaxgd.loss_surface(p, g, g)); first = time.perf_counter() - t
        ts = []
        for _ in range(3):
            t = time.perf_counter(); jax.block_until_ready(jaxgd.loss_surface(p, g, g)); ts.append(time.perf_counter() - t)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        json.dump({"first": first, "median": sorted(ts)[1], "peak_mib": peak / 1024, "base_mib": base / 1024,
                   "out_mib": S.nbytes / 2**20}, sys.stdout)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    d = json.loads(r.stdout)
    rows.append(dict(case="surface 4001²", peer=None, peer_s=None, jaxgd_s=d["median"], compile_s=d["first"],
                     note=f"peak RSS {d['peak_mib']:.0f} MiB (process after imports: {d['base_mib']:.0f} MiB; "
                          f"the result alone is {d['out_mib']:.0f} MiB; the grid × data would be "
                          f"{4001**2 * 51 * 8 / 2**30:.1f} GiB)"))
    return rows


# ----------------------------------------------------------------------------- one long run


def optax_loop(tx, steps, lr_params=(-4.0, -7.0)):
    """The common idiom: a jitted step, called from a Python loop."""
    x, y = jnp.asarray(X), jnp.asarray(Y)

    def loss(p):
        return jnp.mean((p[0] * x + p[1] - y) ** 2)

    @jax.jit
    def step(p, s):
        l, g = jax.value_and_grad(loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, l

    def go():
        p = jnp.asarray(lr_params)
        s = tx.init(p)
        losses = []
        for _ in range(steps):
            p, s, l = step(p, s)
            losses.append(l)
        return block(p)

    return go


def torch_loop(steps, lr, opt="adam"):
    import torch

    torch.set_default_dtype(torch.float64)
    x, y = torch.tensor(X), torch.tensor(Y)

    def go():
        p = torch.tensor([-4.0, -7.0], requires_grad=True)
        o = torch.optim.Adam([p], lr=lr) if opt == "adam" else torch.optim.SGD([p], lr=lr)
        for _ in range(steps):
            o.zero_grad()
            loss = torch.mean((p[0] * x + p[1] - y) ** 2)
            loss.backward()
            o.step()
        return p.detach().numpy()

    return go


def have_torch():
    try:
        import torch  # noqa: F401

        return True
    except ImportError:
        return False


def long_run_cases(quick):
    steps = 10_000
    rows = []
    jx = lambda: block(jaxgd.run(P, "adam", lr=0.01, epochs=steps).loss)
    comp = first_call(jx)
    t_j = median_time(jx, repeat=10)
    loop = optax_loop(optax.adam(0.01), steps)
    t_o = median_time(loop, repeat=3 if quick else 5)
    np.testing.assert_allclose(np.asarray(loop()), [float(v) for v in jaxgd.run(P, "adam", lr=0.01, epochs=steps).final],
                               rtol=1e-10)
    rows.append(dict(case="10,000-step Adam run", peer="optax loop", peer_s=t_o, jaxgd_s=t_j, compile_s=comp,
                     target=15.0))
    if have_torch():
        tl = torch_loop(steps, 0.01)
        t_t = median_time(tl, repeat=3 if quick else 5)
        np.testing.assert_allclose(tl(), [float(v) for v in jaxgd.run(P, "adam", lr=0.01, epochs=steps).final],
                                   rtol=1e-8)
        import torch

        rows.append(dict(case="10,000-step Adam run", peer=f"torch {torch.__version__} eager", peer_s=t_t,
                         jaxgd_s=t_j, compile_s=comp, target=200.0))
    else:
        rows.append(dict(case="10,000-step Adam run", peer="torch eager", peer_s=None, jaxgd_s=t_j, compile_s=comp,
                         note="skipped: torch not installed (pip install torch==2.13.0)"))
    return rows


# ----------------------------------------------------------------------------- the report's runs


def report_runs_cases(quick):
    plan = [(r.optimizer, r.mode, r.lr, r.epochs) for r in report_plan(check(ReportConfig())).runs]

    def jx():
        for opt, md, lr, ep in plan:
            block(jaxgd.run(P, opt, lr=lr, epochs=ep, batch_size=md.batch_size, sampling=md.sampling, rng=md.rng,
                            seed=md.seed).loss)

    comp = first_call(jx)
    t_j = median_time(jx, repeat=5)

    # the optax idiom for the same runs: a jitted batch step in a Python loop over the same orders
    x, y = jnp.asarray(X), jnp.asarray(Y)
    txs = {"gd": lambda lr: optax.sgd(lr), "momentum": lambda lr: optax.sgd(lr * 0.1, momentum=0.9),
           "rmsprop": lambda lr: optax.rmsprop(lr, 0.9, 1e-8, eps_in_sqrt=False), "adam": lambda lr: optax.adam(lr)}
    prepared = []
    for opt, md, lr, ep in plan:
        tx = txs[opt](lr)
        if md.batch_size is None:
            batches = [(np.arange(51), np.ones(51, bool))] * ep
        else:
            o = jaxgd.sample_order(51, md.batch_size, ep, md.sampling, md.rng, md.seed)
            batches = list(zip(np.asarray(o.idx), np.asarray(o.mask)))

        @jax.jit
        def step(p, s, idx, mask, tx=tx):
            def loss(q):
                r = (q[0] * x[idx] + q[1] - y[idx]) ** 2
                return jnp.sum(r * mask) / jnp.sum(mask)

            g = jax.grad(loss)(p)
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

        prepared.append((tx, step, [(jnp.asarray(i), jnp.asarray(m)) for i, m in batches]))

    def loops():
        for tx, step, batches in prepared:
            p = jnp.asarray([-4.0, -7.0])
            s = tx.init(p)
            for i, m in batches:
                p, s = step(p, s, i, m)
            block(p)

    loops()
    t_o = median_time(loops, repeat=3)
    total = sum(ep * (1 if md.batch_size is None else -(-51 // md.batch_size)) for _, md, _, ep in plan)
    return [dict(case=f"the report's {len(plan)} runs ({total} steps)", peer="optax loop", peer_s=t_o, jaxgd_s=t_j,
                 compile_s=comp)]


# ----------------------------------------------------------------------------- sweeps


def flops_per_step(m=51):
    """A count of the float operations of one full-batch step of jaxgd's scan (estimate):
    full-data loss at the current point (5m), batch loss and gradient (forward 5m, backward 5m),
    the update (about 20)."""
    return 15 * m + 20


def sweep_cases(quick):
    R, steps = (1000, 1000) if quick else (10_000, 1000)
    lrs = np.geomspace(1e-3, 1.0, R)
    rows = []
    sub = 10
    txs = {"gd": lambda lr: optax.sgd(lr), "momentum": lambda lr: optax.sgd(lr * 0.1, momentum=0.9),
           "rmsprop": lambda lr: optax.rmsprop(lr, 0.9, 1e-8, eps_in_sqrt=False), "adam": lambda lr: optax.adam(lr)}
    for opt in ("gd", "momentum", "rmsprop", "adam"):
        jx = lambda: block(sweep(P, opt, lr=lrs, epochs=steps, final_only=True).loss)
        comp = first_call(jx)
        t_j = median_time(jx, repeat=3, warmup=0)
        # the optax loop on `sub` of the learning rates (a jitted step with the lr as an argument,
        # so it compiles once), extrapolated to all R
        x, y = jnp.asarray(X), jnp.asarray(Y)

        @jax.jit
        def step(p, s, lr, make=txs[opt]):
            g = jax.grad(lambda q: jnp.mean((q[0] * x + q[1] - y) ** 2))(p)
            u, s = make(lr).update(g, s, p)
            return optax.apply_updates(p, u), s

        def loops():
            for lr in lrs[:: R // sub][:sub]:
                p = jnp.asarray([-4.0, -7.0])
                s = txs[opt](lr).init(p)
                lr = jnp.asarray(lr)
                for _ in range(steps):
                    p, s = step(p, s, lr)
                block(p)

        loops()
        t_sub = median_time(loops, repeat=1, warmup=0)
        gflops = R * steps * flops_per_step() / t_j / 1e9
        rows.append(dict(case=f"sweep {R:,} lrs × {steps:,} steps, {opt}", peer=f"optax loop (×{R // sub} from {sub} lrs)",
                         peer_s=t_sub * R / sub, jaxgd_s=t_j, compile_s=comp, target=100.0, gflops=gflops))
    return rows


def matmul_peak():
    n = 2048
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)))
    f = jax.jit(lambda a: a @ a)
    block(f(a))
    t = median_time(lambda: block(f(a)), repeat=5)
    return 2 * n**3 / t / 1e9


# ----------------------------------------------------------------------------- end to end


def end_to_end_cases(quick):
    jaxgd_bin = os.path.join(os.path.dirname(sys.executable), "jaxgd")
    cmd = [jaxgd_bin] if os.path.exists(jaxgd_bin) else [sys.executable, "-m", "jaxgd"]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, JAXGD_CACHE_DIR=os.path.join(d, "cache"))

        def report_once():
            subprocess.run([*cmd, "report", "--out", os.path.join(d, "out")], check=True, env=env,
                           stdout=subprocess.DEVNULL)

        def bare():
            subprocess.run([sys.executable, "-c", "import jax, optax, plotly, matplotlib"], check=True)

        def report_cold():  # the time of one report with empty caches of its own (the folder made and removed untimed)
            with tempfile.TemporaryDirectory() as c:
                cold_env = dict(env, JAXGD_CACHE_DIR=os.path.join(c, "cache"))
                t = time.perf_counter()
                subprocess.run([*cmd, "report", "--out", os.path.join(c, "out")], check=True, env=cold_env,
                               stdout=subprocess.DEVNULL)
                return time.perf_counter() - t

        first_call(report_once)  # fills env's caches for the warm runs
        colds = [report_cold() for _ in range(3)]
        cold = statistics.median(colds)
        warm = median_time(report_once, repeat=3, warmup=0)
        t_bare = median_time(bare, repeat=5)
        # issue 11's targets: warm ≤ 2× the bare import, cold ≤ 4× (defaults: explorables included, no PNGs)
        rows.append(dict(case="`jaxgd report` end to end (cache warm)", peer="bare import of jax, optax, plotly, matplotlib",
                         peer_s=t_bare, jaxgd_s=warm, compile_s=None, target=1 / 2, inverse=True,
                         note="defaults: the page with its explorables and the results files, no PNGs"))
        rows.append(dict(case="`jaxgd report` end to end (empty compilation cache)",
                         peer="bare import of jax, optax, plotly, matplotlib", peer_s=t_bare, jaxgd_s=cold,
                         compile_s=None, target=1 / 4, inverse=True,
                         note="every program compiled: median of 3 runs, each with empty caches of its own "
                              f"({', '.join(f'{c:.2f}' for c in sorted(colds))} s)"))
        # issue 12: a CSV of 10⁶ rows, `run` with SGD for one epoch and the report, each within 60 s
        big = os.path.join(d, "big.csv")
        rng = np.random.default_rng(0)
        x = rng.uniform(-5, 5, 10**6)
        np.savetxt(big, np.c_[x, 2 * x + 3 + rng.normal(0, 1, x.size)], delimiter=",", fmt="%.6f")
        for case, args in (("`jaxgd run --data` 10⁶ rows, SGD (batch 1), 1 epoch = 10⁶ steps",
                            ["run", "--data", big, "--batch-size", "1", "--epochs", "1", "--json", os.path.join(d, "r.json")]),
                           ("`jaxgd report --data` 10⁶ rows", ["report", "--data", big, "--out", os.path.join(d, "big")])):
            def once(args=args):
                subprocess.run([*cmd, *args], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            cold = first_call(once)
            warm = median_time(once, repeat=1, warmup=0)
            rows.append(dict(case=case, peer="the issue's budget", peer_s=60.0, jaxgd_s=warm, compile_s=None, target=1,
                             inverse=True, note=f"first run (compiling): {cold:.1f} s; the full-data loss at about 100 "
                                                f"points a run (loss_every=\"auto\": 10⁸ example evaluations)"))
    return rows


# ----------------------------------------------------------------------------- the page in a browser

CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking"]
PAGE_STEP = """async (v) => { const t = performance.now(); await window.jaxgd.setPosition(v); return performance.now() - t; }"""


def page_cases(quick):
    """The default report page in headless Chromium with software WebGL (tests/helpers.py's settings): its first
    screen and all its figures drawn after load (median of loads), and a slider step (median of steps over the
    slider) with the contour, then the 3-D view, at the top of the window. Issue 22's targets: ≤ 3 s, ≤ 0.25 s."""
    chromium = os.environ.get("JAXGD_CHROMIUM", "/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("  page: skipped (no playwright)", file=sys.stderr)
        return []
    if not os.path.exists(chromium):
        print(f"  page: skipped (no chromium at {chromium})", file=sys.stderr)
        return []
    loads, steps = (2, 6) if quick else (3, 12)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "jaxgd", "report", "--no-png", "--out", d], check=True,
                       env=dict(os.environ, JAXGD_CACHE_DIR="off"), stdout=subprocess.DEVNULL)
        first, drawn, step = [], [], {"contour": [], "surface3d": []}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            for _ in range(loads):
                pg = browser.new_page(viewport={"width": 1400, "height": 900})
                pg.goto("file://" + os.path.join(d, "report.html"))
                pg.wait_for_selector("body[data-ready='1']", timeout=300_000)
                t = pg.evaluate("window.jaxgdTimes")
                first.append(t["firstScreen"] / 1000)
                drawn.append(t["drawn"] / 1000)
                top = int(pg.get_attribute("#pos", "max"))
                for view, ts in step.items():
                    pg.evaluate(f"document.getElementById('{view}').scrollIntoView()")
                    pg.evaluate(PAGE_STEP, 0)
                    ts += [pg.evaluate(PAGE_STEP, top * k // steps) / 1000 for k in range(1, steps + 1)]
                pg.close()
            browser.close()
    load = os.getloadavg()[0]
    how = f"headless Chromium, software WebGL, 1400 × 900; load average {load:.1f} on {os.cpu_count()} cores at the end"
    med = statistics.median
    return [dict(case="report page: first screen drawn", peer="the issue's budget", peer_s=3.0, jaxgd_s=med(first),
                 compile_s=None, target=1, inverse=True,
                 note=f"{how}; median of {loads} loads, every figure drawn after {med(drawn):.1f} s (the others are "
                      "drawn one at a time after the first screen's, in page order)"),
            *[dict(case=f"report page: a slider step, {name} in view", peer="the issue's budget", peer_s=0.25,
                   jaxgd_s=med(step[view]), compile_s=None, target=1, inverse=True,
                   note=f"{how}; median of {len(step[view])} steps across the slider, each awaited until every figure "
                        "in the window shows it")
              for view, name in (("contour", "the contour"), ("surface3d", "the 3-D view"))]]


# ----------------------------------------------------------------------------- landscapes of real models


def eos_problem():
    """The edge-of-stability MLP of tests/test_sharpness.py: tanh 64-32-32-10 (3,466 parameters) on the
    first 500 digits, squared error against one-hot targets."""
    from jaxgd.datasets import load
    from jaxgd.models import mlp

    d = load("digits")
    model = mlp((64, 32, 32, 10), "tanh", "classification", loss="mse")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:500], d.y[:500]))


def landscape_cases(quick):
    """A 101² plane of a ~1k-parameter MLP on 512 examples (vmapped grid vs a Python loop of jitted
    single-point evaluations, the PyTorch tools' approach), and sharpness every step on the
    edge-of-stability run: its cost, and HVPs per measurement warm- against cold-started."""
    from jaxgd import planes, spectrum
    from jaxgd.datasets import load
    from jaxgd.models import mlp

    d = load("digits")
    model = mlp((64, 14, 10), "tanh", "classification")  # 64·14 + 14 + 14·10 + 10 = 1,060 parameters
    prob = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:512], d.y[:512]))
    f = prob.full_loss
    plane = planes.random_plane(prob.init, jax.random.key(1))
    g = np.linspace(-1, 1, 101)
    jx = lambda: block(planes.plane_surface(f, plane, g, g))
    comp = first_call(jx)
    t_j = median_time(jx, repeat=3)
    point = jax.jit(lambda a, b: f(jax.tree.map(lambda o, u, v: o + a * u + b * v, *plane)))
    block(point(0.0, 0.0))
    sub = 10 if quick else 25  # loop over `sub` rows, scaled to all 101

    def loop():
        for a in g[:sub]:
            for b in g:
                point(a, b).block_until_ready()

    t_loop = median_time(loop, repeat=1) * len(g) / sub
    loss = jax.jit(f)  # as the PyTorch tools do: set the weights in Python, then one compiled loss call

    def weights_then_loss():
        for a in g[:sub]:
            for b in g:
                loss(jax.tree.map(lambda o, u, v: o + a * u + b * v, *plane)).block_until_ready()

    weights_then_loss()
    t_set = median_time(weights_then_loss, repeat=1, warmup=0) * len(g) / sub
    case = f"101² plane, {prob.num_params:,}-parameter MLP on 512 examples"
    rows = [dict(case=case, peer=f"Python loop: weights set in Python, then a jitted loss (×{len(g) / sub:.1f} "
                                 f"from {sub} rows)", peer_s=t_set, jaxgd_s=t_j, compile_s=comp, target=10.0),
            dict(case=case, peer=f"Python loop of jitted point evaluations, point and loss in one call "
                                 f"(×{len(g) / sub:.1f} from {sub} rows)", peer_s=t_loop, jaxgd_s=t_j, compile_s=comp)]

    # the edge-of-stability run of tests/test_sharpness.py (gd at lr 0.15 on 500 digits, MSE), 1,000 steps
    eos = eos_problem()
    steps, tol = (300 if quick else 1000), 1e-4  # run's default sharpness_tol
    plain = lambda: block(jaxgd.run(eos, "gd", lr=0.15, epochs=steps).loss)
    sharp = lambda: block(jaxgd.run(eos, "gd", lr=0.15, epochs=steps, sharpness_every=1, sharpness_tol=tol).loss)
    first_call(plain)
    comp = first_call(sharp)
    t_plain, t_sharp = median_time(plain, repeat=3), median_time(sharp, repeat=1)
    t = jaxgd.run(eos, "gd", lr=0.15, epochs=steps, sharpness_every=1, sharpness_tol=tol)
    warm = float(np.mean(np.asarray(t.sharpness_hvps)))
    cold_fn = jax.jit(lambda p: spectrum.top_eigenpairs(eos.full_loss, p, jax.tree.map(jnp.zeros_like, p), k=1,
                                                        max_iter=50, tol=tol).num_hvps)
    at = range(0, steps, 25)
    cold = float(np.mean([int(cold_fn(jax.tree.map(lambda a, k=k: a[k], t.params))) for k in at]))
    warm_at = float(np.mean(np.asarray(t.sharpness_hvps)[list(at)]))
    rows.append(dict(case=f"{steps:,}-step gd run with sharpness every step ({eos.num_params:,} parameters, 500 "
                          "examples)", peer="the same run without sharpness", peer_s=t_plain, jaxgd_s=t_sharp,
                     compile_s=comp, note=(f"sharpness every step costs {t_sharp / t_plain:.1f}× the plain run; "
                                           f"{warm:.1f} Hessian-vector products per measurement on average "
                                           f"(Lanczos, residual ≤ {tol:g}·λ, warm-started)")))
    rows.append(dict(case="HVPs per sharpness measurement: warm start against cold", peer="cold start (zero v0)",
                     peer_s=cold, jaxgd_s=warm_at, compile_s=None, target=2.0, count=True,
                     note=(f"at every 25th step of that run, tol {tol:g}: cold {cold:.1f}, warm {warm_at:.1f} HVPs "
                           "(cold/warm is the ratio)")))
    return rows


# ----------------------------------------------------------------------------- preconditioned sharpness


def sharpness_per_lr_cases(quick):
    """Adam's edge of stability (tests/test_preconditioned_sharpness.py): 8 learning rates of full-batch
    Adam (β₂ = 0.99) on the edge-of-stability MLP with the preconditioned sharpness λ₁(P⁻¹H) every 10
    steps, as one sweep against 8 separate runs; the time per learning rate."""
    eos = eos_problem()
    lrs, steps, every = np.geomspace(2e-2, 1.2e-1, 8), (200 if quick else 600), 10
    kw = dict(epochs=steps, sharpness_every=every, sharpness_of="preconditioned", b2=0.99)
    swept = lambda: block(jaxgd.sweep(eos, "adam", lr=lrs, **kw).sharpness)
    runs = lambda: [block(jaxgd.run(eos, "adam", lr=float(lr), **kw).sharpness) for lr in lrs]
    comp = first_call(swept)
    first_call(runs)
    t_sweep, t_runs = median_time(swept, repeat=1), median_time(runs, repeat=1)
    t = jaxgd.sweep(eos, "adam", lr=lrs, **kw)
    late = (t.sharpness[:, ::every] * lrs[:, None] / 38)[:, steps // every // 2:]
    settled = int(np.sum(np.all(np.abs(late - 1) < 0.1, axis=1)))
    return [dict(case=f"sharpness per lr: 8-lr Adam sweep, λ₁(P⁻¹H) every {every} steps ({eos.num_params:,} "
                      f"parameters, {steps} steps), time per lr", peer="8 separate runs (jaxgd.run), per lr",
                 peer_s=t_runs / len(lrs), jaxgd_s=t_sweep / len(lrs), compile_s=comp,
                 note=(f"{settled} of 8 learning rates settle within ±10 % of 38/lr over the second half; "
                       f"{float(np.mean(t.sharpness_hvps[:, ::every])):.1f} HVPs per measurement on average"))]


# ----------------------------------------------------------------------------- flows


def flow_cases(quick):
    """The central flow (jaxgd.flows, one critical eigenvalue, RK4 substeps) vmapped over 8
    learning rates on the edge-of-stability MLP of tests/test_sharpness.py, in one compiled call,
    per learning rate; against one learning rate per call (the authors' code runs one lr per
    PyTorch run, with a CVXPY solve per substep: under 20 min for 400 steps on an H100)."""
    from jaxgd import flows

    eos = eos_problem()
    steps = 50 if quick else 300
    lrs = np.geomspace(0.05, 0.15, 8)
    many = lambda: block(flows.central_flow(eos, lr=lrs, steps=steps).loss)
    one = lambda: block(flows.central_flow(eos, lr=float(lrs[-1]), steps=steps).loss)
    comp = first_call(many)
    first_call(one)
    t_many, t_one = median_time(many, repeat=1, warmup=0) / len(lrs), median_time(one, repeat=1, warmup=0)
    return [dict(case=f"central flow per lr: {len(lrs)} lrs × {steps} steps in one call ({eos.num_params:,} parameters, "
                      "500 examples)", peer="one lr per call (the same flow)", peer_s=t_one, jaxgd_s=t_many,
                 compile_s=comp, note=(f"seconds per learning rate, lrs {lrs[0]:.3g}..{lrs[-1]:.3g} (2/η crossed by the "
                                       f"largest); RK4 substeps h·λ̃ ≤ {flows.C}; the authors' code (one lr per run, "
                                       "a CVXPY solve per substep): under 20 min for 400 steps on an H100"))]


# ----------------------------------------------------------------------------- framework adapters


def adapter_cases(quick):
    """An Equinox MLP through ``jaxgd.from_equinox`` against the same network, the same weights,
    as jaxgd's dict MLP through ``model_problem``: same data, optimizer, order and steps. The
    adapter should cost nothing in the compiled program (target: within 5 %). Timed alternately,
    medians. Skipped without equinox (the frameworks extra)."""
    try:
        import equinox as eqx
    except ImportError:
        return []
    from jaxgd.models import mlp

    sizes, m, epochs = (64, 32, 32, 10), 512, (10 if quick else 40)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(m, sizes[0])), rng.integers(0, sizes[-1], m)
    model = mlp(sizes, "tanh", "classification")
    params = model.init(jax.random.key(0))
    net = eqx.nn.MLP(sizes[0], sizes[-1], sizes[1], len(sizes) - 2, activation=jnp.tanh, key=jax.random.key(0))
    net = eqx.tree_at(lambda n: [a for layer in n.layers for a in (layer.weight, layer.bias)], net,
                      [params[k][a] for k in sorted(params) for a in ("w", "b")])
    by_dict = jaxgd.model_problem(model.loss_per_example, params, (x, y), name="dict MLP")
    by_eqx = jaxgd.from_equinox(net, _xent, (x, y))
    kw = dict(optimizer="adam", lr=1e-3, epochs=epochs, batch_size=32, seed=0)
    fns = {k: (lambda p=p: block(jaxgd.run(p, **kw).loss)) for k, p in (("dict", by_dict), ("eqx", by_eqx))}
    costs = []  # XLA's cost analysis of each compiled run: the same program up to names and layout?

    def capture(jitted, name, statics, *args):
        if name == "run":
            cost = jitted.lower(*statics, *args).compile().cost_analysis()
            costs.append({k: (cost[0] if isinstance(cost, list) else cost).get(k)
                          for k in ("flops", "transcendentals", "bytes accessed")})
        return jitted(*statics, *args)

    first_call(fns["dict"])
    comp = first_call(fns["eqx"])
    engine.set_compiled_call(capture)
    try:  # (lowered and compiled again for the analysis, untimed)
        for fn in fns.values():
            fn()
    finally:
        engine.set_compiled_call(None)
    np.testing.assert_allclose(fns["eqx"](), fns["dict"](), rtol=1e-10)  # the same run
    ts = {k: [] for k in fns}
    for _ in range(5 if quick else 9):  # alternately, so drift on a shared machine hits both
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    steps = epochs * -(-m // 32)
    return [dict(case=f"Equinox MLP {'-'.join(map(str, sizes))} via from_equinox, adam {steps:,} steps of 32 "
                      f"({by_dict.num_params:,} parameters, {m} examples)",
                 peer="the same network as a dict via model_problem", peer_s=statistics.median(ts["dict"]),
                 jaxgd_s=statistics.median(ts["eqx"]), compile_s=comp, target=0.95,
                 note=(f"target: the adapter within 5 % of the dict (ratio ≥ 0.95); timed alternately, medians. "
                       f"XLA's cost analysis of the two compiled runs is {'equal' if costs[0] == costs[1] else 'NOT equal'}"
                       f" ({', '.join(f'{k} {v:,.0f}' for k, v in costs[1].items() if v is not None)})"))]


def _stacked_linear(p, x_i, y_i):  # a linear model whose weights are a list of scalars
    return (jnp.dot(jnp.stack(p), x_i) - y_i) ** 2


def _linear(p, x_i, y_i):  # the same model on one vector
    return (jnp.dot(p, x_i) - y_i) ** 2


def _unstacked_linear(p, x_i, y_i):  # the list model on one vector, cut into its scalars by the loss
    return _stacked_linear(list(jax.lax.unstack(p)), x_i, y_i)


def _squared(model, x_i, y_i):
    return (model(x_i)[0] - y_i) ** 2


def many_leaves_cases(quick):
    """Many small leaves against one leaf holding the same numbers (issue 23: 1,000 scalar leaves
    took 54 s and 2 GB for two steps, one leaf 1 s). A linear model of 1,000 features written on a
    list of 1,000 scalars vs on one (1000,) vector, adam, 2 full-batch steps: the first call
    (trace + compile + run) and a warm call, each target ≤ 2× the vector. And an Equinox MLP of
    many narrow layers via from_equinox vs the same network's parameters raveled into one leaf
    (the loss unravels them: the same arithmetic). Each case in a fresh problem (nothing cached)."""
    from jax.flatten_util import ravel_pytree

    n, m = 1000, 64
    rng = np.random.default_rng(0)
    x = rng.normal(size=(m, n)) / np.sqrt(n)
    y = x @ rng.normal(size=n)
    kw = dict(optimizer="adam", lr=0.01, epochs=2)
    probs = {"tree": jaxgd.model_problem(_stacked_linear, [jnp.zeros(()) for _ in range(n)], (x, y)),
             "vector": jaxgd.model_problem(_linear, jnp.zeros(n), (x, y)),
             "twin": jaxgd.model_problem(_unstacked_linear, jnp.zeros(n), (x, y))}
    fns = {k: (lambda p=p: block(jaxgd.run(p, **kw).params)) for k, p in probs.items()}
    cold = {k: first_call(fn) for k, fn in fns.items()}
    warm = {k: median_time(fn, repeat=5 if quick else 9) for k, fn in fns.items()}
    rows = [dict(case=f"{n:,} scalar leaves, adam 2 steps: first call", peer=f"one ({n},) leaf: first call",
                 peer_s=cold["vector"], jaxgd_s=cold["tree"], compile_s=None, target=1 / 2, inverse=True,
                 note="trace + compile + run of a fresh problem; the tree runs on one flat vector inside the "
                      "compiled step (jaxgd.engine.flat), its trajectory cut back into the leaves after"),
             dict(case=f"{n:,} scalar leaves, adam 2 steps: warm call", peer=f"one ({n},) leaf: warm call",
                  peer_s=warm["vector"], jaxgd_s=warm["tree"], compile_s=None, target=1 / 2, inverse=True,
                  note="the whole jaxgd.run: checking each leaf, raveling the start, the compiled run, and the "
                       "trajectory cut back into 1,000 leaves (NumPy views); the start is checked and raveled once "
                       "per problem"),
             dict(case=f"{n:,} scalar leaves, adam 2 steps: first call", peer=f"one ({n},) leaf whose loss unstacks it "
                  "into the same 1,000 scalars: first call", peer_s=cold["twin"], jaxgd_s=cold["tree"], compile_s=None,
                  target=1 / 2, inverse=True,
                  note="the same arithmetic on both sides: what the tree costs beyond its model's own 1,000-operand "
                       "stack (which the plain vector above does not have)")]
    try:
        import equinox as eqx
    except ImportError:
        return rows
    depth, width = (50, 4) if quick else (200, 4)
    xs = rng.normal(size=(m, width))
    ys = np.sin(xs.sum(axis=1))
    net = eqx.nn.MLP(width, 1, width, depth, activation=jnp.tanh, key=jax.random.key(0))
    by_eqx = jaxgd.from_equinox(net, _squared, (xs, ys))
    arrays, rest = eqx.partition(net, eqx.is_inexact_array)
    v0, unravel = ravel_pytree(arrays)
    one = jaxgd.model_problem(lambda v, x_i, y_i: _squared(eqx.combine(unravel(v), rest), x_i, y_i), v0, (xs, ys))
    leaves = len(jax.tree.leaves(by_eqx.init))
    fns = {"eqx": lambda: block(jaxgd.run(by_eqx, **kw).params), "one": lambda: block(jaxgd.run(one, **kw).params)}
    cold = {k: first_call(fn) for k, fn in fns.items()}
    np.testing.assert_allclose(ravel_pytree(eqx.filter(jaxgd.run(by_eqx, **kw).model(), eqx.is_inexact_array))[0],
                               jaxgd.run(one, **kw).model(), rtol=1e-10, atol=1e-12)  # the same run
    rows.append(dict(case=f"Equinox MLP, {depth} hidden layers of {width} ({leaves} leaves, {v0.size:,} parameters) "
                          f"via from_equinox, adam 2 steps: first call",
                     peer="the same parameters as one raveled leaf: first call", peer_s=cold["one"],
                     jaxgd_s=cold["eqx"], compile_s=None, target=1 / 2, inverse=True,
                     note="trace + compile + run; the peer's loss unravels the vector itself"))
    return rows


def _xent(model, x_i, y_i):
    return -jax.nn.log_softmax(model(x_i))[y_i]


# ----------------------------------------------------------------------------- curvature


CURVATURE_MEMORY = """
import json, resource, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import jaxgd
from jaxgd import spectrum
from jaxgd.models import mlp

m, chunk = int(sys.argv[1]), (None if sys.argv[2] == "auto" else int(sys.argv[2]))
rng = np.random.default_rng(0)
model = mlp((64, 32, 32, 10), "tanh", "classification", loss="mse")
prob = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)),
                           (rng.standard_normal((m, 64)), rng.integers(0, 10, m)))
v0 = np.ones(prob.num_params)
kw = dict(k=1, max_iter=10, tol=1e-300, examples_per_chunk=chunk)  # tol: all 10 HVPs, the same work each way
mib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
before = mib()  # the data made, JAX started
jax.block_until_ready(spectrum.top_eigenpairs(prob, prob.init, v0, **kw))  # compile + run: what a user's first call costs
after = mib()
t = time.perf_counter()
lam = jax.block_until_ready(spectrum.top_eigenpairs(prob, prob.init, v0, **kw)).eigenvalues
run_s = time.perf_counter() - t
mem = jax.jit(lambda p: spectrum.top_eigenpairs(prob, p, v0, **kw).eigenvalues).lower(prob.init).compile().memory_analysis()
print(json.dumps(dict(before=before, after=after, run_s=run_s, lam=float(lam[0]),
                      temp=None if mem is None else mem.temp_size_in_bytes / 2**20,
                      chunk=spectrum.default_chunk(m, prob.num_params) if chunk is None else chunk)))
"""


def _curvature_memory(m, chunk):
    """Peak memory of one direct ``top_eigenpairs`` call on ``m`` synthetic examples, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", CURVATURE_MEMORY, str(m), chunk], capture_output=True, text=True,
                         check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def curvature_cases(quick):
    """The curvature engine (issue 25): a second direct call of ``top_eigenpairs`` against the user's own
    ``jax.jit`` of it on the edge-of-stability MLP (target ≤ 2×), the cost of the top 3 along a run
    (``sharpness_k=3``) against the top one, and the peak memory of a
    ``top_eigenpairs`` call on 10⁴ and 10⁵ synthetic examples (the same 3,466-parameter MLP, digits-
    shaped inputs), its HVPs in chunks (the default rule) against in one piece, each in a fresh process:
    the process's peak RSS (``ru_maxrss``) after its first call (compiling included) and XLA's temporary
    buffers of the compiled program (``memory_analysis().temp_size_in_bytes``)."""
    from jaxgd import spectrum

    eos = eos_problem()
    v0 = jax.tree.map(jnp.ones_like, eos.init)
    kw = dict(k=2, max_iter=60, tol=1e-8)
    direct = lambda: block(spectrum.top_eigenpairs(eos, eos.init, v0, **kw))
    jitted_fn = jax.jit(lambda p, v: spectrum.top_eigenpairs(eos, p, v, **kw))
    jitted = lambda: block(jitted_fn(eos.init, v0))
    comp = first_call(direct)
    first_call(jitted)
    t_direct, t_jit = median_time(direct, repeat=5), median_time(jitted, repeat=5)
    hvps = int(spectrum.top_eigenpairs(eos, eos.init, v0, **kw).num_hvps)
    rows = [dict(case=f"top_eigenpairs, k=2, a second direct call ({eos.num_params:,} parameters, 500 examples, "
                      f"{hvps} HVPs)", peer="the same call in the user's own jax.jit", peer_s=t_jit,
                 jaxgd_s=t_direct, compile_s=comp, target=0.5, inverse=True,
                 note="the direct call compiles once per loss, shapes and static arguments and reuses it "
                      "(it took 4-7 s per call before issue 25)")]
    steps, every = (100 if quick else 300), 10
    runs = {k: (lambda k=k: block(jaxgd.run(eos, "gd", lr=0.15, epochs=steps, sharpness_every=every,
                                            sharpness_k=k).sharpness)) for k in (None, 3)}
    comp = first_call(runs[3])
    first_call(runs[None])
    t1, t3 = median_time(runs[None], repeat=1), median_time(runs[3], repeat=1)
    hv = {k: float(np.mean(np.asarray(jaxgd.run(eos, "gd", lr=0.15, epochs=steps, sharpness_every=every,
                                                sharpness_k=k).sharpness_hvps)[::every])) for k in (None, 3)}
    rows.append(dict(case=f"{steps}-step gd run with the top 3 eigenvalues every {every} steps (sharpness_k=3, "
                          f"{eos.num_params:,} parameters)", peer="the same run with the top one (sharpness_every alone)",
                     peer_s=t1, jaxgd_s=t3, compile_s=comp,
                     note=(f"{hv[3]:.1f} HVPs per measurement for the top 3 against {hv[None]:.1f} for the top one "
                           "(Lanczos warm-started from the sum of the last Ritz vectors; run's default sharpness_tol)")))
    for m in ((10**4,) if quick else (10**4, 10**5)):
        one, cut = _curvature_memory(m, str(m)), _curvature_memory(m, "auto")
        temp = lambda r: "n/a" if r["temp"] is None else f"{r['temp']:.1f} MiB"
        rows.append(dict(case=f"top_eigenpairs peak memory, {m:,} examples, 3,466-parameter MLP (10 HVPs): the "
                              "process's peak RSS, first call (compiling included)",
                         peer="HVPs on all the data in one piece", peer_s=one["after"] * 2**20,
                         jaxgd_s=cut["after"] * 2**20, compile_s=None, mib=True,
                         note=(f"chunks of {cut['chunk']:,} examples (the default rule) against one piece: XLA's "
                               f"temporary buffers {temp(cut)} against {temp(one)}; peak RSS before the call "
                               f"{cut['before']:.0f} / {one['before']:.0f} MiB (JAX and the data); second call "
                               f"{cut['run_s']:.2f} s against {one['run_s']:.2f} s; top eigenvalue "
                               f"{cut['lam']:.12g} against {one['lam']:.12g}")))
    return rows


# ----------------------------------------------------------------------------- the compare suite


LIGHTBENCH_S = 8_000  # LightBench's published time per optimizer, low end (8,000–14,500 s; 1,000 sequential trials)


def compare_cases(quick):
    """The default ``jaxgd.compare`` suite (10 tasks × 6 optimizers × 2,000 runs per optimizer per
    task: 25 lrs × 8 second values × 10 seeds, gd 200 lrs × 10 seeds; 200 gradient evaluations each),
    once, wall clock and this process's CPU time, against LightBench's published time per optimizer
    times the six. Target: under an hour in all (``--quick``: the 3-task suite)."""
    kw = dict(tasks=jaxgd.comparison.QUICK, seeds=3, num_lrs=6, num_second=2, budget=60) if quick else {}
    t, cpu = time.perf_counter(), time.process_time()
    c = jaxgd.compare(**kw)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    per = c.meta["runs_per_optimizer"]
    peer = LIGHTBENCH_S * len(c.optimizers)
    return [dict(case=f"jaxgd compare, {'quick' if quick else 'default'} suite: {len(c.tasks)} tasks × "
                      f"{len(c.optimizers)} optimizers × {min(per.values()):,} runs each, {c.budget} gradient "
                      f"evaluations per run ({c.meta['runs']:,} runs)",
                 peer=f"LightBench: {LIGHTBENCH_S:,} s per optimizer × {len(c.optimizers)}", peer_s=peer, jaxgd_s=wall,
                 compile_s=None, target=peer / 3600,
                 note=(f"target: under 1 h in all (ratio ≥ {peer / 3600:.1f}); one run, compiling included; "
                       f"{cpu:.0f} s of CPU time in this process; slowest task "
                       f"{max(c.meta['task_seconds'], key=c.meta['task_seconds'].get)} "
                       f"({max(c.meta['task_seconds'].values()):.0f} s). LightBench's tasks and trials differ: "
                       f"the ratio compares the published wall times, not the same work"))]


# ----------------------------------------------------------------------------- real sweeps


REAL_SIZES, REAL_M = (64, 32, 32, 10), 512


def real_problem(dtype="float64"):
    """Issue 24's model: a tanh MLP 64-32-32-10 (3,466 parameters) on the first 512 digits, softmax
    cross-entropy; jaxgd's own MLP (its first layer declared linear: planes share it)."""
    from jaxgd.datasets import load
    from jaxgd.models import mlp

    d = load("digits")
    model = mlp(REAL_SIZES, "tanh", "classification")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0), dtype=dtype),
                               (d.x[:REAL_M], d.y[:REAL_M]), name="digits MLP", dtype=dtype)


def torch_threads(problem) -> int:
    """The faster of 1 and 2 intra-op threads (JAX's CPU client uses the 2 cores) for 30 full-batch Adam
    steps of the model in float64 (three interleaved repetitions, medians), set for the rest of the group:
    on a shared machine a 2-thread OpenMP region can wait for a core (a float64 matmul measured 14 ms on 2
    threads, 0.26 ms on 1), and the peer should run at its best."""
    import torch

    def at(k):
        def go():
            torch.set_num_threads(k)
            torch_adam_runs(problem, [1e-3], 30)
        return go

    t = interleaved({k: at(k) for k in (1, min(2, os.cpu_count() or 1))}, 3)
    torch.set_num_threads(min(t, key=t.get))
    return torch.get_num_threads()


def torch_mlp(problem, dtype="float64"):
    """The same network in PyTorch (nn.Linear stores (out, in), as jaxgd's MLP), the same weights and
    data: ``(net, x, y)``."""
    import torch

    dt = getattr(torch, dtype)
    layers = []
    for i, k in enumerate(sorted(problem.init)):
        w, b = (np.asarray(problem.init[k][a]) for a in ("w", "b"))
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w)), lin.bias.copy_(torch.tensor(b))
        layers += [lin] if i == len(problem.init) - 1 else [lin, torch.nn.Tanh()]
    x, y = problem.data
    return torch.nn.Sequential(*layers), torch.tensor(np.asarray(x), dtype=dt), torch.tensor(np.asarray(y), dtype=torch.long)


def torch_adam_runs(problem, lrs, steps):
    """One PyTorch eager run per lr (full-batch Adam, torch.optim.Adam's defaults = jaxgd's), each
    from the problem's start: the final losses."""
    import copy

    import torch

    net0, x, y = torch_mlp(problem)
    out = []
    for lr in lrs:
        net = copy.deepcopy(net0)
        opt = torch.optim.Adam(net.parameters(), lr=float(lr))
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        with torch.no_grad():
            out.append(float(torch.nn.functional.cross_entropy(net(x), y)))
    return out


def torch_power_iteration(loss, params, max_iter=100, tol=1e-3):
    """PyHessian's ``hessian.eigenvalues()`` (top_n=1, its defaults maxIter=100, tol=1e-3): power iteration on
    Hessian-vector products by double backward, from a fresh Gaussian vector; the eigenvalue and HVPs used."""
    import torch

    grads = torch.autograd.grad(loss, params, create_graph=True)
    v = [torch.randn_like(p) for p in params]
    norm = torch.sqrt(sum((u * u).sum() for u in v))
    v = [u / norm for u in v]
    eig = None
    for k in range(max_iter):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        new = float(sum((h * u).sum() for h, u in zip(hv, v)))
        norm = torch.sqrt(sum((h * h).sum() for h in hv))
        v = [h / norm for h in hv]
        if eig is not None and abs(new - eig) / (abs(eig) + 1e-6) < tol:
            return new, k + 1
        eig = new
    return eig, max_iter


def torch_gd_sharpness_runs(problem, lrs, steps, every):
    """One PyTorch eager run per lr (full-batch gd, torch.optim.SGD) with the top Hessian eigenvalue by
    power iteration (PyHessian's way) every ``every`` steps: ``(sharpness at step 0 of each run, HVPs)``."""
    import copy

    import torch

    torch.manual_seed(0)
    net0, x, y = torch_mlp(problem)
    first, hvps = [], 0
    for lr in lrs:
        net = copy.deepcopy(net0)
        params = list(net.parameters())
        opt = torch.optim.SGD(params, lr=float(lr))
        for t in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            if t % every == 0:
                eig, k = torch_power_iteration(loss, params)
                hvps += k
                first += [eig] if t == 0 else []
            loss.backward()
            opt.step()
    return first, hvps


def torch_plane(problem, plane, g, rows, dtype):
    """loss-landscapes' way (``random_plane`` with its ``Loss`` metric): for each grid point the model's
    weights are set in Python (origin + a·d1 + b·d2, in place), then the loss is one forward call, under
    ``torch.no_grad()``; the first ``rows`` rows of the ``len(g)²`` grid."""
    import torch

    net, x, y = torch_mlp(problem, dtype)
    dt = getattr(torch, dtype)
    ps = list(net.parameters())  # layer by layer, weight then bias: the problem's sorted layers, w then b
    O, U, V = ([torch.tensor(np.asarray(t[k][a]), dtype=dt) for k in sorted(t) for a in ("w", "b")] for t in plane)
    out = np.empty((rows, len(g)))
    with torch.no_grad():
        for i, a in enumerate(g[:rows]):
            for j, b in enumerate(g):
                for p, o, u, v in zip(ps, O, U, V):
                    torch.add(o, u, alpha=float(a), out=p).add_(v, alpha=float(b))
                out[i, j] = float(torch.nn.functional.cross_entropy(net(x), y))
    return out


def interleaved(fns, repeat):
    """Median seconds of each of ``fns`` (a dict), timed in turn ``repeat`` times (after one untimed
    call each), so drift on a shared machine hits all alike."""
    for fn in fns.values():
        fn()
    ts = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


FIRST_CALL = textwrap.dedent("""
    import json, logging, sys, time
    import jax; jax.config.update("jax_enable_x64", True)
    import numpy as np, jaxgd
    sys.path.insert(0, {here!r})
    from bench import real_problem
    p = real_problem(); lrs = np.geomspace({lo}, {hi}, {n})
    kw = dict(epochs={steps}, sharpness_every={every})
    jax.block_until_ready(jax.jit(lambda v: v * 2)(np.ones(3)))  # the client is up: only the call below is timed
    spans = []  # jax_log_compiles: "Finished tracing + transforming <fn> in s", "... MLIR ...", "... XLA compilation ..."

    class Spans(logging.Handler):
        def emit(self, record):
            m = record.getMessage()
            if m.startswith("Finished") and " in " in m and m.endswith(" sec"):
                spans.append((m.split(" for ")[0].split(" of ")[0].replace("Finished ", ""), m.split(" of ")[-1].split(" for ")[0].split(" in ")[0], float(m.rsplit(" in ", 1)[1][:-4])))

    logging.getLogger("jax").addHandler(Spans()); logging.getLogger("jax").setLevel(logging.DEBUG)
    jax.config.update("jax_log_compiles", True)
    what = sys.argv[1]
    call = (lambda: jaxgd.sweep(p, "gd", lr=lrs, **kw)) if what == "sweep" else (lambda: jaxgd.run(p, "gd", lr=float(lrs[-1]), **kw))
    t = time.perf_counter(); jax.block_until_ready(call().loss); first = time.perf_counter() - t
    t = time.perf_counter(); jax.block_until_ready(call().loss); warm = time.perf_counter() - t
    json.dump(dict(first=first, warm=warm, spans=spans), sys.stdout)
""")


def _first_call(what, **fmt):
    """``{first, warm, spans}`` of a fresh process's first ``what`` ("sweep" or "run") call."""
    code = FIRST_CALL.format(here=os.path.dirname(os.path.abspath(__file__)), **fmt)
    env = dict(os.environ, JAXGD_CACHE_DIR="off", JAX_ENABLE_COMPILATION_CACHE="false")
    r = subprocess.run([sys.executable, "-c", code, what], capture_output=True, text=True, check=True, env=env)
    return json.loads(r.stdout)


def _where(spans) -> str:
    """The compile spans summed by stage, the largest programs named."""
    stages = {}
    for stage, _, sec in spans:
        key = "tracing" if "tracing" in stage else "lowering to MLIR" if "MLIR" in stage else \
            "XLA compilation" if "compilation" in stage else stage
        stages[key] = stages.get(key, 0.0) + sec
    big = sorted(((sec, fn) for stage, fn, sec in spans if "compilation" in stage), reverse=True)[:2]
    return ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()) + (
        "; XLA's largest: " + ", ".join(f"{fn} {sec:.2f} s" for sec, fn in big) if big else "")


def real_sweep_cases(quick):
    """Issue 24 on a real model (the 64-32-32-10 tanh MLP, 3,466 parameters, 512 digits, float64, full
    batch), side by side: (1) an Adam sweep over 32 lrs × 1,000 steps against 32 PyTorch eager runs and
    32 ``jaxgd.run`` calls; (2) a gd sweep over 8 lrs × 500 steps with the sharpness every 10 against 8
    ``run`` calls and PyTorch gd with PyHessian's power iteration every 10 steps; (3) a 101² plane against
    loss-landscapes' way in PyTorch, float64 and float32; (4) the sweep's first call (trace + compile) in
    a fresh process against one run's. ``quick``: smaller sizes, fewer repeats."""
    if not have_torch():
        return [dict(case="real sweeps", peer="torch eager", peer_s=None, jaxgd_s=float("nan"), compile_s=None,
                     note="skipped: torch not installed (pip install torch==2.13.0)")]
    import torch

    p = real_problem()
    tv = f"torch {torch.__version__} eager ({torch_threads(p)} thread(s), the faster of 1 and 2 here)"
    n, rep = p.num_params, (1 if quick else 3)
    rows = []

    # (1) Adam sweep
    lrs, steps = np.geomspace(1e-4, 3e-2, 8 if quick else 32), (100 if quick else 1000)
    swept = lambda: block(jaxgd.sweep(p, "adam", lr=lrs, epochs=steps).loss)
    runs = lambda: [block(jaxgd.run(p, "adam", lr=float(lr), epochs=steps).loss) for lr in lrs]
    comp = first_call(swept)
    mine = np.asarray(jaxgd.sweep(p, "adam", lr=lrs, epochs=steps).loss[:, -1])
    theirs = torch_adam_runs(p, lrs[[0, -1]], steps)  # the same runs: the same final losses
    np.testing.assert_allclose(theirs, mine[[0, -1]], rtol=1e-6)
    t = interleaved({"sweep": swept, "runs": runs, "torch": lambda: torch_adam_runs(p, lrs, steps)}, rep)
    case = f"Adam sweep, {len(lrs)} lrs × {steps:,} full-batch steps ({n:,}-parameter MLP, {REAL_M} digits)"
    rows += [dict(case=case, peer=f"{len(lrs)} {tv} runs", peer_s=t["torch"], jaxgd_s=t["sweep"], compile_s=comp,
                  target=4.0, note=f"final losses of the first and last lr equal torch's to 1e-6; medians of {rep}, "
                                   "interleaved"),
             dict(case=case, peer=f"{len(lrs)} separate jaxgd.run calls", peer_s=t["runs"], jaxgd_s=t["sweep"],
                  compile_s=comp, target=1.5)]

    # (2) gd sweep with the sharpness every 10 steps
    lrs, steps, every = np.geomspace(0.05, 0.5, 4 if quick else 8), (100 if quick else 500), 10
    kw = dict(epochs=steps, sharpness_every=every)
    swept = lambda: block(jaxgd.sweep(p, "gd", lr=lrs, **kw).loss)
    runs = lambda: [block(jaxgd.run(p, "gd", lr=float(lr), **kw).loss) for lr in lrs]
    comp = first_call(swept)
    s = jaxgd.sweep(p, "gd", lr=lrs, **kw)
    first_eigs, _ = torch_gd_sharpness_runs(p, lrs[:1], 1, every)
    gap = abs(first_eigs[0] / float(s.sharpness[0, 0]) - 1)  # the same Hessian at the start (power iteration
    assert gap < 0.1, (first_eigs[0], float(s.sharpness[0, 0]))  # stops on a relative change < 1e-3: it lags)
    hvps = {}

    def torch_runs():
        hvps["torch"] = torch_gd_sharpness_runs(p, lrs, steps, every)[1]

    workers = runs_mod.stack(p, "gd", lrs, steps, sharpness=runs_mod.check_sharpness(every, 50, 1e-4, None, p)).workers
    single = lambda: block(jaxgd.sweep(p, "gd", lr=lrs, workers=1, **kw).loss)  # the same program in one thread
    t = interleaved({"sweep": swept, "runs": runs, "torch": torch_runs, "one thread": single}, rep)
    measured = len(lrs) * len(range(0, steps, every))
    case = (f"gd sweep, {len(lrs)} lrs × {steps:,} steps, sharpness every {every} ({n:,} parameters, {REAL_M} digits)")
    rows += [dict(case=case, peer=f"{len(lrs)} separate jaxgd.run calls", peer_s=t["runs"], jaxgd_s=t["sweep"],
                  compile_s=comp, target=1.5,
                  note=(f"{float(np.nanmean(np.where(s.sharpness_hvps > 0, s.sharpness_hvps, np.nan))):.1f} HVPs per "
                        f"measurement (Lanczos, residual ≤ 1e-4·λ, warm-started)")),
             dict(case=case, peer=f"{len(lrs)} {tv} gd runs + PyHessian's power iteration", peer_s=t["torch"],
                  jaxgd_s=t["sweep"], compile_s=comp, target=4.0,
                  note=(f"power iteration as PyHessian's eigenvalues() (maxIter 100, tol 1e-3, fresh Gaussian start): "
                        f"{hvps['torch'] / measured:.1f} HVPs per measurement; at step 0 it gives {first_eigs[0]:.4g}, "
                        f"jaxgd's Lanczos {float(s.sharpness[0, 0]):.4g} ({100 * gap:.1f} % apart: power iteration "
                        "stops on a relative change below 1e-3 and lags where the top eigenvalues are close)")),
             dict(case=case + ", workers=1 (the default's program in one thread)", peer=f"{len(lrs)} separate jaxgd.run calls",
                  peer_s=t["runs"], jaxgd_s=t["one thread"], compile_s=None, target=1.5,
                  note=f"the default shares the runs among {workers} thread(s) here (runs.default_workers: every "
                       "core for sharpness lanes one after another on one CPU device); this row is one thread")]

    # (3) planes
    from jaxgd import planes

    grid = 41 if quick else 101
    g = np.linspace(-1, 1, grid)
    sub = 4 if quick else 10
    for dtype in ("float64", "float32"):
        q = real_problem(dtype)
        plane = planes.random_plane(q, q.init, jax.random.key(1))
        jx = lambda: block(planes.plane_surface(q, plane, g, g))
        comp = first_call(jx)
        S = np.asarray(jx())
        ref = torch_plane(q, plane, g, 1, dtype)  # the same losses
        np.testing.assert_allclose(ref[0], S[0], rtol=1e-10 if dtype == "float64" else 1e-4)
        t = interleaved({"jaxgd": jx, "torch": lambda: torch_plane(q, plane, g, sub, dtype)}, rep)
        rows.append(dict(case=f"{grid}² plane, {dtype} ({n:,}-parameter MLP, {REAL_M} digits)",
                         peer=f"loss-landscapes' way in {tv} (×{grid / sub:.1f} from {sub} rows)",
                         peer_s=t["torch"] * grid / sub, jaxgd_s=t["jaxgd"], compile_s=comp, target=3.0,
                         note=("weights set per point in Python (in place), then one forward pass under no_grad; "
                               "jaxgd computes the first layer once per direction (models.FirstLayer), the rest "
                               f"per point, in batches of {planes.batch_points(grid * grid, n)} points")))

    # (4) first calls, each in a fresh process
    fmt = dict(lo=0.05, hi=0.5, n=4 if quick else 8, steps=100 if quick else 500, every=10)
    sweep_first, run_first = _first_call("sweep", **fmt), _first_call("run", **fmt)
    rows.append(dict(case=f"first call (trace + compile + run) of that {fmt['n']}-lr sweep, fresh process",
                     peer="first call of one jaxgd.run (the same settings), fresh process",
                     peer_s=run_first["first"], jaxgd_s=sweep_first["first"], compile_s=None, target=1 / 2,
                     inverse=True,
                     note=(f"warm calls: sweep {sweep_first['warm']:.2f} s, run {run_first['warm']:.2f} s. Where the "
                           f"sweep's first call goes (jax_log_compiles): {_where(sweep_first['spans'])}; the run's: "
                           f"{_where(run_first['spans'])}")))
    rows.append(dict(case=f"trace + compile of that {fmt['n']}-lr sweep (first call − warm call), fresh process",
                     peer="trace + compile of one jaxgd.run (first − warm), fresh process",
                     peer_s=run_first["first"] - run_first["warm"], jaxgd_s=sweep_first["first"] - sweep_first["warm"],
                     compile_s=None, target=1 / 2, inverse=True,
                     note="the issue's \"first call (trace + compile)\": what the sweep's program costs to build beyond "
                          "the run's, its own run time taken out"))
    return rows


# ----------------------------------------------------------------------------- output


def ratio(r):
    if r.get("peer_s") is None:
        return None
    return r["peer_s"] / r["jaxgd_s"]


def fmt_s(v, count=False, mib=False):
    if v is None:
        return "—"
    if mib:
        return f"{v / 2**20:,.1f} MiB"
    if count:
        return f"{v:.1f} HVPs"
    return f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.2f} s"


def markdown(rows, meta) -> str:
    lines = ["# Benchmarks", "",
             f"Measured by `make bench` (`scripts/bench.py`) on {meta['machine']}, {meta['date']}; "
             f"float64 on {meta['device']}; jax {meta['versions']['jax']}, optax {meta['versions']['optax']}, "
             f"numpy {meta['versions']['numpy']}, torch {meta['versions'].get('torch', 'not installed')}, "
             f"Python {meta['versions']['python']}.", "",
             "Each timing is a median of repeated runs after a warm-up, all cases side by side in one process "
             "(one shared, noisy machine: compare ratios, not absolute times). *compile* is jaxgd's first call "
             "(trace + compile + run), apart from the run time.", "",
             "| case | peer | peer time | jaxgd time | jaxgd compile | ratio | target | met |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        q = ratio(r)
        if r.get("inverse"):
            qs = "—" if q is None else f"jaxgd = {1 / q:.1f}× the peer"
            tgt = f"≤ {1 / r['target']:.0f}× the peer"
            met = "—" if q is None else ("yes" if q >= r["target"] else "no")
        else:
            qs = "—" if q is None else f"{q:,.2f}×" if r.get("target", 1) < 1 else f"{q:,.1f}×"
            tgt = f"≥ {r['target']:g}×" if r.get("target") else ""
            met = "" if not r.get("target") or q is None else ("yes" if q >= r["target"] else "no")
        c, mib = r.get("count", False), r.get("mib", False)
        lines.append(f"| {r['case']} | {r.get('peer') or '—'} | {fmt_s(r.get('peer_s'), c, mib)} | "
                     f"{fmt_s(r['jaxgd_s'], c, mib)} | "
                     f"{fmt_s(r.get('compile_s'))} | {qs} | {tgt} | {met} |")
    notes = [f"- {r['case']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        lines += ["", *notes]
    g = [r for r in rows if r.get("gflops")]
    if g:
        lines += ["", f"Matmul peak (a {2048}² float64 `jnp.dot`, same run): {meta['matmul_gflops']:.1f} GFLOP/s.",
                  f"Sweep throughput (estimated {flops_per_step()} flops per run-step: "
                  "15·m for the losses and gradient with m = 51, plus the update):", ""]
        for r in g:
            lines.append(f"- {r['case']}: {r['gflops']:.2f} GFLOP/s = {100 * r['gflops'] / meta['matmul_gflops']:.1f} % "
                         "of the matmul peak")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sweeps and fewer repeats")
    groups = (("surface", surface_cases), ("long run", long_run_cases), ("report runs", report_runs_cases),
              ("sweep", sweep_cases), ("landscapes", landscape_cases), ("sharpness per lr", sharpness_per_lr_cases),
              ("flows", flow_cases), ("adapters", adapter_cases), ("many leaves", many_leaves_cases),
              ("compare", compare_cases), ("end to end", end_to_end_cases), ("page", page_cases),
              ("curvature", curvature_cases), ("real sweeps", real_sweep_cases))
    ap.add_argument("--only", action="append", choices=[g for g, _ in groups],
                    help="run only this group (repeatable); then nothing is written unless --out/--json are given")
    ap.add_argument("--out", default=None, help="default BENCHMARKS.md")
    ap.add_argument("--json", default=None, help="default bench.json")
    ap.add_argument("--append", default=None, help="a markdown file of notes appended to --out")
    args = ap.parse_args(argv)
    if not args.only:
        args.out, args.json = args.out or "BENCHMARKS.md", args.json or "bench.json"
    rows = []
    for name, fn in groups:
        if args.only and name not in args.only:
            continue
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        new = fn(args.quick)
        for r in new:
            print(f"  {r['case']:<48} {r.get('peer') or '':<40} ratio {ratio(r) or float('nan'):10.1f}",
                  file=sys.stderr, flush=True)
        rows += new
    versions = report_versions()
    if have_torch():
        import torch

        versions["torch"] = torch.__version__
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "device": str(jax.devices()[0]), "date": time.strftime("%Y-%m-%d"), "versions": versions,
            "matmul_gflops": matmul_peak(), "quick": args.quick}
    text = markdown(rows, meta)
    if args.append and os.path.exists(args.append):
        text += "\n" + open(args.append).read()
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
