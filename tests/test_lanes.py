"""A sweep's layout (issue 24): all runs vmapped, ``k`` at a time, or one after another in the same
compiled program (:attr:`jaxgd.engine.Static.lanes`, :func:`jaxgd.runs.lane_layout`) — the same
numbers in every layout, and a sweep of one run equal to :func:`jaxgd.run` bit for bit."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import pool, runs
from jaxgd._checks import ArgumentError
from jaxgd.datasets import load
from jaxgd.models import mlp

pytestmark = pytest.mark.xdist_group("lanes")


@pytest.fixture(scope="module")
def net():
    d = load("digits")
    model = mlp((64, 8, 10), "tanh", "classification")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:96], d.y[:96]))


@pytest.fixture(scope="module")
def net512():
    """The same MLP on 512 digits: 6·610·512 flops a lane-step, past LANE_FLOPS."""
    d = load("digits")
    model = mlp((64, 8, 10), "tanh", "classification")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:512], d.y[:512]))


def _same(a, b, rtol):
    for name in a._fields:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64), rtol=rtol, atol=rtol,
                                       err_msg=name)


@pytest.mark.parametrize("case,lanes", [("sharpness", 1), ("minibatch of several lengths", 3), ("optimizers", 2)])
def test_every_layout_gives_the_same_numbers(net, case, lanes):
    """One after another; a block of three and the remainder of two; blocks of two and one left."""
    kw = {"sharpness": dict(optimizer="gd", lr=[0.05, 0.2, 0.5, 1.0, 2.0], epochs=12, sharpness_every=3),
          "minibatch of several lengths": dict(optimizer="adam", lr=0.01, epochs=[1, 2, 2, 3, 1], batch_size=[16, 32, 16, 8, 96],
                                               seed=[0, 1, 2, 3, 4]),
          "optimizers": dict(optimizer=["gd", "momentum", "adam", "rmsprop", "nesterov"], lr=[0.5, 0.1, 0.01, 0.01, 0.1],
                             epochs=10)}[case]
    ref = jaxgd.sweep(net, **kw, lanes=0)
    _same(jaxgd.sweep(net, **kw, lanes=lanes), ref, 1e-12)
    assert np.all(np.isfinite(ref.loss[:, 0]))


@pytest.mark.parametrize("kw", [dict(optimizer="gd", lr=0.5, epochs=20),
                                dict(optimizer="adam", lr=0.01, epochs=8, sharpness_every=2),
                                dict(optimizer="momentum", lr=0.1, epochs=2, batch_size=16, sampling="replacement")])
def test_a_sweep_of_one_run_is_the_run_bit_for_bit(net, kw):
    r, s = jaxgd.run(net, **kw), jaxgd.sweep(net, **kw)
    for name in r._fields:
        x, y = getattr(r, name), getattr(s, name)
        assert (x is None) == (y is None), name
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
            assert np.array_equal(np.asarray(u), np.asarray(v)[0], equal_nan=True), name


def test_the_rule(monkeypatch, net512):
    nb, net = jaxgd.notebook(), net512
    batch = lambda p, **kw: runs.stack(p, "gd", [0.1, 0.2, 0.3], 2, **kw)  # noqa: E731
    sharp = dict(sharpness=(1, 20, 1e-4))
    monkeypatch.setattr(pool, "cores", lambda: 4)
    assert (batch(nb).static.lanes, batch(nb).workers) == (0, 1)  # 612 flops a lane-step: vmapped
    assert (batch(nb, **sharp).static.lanes, batch(nb, **sharp).workers) == (0, 1)
    assert 6 * net.num_params * 512 > runs.LANE_FLOPS  # 610 parameters on 512 examples
    assert (batch(net).static.lanes, batch(net).workers) == (0, 1)  # no sharpness: vmapped, one thread
    assert (batch(net, **sharp).static.lanes, batch(net, **sharp).workers) == (1, 3)  # every core, one a run
    monkeypatch.setattr(pool, "cores", lambda: 2)
    assert (batch(net, **sharp).static.lanes, batch(net, **sharp).workers) == (1, 2)
    monkeypatch.setattr(pool, "cores", lambda: 1)
    assert (batch(net, **sharp).static.lanes, batch(net, **sharp).workers) == (1, 1)
    monkeypatch.setattr(pool, "cores", lambda: 4)
    b = batch(net, batch_size=8, **sharp)  # a lane-step on 8 examples: 3·10⁴ flops
    assert (b.static.lanes, b.workers) == (0, 1)
    assert (batch(net, lanes=1, **sharp).workers, batch(net, workers=1, **sharp).workers) == (1, 1)  # either given
    one = runs.stack(net, "gd", 0.1, 2, **sharp)  # one run
    assert (one.static.lanes, one.workers) == (1, 1)
    assert batch(net, lanes=0).workers == 1 and batch(net, lanes=3).static.lanes == 3
    assert batch(nb, lanes=1, workers=5).workers == 3  # at most one a run
    assert (batch(net, workers=2).static.lanes, batch(net, workers=2).workers) == (1, 2)  # workers imply lanes=1
    assert (batch(net, lanes=0, workers=2).static.lanes, batch(net, lanes=0, workers=2).workers) == (0, 2)
    with pytest.raises(ArgumentError, match="^lanes must be an integer >= 0, got -1$"):
        jaxgd.sweep(net, "gd", [0.1, 0.2], 2, lanes=-1)


def test_a_step_unsafe_in_threads_keeps_one_or_is_refused(monkeypatch, net512):
    """Threads only where the step's program is safe in several (:func:`jaxgd.pool.hazard`): given
    ``workers`` above 1, a batched LAPACK call, an FFT or a host callback is refused in one line; by
    default the sweep keeps one thread. A LAPACK call on one matrix (the sharpness's Lanczos, lanes
    one after another) runs inline and is safe."""
    monkeypatch.setattr(pool, "cores", lambda: 2)
    d = load("digits")
    x, y = d.x[:512], d.y[:512].astype(np.float64)
    w0 = 0.01 * np.random.default_rng(0).normal(size=(64, 64))  # 4,096 parameters: lanes past LANE_FLOPS
    losses = {"a batched LAPACK call (lapack_dgetrf_ffi": lambda w, xi, yi: jnp.linalg.solve(jnp.eye(64) + w * xi[None, :], xi).sum() ** 2,
              "an FFT": lambda w, xi, yi: jnp.sum(jnp.abs(jnp.fft.rfft(w @ xi)) ** 2),
              "a custom call (xla_": lambda w, xi, yi: _with_callback(jnp.sum((w @ xi) ** 2) - yi, w)}
    for why, loss in losses.items():
        q = jaxgd.model_problem(loss, w0, (x, y), name="mine")
        assert 6 * q.num_params * 512 > runs.LANE_FLOPS
        assert runs.stack(q, "gd", [0.01, 0.02], 2, sharpness=(1, 8, 1e-4)).workers == 1  # by default: one thread
        for lanes in (1, 0):
            with pytest.raises(ArgumentError, match=rf"^workers must be 1 for this sweep, got 99: its step calls {re.escape(why)}"):
                runs.stack(q, "gd", [0.01, 0.02], 2, lanes=lanes, workers=99)  # two threads, one run each
    d8 = net512
    assert runs.stack(d8, "gd", [0.1, 0.2], 2, sharpness=(1, 20, 1e-4), lanes=1, workers=2).workers == 2
    assert runs.stack(d8, "gd", [0.1, 0.2], 2, sharpness=(1, 20, 1e-4), lanes=0, workers=2).workers == 2  # a lane a thread
    with pytest.raises(ArgumentError, match=r"^workers must be 1 for this sweep, got 2: its step calls a batched LAPACK "
                                            r"call \(lapack_dsyevd_ffi on tensor<2x20x20xf64>\), which can deadlock"):
        runs.stack(d8, "gd", [0.1, 0.2, 0.3, 0.4], 2, sharpness=(1, 20, 1e-4), lanes=0, workers=2)


def _with_callback(value, w):
    jax.debug.callback(lambda a: None, w)
    return value


def test_hazard_reads_the_lowered_text():
    call = ('%0:3 = stablehlo.custom_call @lapack_dsyevd_ffi(%arg0) {backend_config = "", mhlo.backend_config = {mode = '
            '86 : ui8}} : ({shape}) -> (tensor<4x4xf64>, tensor<4xf64>, tensor<i32>)')
    assert pool.hazard("func.func @main() {\n" + call.replace("{shape}", "tensor<4x4xf64>") + "\n}") is None
    assert pool.hazard(call.replace("{shape}", "tensor<3x4x4xf64>")) == "a batched LAPACK call (lapack_dsyevd_ffi on tensor<3x4x4xf64>)"
    assert pool.hazard(call.replace("{shape}", "tensor<1x1x4x4xf64>")) is None  # a batch of one runs inline
    assert pool.hazard(call.replace("{shape}", "tensor<?x4x4xf64>")) == "a batched LAPACK call (lapack_dsyevd_ffi on tensor<?x4x4xf64>)"
    assert pool.hazard("%1 = stablehlo.custom_call @mine(%0) : (tensor<4xf64>) -> tensor<4xf64>") == "a custom call (mine)"
    assert pool.hazard("%1 = stablehlo.custom_call @mine(%0)") == "a custom call"  # no signature on the line
    assert pool.hazard('%1 = stablehlo.fft %0, type = RFFT, length = [8] : (tensor<8xf64>) -> tensor<5xcomplex<f64>>') == "an FFT"
    assert pool.hazard("%1 = stablehlo.add %0, %0 : tensor<4xf64>") is None


def test_threads_share_the_runs_bit_for_bit(net):
    """With lanes=1 each run is the run's program whatever its share: two threads (shares of 3 and
    2+1 repeated), three, and one thread give the same bits. Plain array arithmetic (Adam on
    minibatches): what threads are for (no LAPACK call, no FFT: see ``sweep``'s ``workers``)."""
    kw = dict(optimizer="adam", lr=[0.001, 0.003, 0.01, 0.03, 0.1], epochs=3, batch_size=32, seed=[0, 1, 2, 3, 4])
    one = jaxgd.sweep(net, **kw, lanes=1, workers=1)
    for workers in (2, 3):
        t = jaxgd.sweep(net, **kw, lanes=1, workers=workers)
        for name in one._fields:
            for u, v in zip(jax.tree.leaves(getattr(one, name)), jax.tree.leaves(getattr(t, name))):
                assert np.array_equal(u, v, equal_nan=True), (workers, name)


def test_threads_by_default_give_one_threads_bits(monkeypatch, net512):
    """A sweep with sharpness past LANE_FLOPS on one CPU device shares its runs among the cores by
    default (two here, three runs: shares of two and one): the numbers are one thread's, bit for bit."""
    monkeypatch.setattr(pool, "cores", lambda: 2)
    net, kw = net512, dict(optimizer="gd", lr=[0.05, 0.2, 0.5], epochs=6, sharpness_every=2)
    assert runs.stack(net, "gd", kw["lr"], 6, sharpness=(2, 20, 1e-4)).workers == 2
    two, one = jaxgd.sweep(net, **kw), jaxgd.sweep(net, **kw, workers=1)
    assert np.all(one.sharpness[:, ::2] > 0)  # measured every other step (NaN between)
    for name in one._fields:
        for u, v in zip(jax.tree.leaves(getattr(one, name)), jax.tree.leaves(getattr(two, name))):
            assert np.array_equal(u, v, equal_nan=True), name


SEVERAL_DEVICES = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
import jaxgd
from jaxgd import runs
from jaxgd._checks import ArgumentError
from jaxgd.datasets import load
from jaxgd.models import mlp
assert len(jax.devices()) == 2, jax.devices()
d, model = load("digits"), mlp((64, 8, 10), "tanh", "classification")
net = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:96], d.y[:96]))
lanes = lambda p, opt, **kw: runs.stack(p, opt, [0.1, 0.2, 0.3], 2, **kw).static.lanes
print("layouts", lanes(net, "gd"), lanes(net, "gd", sharpness=(1, 20, 1e-4)), lanes(net, ["gd", "newton", "adam"]))
w0 = 0.01 * np.random.default_rng(0).normal(size=(8, 8))
x8 = d.x[:96, :8]
solve = lambda w, xi, yi: jnp.sum(jnp.linalg.solve(jnp.eye(8) + w, xi) ** 2)  # one matrix a run: batched when vmapped
fft = lambda w, xi, yi: jnp.sum(jnp.abs(jnp.fft.rfft(w @ xi)) ** 2)
mine = jaxgd.model_problem(solve, w0, (x8, d.y[:96]), name="solve")
print("solve", lanes(mine, "gd"))
for p, kw in [(net, dict(sharpness_every=1, lanes=0)), (mine, dict(lanes=0)),
              (jaxgd.model_problem(fft, w0, (x8, d.y[:96]), name="fft"), dict())]:
    try:
        jaxgd.sweep(p, "gd", [0.1, 0.2], 2, **kw)
    except ArgumentError as e:
        print("refused", e)
s = jaxgd.sweep(net, "gd", [0.05, 0.2, 0.5], 6, sharpness_every=2)
u = jaxgd.sweep(mine, "gd", [0.05, 0.2, 0.5], 6)
np.savez(sys.argv[1], loss=s.loss, sharpness=s.sharpness, solve=u.loss)
"""


def test_several_cpu_devices_run_lapack_lanes_one_after_another(net, tmp_path):
    """Two CPU devices (in a subprocess: JAX fixes the count when it starts). A sweep with LAPACK in its
    step (sharpness, newton) runs its lanes one after another: the two devices share XLA's CPU thread
    pool, and vmapped, a 3,466-parameter MLP's sharpness sweep hung there (batched eigh waiting on the
    pool it runs in). So does a loss of one's own whose step has a batched LAPACK call (found in the lowered
    program: :func:`jaxgd.pool.hazard`); asked for vmapped lanes, it says so in one line, and a step with a
    hazard even one run at a time (an FFT) is refused. The numbers are one device's."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SEVERAL_DEVICES, str(tmp_path / "s.npz")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "layouts 0 1 1"  # gd alone: vmapped, sharded over the devices
    assert lines[1] == "solve 1"  # a loss of one's own with a batched LAPACK call vmapped: one after another
    assert lines[2] == ("refused lanes must be 1 on several CPU devices for this sweep, got 0: its step calls a batched "
                        "LAPACK call (lapack_dsyevd_ffi on tensor<2x50x50xf64>), which can deadlock the CPU thread pool "
                        "the devices share")
    assert lines[3].startswith("refused lanes must be 1 on several CPU devices for this sweep, got 0: its step calls a "
                               "batched LAPACK call (lapack_dgetrf_ffi on tensor<2x8x8xf64>)")
    assert lines[4] == ("refused loss calls an FFT at every step, which can deadlock the CPU thread pool that several CPU "
                        "devices share: sweep it on one device (without --xla_force_host_platform_device_count)")
    two = np.load(tmp_path / "s.npz")
    one = jaxgd.sweep(net, "gd", [0.05, 0.2, 0.5], 6, sharpness_every=2)
    np.testing.assert_allclose(two["loss"], one.loss, rtol=1e-12, atol=0)
    mine = jaxgd.model_problem(lambda w, xi, yi: jnp.sum(jnp.linalg.solve(jnp.eye(8) + w, xi) ** 2),
                               0.01 * np.random.default_rng(0).normal(size=(8, 8)), (load("digits").x[:96, :8], load("digits").y[:96]))
    np.testing.assert_allclose(two["solve"], jaxgd.sweep(mine, "gd", [0.05, 0.2, 0.5], 6).loss, rtol=1e-12, atol=0)
    np.testing.assert_allclose(two["sharpness"], one.sharpness, rtol=1e-12, atol=0)
