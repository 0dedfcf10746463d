"""The curvature audit's figure (matplotlib, without pyplot): the SLQ density against the exact
spectrum at each audited point (:func:`jaxgd.spectrum.audit`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxgd.plots.mpl_figs import _blank
from jaxgd.spectrum import Audit, smooth_density


def density(audit: Audit, labels: Sequence[str] | None = None, *, sigma: float | None = None, grid: int = 800,
            bins: int = 60):
    """One panel per point of ``audit``: the histogram of the exact eigenvalues (grey), the exact
    spectrum smoothed with the same Gaussian kernel (black dashes) and the SLQ estimate (blue, mean
    over probes of :func:`jaxgd.spectrum.smooth_density`), on a log density axis; the top-k exact
    eigenvalues (ticks) and Lanczos's (crosses); the trace estimates ± standard error against the
    truth in the title. ``sigma`` (the kernel's width) defaults to 1/100 of each point's spectral
    range. Returns a ``matplotlib.figure.Figure``."""
    lam = np.asarray(audit.eigenvalues)
    P, n = lam.shape
    labels = [f"point {i}" for i in range(P)] if labels is None else list(labels)
    if len(labels) != P:
        raise ValueError(f"labels: must be {P} names, one per point, got {len(labels)}")
    t = audit.table
    fig = _blank((4.6 * P, 4.4))
    axes = fig.subplots(1, P, squeeze=False)[0]
    for i, ax in enumerate(axes):
        lo, hi = lam[i].min(), lam[i].max()
        s = (hi - lo) / 100 if sigma is None else sigma
        x = np.linspace(lo - 5 * s, hi + 5 * s, grid)
        exact = np.asarray(smooth_density(lam[i], np.full(n, 1 / n), x, s))
        est = np.asarray(smooth_density(audit.density.nodes[i], audit.density.weights[i], x, s))
        ax.hist(lam[i], bins=bins, density=True, color="#c7c7c7", label=f"exact eigenvalues (n = {n})")
        ax.plot(x, exact, "--", color="black", lw=1.2, label="exact, smoothed")
        p, m = audit.density.nodes[i].shape
        ax.plot(x, est, color="#1f77b4", lw=1.5, label=f"SLQ ({p} probes × {m} steps)")
        floor = 1e-5 * max(exact.max(), est.max())
        ax.set_yscale("log")
        ax.set_ylim(floor, 3 * max(exact.max(), est.max()))
        ax.plot(t["top"][i], np.full(t["top"].shape[1], 2 * floor), "|", color="black", ms=14,
                label=f"top-{t['top'].shape[1]} exact")
        ax.plot(t["lanczos"][i], np.full(t["top"].shape[1], 2 * floor), "x", color="#d62728", ms=7,
                label=f"Lanczos ({int(t['lanczos_hvps'][i])} HVPs, rel err {t['top_rel_err'][i]:.0e})")
        ax.set_xlabel("Hessian eigenvalue λ")
        ax.set_title(f"{labels[i]}\ntr H = {t['trace'][i]:.4g}; Hutchinson {t['hutchinson'][i]:.4g} ± "
                     f"{t['hutchinson_se'][i]:.2g}; Hutch++ {t['hutchpp'][i]:.4g} ± {t['hutchpp_se'][i]:.2g}",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("spectral density (log)")
    axes[0].legend(fontsize=7.5, loc="upper right")
    return fig
