"""The curvature audit at three points of an edge-of-stability run (README figure and table).

Cohen et al.'s set-up, small (as tests/test_sharpness.py's test_edge_of_stability): a tanh MLP
64-32-32-10 (3,466 parameters) on 500 digits, squared error against one-hot targets, full-batch
gd at lr 0.15 for 2,000 steps. Audited at its start, its first step with sharpness >= 2/lr, and its
end, for the whole model and for one layer's block. Run:
.venv/bin/python scripts/audit_figure.py OUT_DIR   (docs/curvature-audit.png; ~8 min on a 2-core CPU)
"""
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402

import jaxgd  # noqa: E402
from jaxgd import spectrum as sp  # noqa: E402
from jaxgd.datasets import load  # noqa: E402
from jaxgd.models import mlp  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "."
d = load("digits")
model = mlp((64, 32, 32, 10), "tanh", "classification", loss="mse")
p = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:500], d.y[:500]), name="digits")
lr = 0.15
t0 = time.time()
t = jaxgd.run(p, "gd", lr=lr, epochs=2000, sharpness_every=20)
print(f"run: {time.time() - t0:.1f} s, n = {p.num_params}")
steps = sp.run_points(t.sharpness, lr)
points = jax.tree.map(lambda a: a[steps], t.params)
labels = [f"start (step {steps[0]})", f"edge of stability (step {steps[1]}, λ₁ ≥ 2/lr = {2 / lr:.3g})",
          f"end (step {steps[2]})"]
print("steps", steps, "sharpness there", np.asarray(t.sharpness)[steps[:2]], "2/lr", 2 / lr, flush=True)
for leaf in (None, "layer01/w"):
    t0 = time.time()
    a = sp.audit(p, points, jax.random.key(20), num=99, num_probes=10, lanczos_steps=80, max_iter=60, leaf=leaf)
    print(f"audit leaf={leaf}: {time.time() - t0:.1f} s", flush=True)
    tb = a.table
    name = "curvature-audit.png" if leaf is None else "curvature-audit-layer.png"
    jaxgd.plots.audit_figs.density(a, labels if leaf is None else [f"{leaf}: {s}" for s in labels]).savefig(
        f"{out}/{name}", dpi=110)
    print("| point | tr H | Hutchinson ± s.e. | Hutch++ ± s.e. | λ₁..λ₅ (exact) | top-5 rel err | HVPs | tr(H)/n | SLQ mean ± s.e. | tr(H²)/n | SLQ 2nd moment ± s.e. |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, lab in enumerate(labels):
        print(f"| {lab} | {tb['trace'][i]:.5g} | {tb['hutchinson'][i]:.5g} ± {tb['hutchinson_se'][i]:.2g} | "
              f"{tb['hutchpp'][i]:.5g} ± {tb['hutchpp_se'][i]:.2g} | "
              f"{', '.join(f'{v:.4g}' for v in tb['top'][i])} | {tb['top_rel_err'][i]:.1e} | {tb['lanczos_hvps'][i]} | "
              f"{tb['mean'][i]:.4g} | {tb['slq_mean'][i]:.4g} ± {tb['slq_mean_se'][i]:.2g} | {tb['mean_sq'][i]:.4g} | "
              f"{tb['slq_mean_sq'][i]:.4g} ± {tb['slq_mean_sq_se'][i]:.2g} |")
print("steps", steps, "sharpness there", np.asarray(t.sharpness)[steps[:2]], "2/lr", 2 / lr)
