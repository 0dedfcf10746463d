"""The adaptive edge of stability (README figure): Adam's preconditioned sharpness λ₁(P⁻¹H) against
its limit 38/lr, 8 learning rates in one sweep.

The set-up of tests/test_preconditioned_sharpness.py: a tanh MLP 64-32-32-10 (3,466 parameters) on
500 digits, squared error against one-hot targets, full-batch Adam (β₁ = 0.9, β₂ = 0.99, ε = 1e-8),
600 steps, λ₁(P⁻¹H) every 10 steps. Run: .venv/bin/python scripts/adaptive_eos_figure.py [OUT.png]
(default docs/adaptive-eos.png; about a minute on a 2-core CPU).
"""
import sys

import jax

jax.config.update("jax_enable_x64", True)
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import jaxgd  # noqa: E402
from jaxgd.curvature import sharpness_limit  # noqa: E402
from jaxgd.datasets import load  # noqa: E402
from jaxgd.models import mlp  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "docs/adaptive-eos.png"
d = load("digits")
model = mlp((64, 32, 32, 10), "tanh", "classification", loss="mse")
p = jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:500], d.y[:500]), name="digits")
lrs, steps, every = np.geomspace(0.02, 0.12, 8), 600, 10
t = jaxgd.sweep(p, "adam", lr=lrs, epochs=steps, b2=0.99, sharpness_every=every, sharpness_of="preconditioned")
s = np.asarray(t.sharpness)[:, ::every]
k = np.arange(0, steps, every)
limits = np.array([sharpness_limit("adam", float(lr), b1=0.9, preconditioned=True) for lr in lrs])

fig = Figure(figsize=(11, 4.2), layout="constrained")
a, b = fig.subplots(1, 2)
cmap = matplotlib.colormaps["viridis"]
for i, lr in enumerate(lrs):
    c = cmap(i / (len(lrs) - 1))
    a.plot(k[1:], s[i, 1:], color=c, lw=1.2, label=f"lr {lr:.3g}")
    a.axhline(limits[i], color=c, ls="--", lw=0.8)
    b.plot(k[1:], s[i, 1:] / limits[i], color=c, lw=1.2, label=f"lr {lr:.3g}")
a.set_yscale("log")
a.set(xlabel="step", ylabel="λ₁(P⁻¹H)", title="Adam's preconditioned sharpness; dashed: 38/lr")
b.axhspan(0.9, 1.1, color="0.9", zorder=0, label="±10 %")
b.axhline(1.0, color="0.3", ls="--", lw=0.8)
b.axvline(steps // 2, color="0.5", ls=":", lw=0.8)
b.set_ylim(0, 2)
b.set(xlabel="step", ylabel="λ₁(P⁻¹H) · lr / 38", title="relative to the limit (second half right of the dotted line)")
b.legend(fontsize=7, ncol=2, loc="upper right")
fig.suptitle("Adam (β₁ = 0.9, β₂ = 0.99), full batch, tanh MLP 64-32-32-10 on 500 digits: 8 learning rates in one sweep "
             "(step 0, where P comes from one gradient, left off)", fontsize=9)
fig.savefig(out, dpi=110)
late = s[:, len(k) // 2:] / limits[:, None]
print(out, "within ±10 % over the second half:", int(np.sum(np.all(np.abs(late - 1) < 0.1, axis=1))), "of 8;",
      "ratios", np.round(late.min(), 3), "to", np.round(late.max(), 3))
