"""Rebuild each figure cell of the teaching notebook with jaxgd, fixed.

One function per figure cell (In [5], [223], [272], [314], [316], [318]); each returns its
figure. Fixed against the notebook: W is on the axis labelled W (the notebook plotted b
there), and SGD runs at the learning rate it is given (the notebook hard-coded 1e-2, which is
the rate used here, now passed explicitly).

    python scripts/notebook_figures.py [OUT_DIR]     # default out/notebook_figures

writes PNGs for the matplotlib cells and HTML pages for the plotly ones (plotly.min.js is
written once beside them, so the pages work offline).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # the notebook's float64; set before any array

import numpy as np  # noqa: E402

import jaxgd  # noqa: E402
from jaxgd import plots  # noqa: E402

GRID = np.linspace(-8, 8, num=101)  # the notebook's W_linspace and b_linspace
PROBLEM = jaxgd.notebook()
START = jaxgd.Params(-4.0, -7.0)  # initialize_params() without a seed


def _surface():
    return jaxgd.loss_surface(PROBLEM, GRID, GRID)


def _path(label, traj, color):
    return plots.Path.from_trajectory(label, traj, color=color)


def batch_gd():
    return jaxgd.run(PROBLEM, "gd", lr=5e-2, epochs=20)


def sgd():
    return jaxgd.run(PROBLEM, "gd", lr=1e-2, epochs=2, batch_size=1, sampling="replacement", rng="numpy", seed=2)


def minibatch():
    return jaxgd.run(PROBLEM, "gd", lr=5e-2, epochs=2, batch_size=8, sampling="shuffle", rng="numpy", seed=1)


def cell05_data():
    """In [5]: the noisy sample scattered with the true line."""
    x, y = PROBLEM.data
    _, y_noisy = jaxgd.notebook_data(noise=1.0, seed=0)
    return plots.mpl_data(np.asarray(x), np.asarray(y), np.asarray(y_noisy))


def cell223_surface():
    """In [223]: the matplotlib 3-D surface with the starting point marked."""
    x, y = PROBLEM.data
    loss0 = float(jaxgd.mse(START, x, y))
    start = plots.Path("start (-4, -7)", np.array([START.w]), np.array([START.b]), np.array([loss0]), color="k")
    return plots.mpl_surface(GRID, GRID, _surface(), [start])


def cell272_surface():
    """In [272]: the plotly surface with a short segment from the start towards (+0.2, +0.2)."""
    x, y = PROBLEM.data
    w = np.array([START.w, START.w + 0.2])
    b = np.array([START.b, START.b + 0.2])
    loss = np.array([float(jaxgd.mse(jaxgd.Params(wi, bi), x, y)) for wi, bi in zip(w, b)])
    return plots.plotly_surface(GRID, GRID, _surface(), [plots.Path("segment", w, b, loss, color="#d62728")],
                                slider=False)


def cell314_batch_gd():
    """In [314]: the surface with the batch gradient-descent path."""
    return plots.plotly_surface(GRID, GRID, _surface(), [_path("batch GD", batch_gd(), "red")])


def cell316_sgd():
    """In [316]: batch GD and SGD paths."""
    return plots.plotly_surface(GRID, GRID, _surface(), [_path("batch GD", batch_gd(), "red"),
                                                         _path("SGD", sgd(), "cyan")])


def cell318_minibatch():
    """In [318]: batch GD, SGD and minibatch paths."""
    return plots.plotly_surface(GRID, GRID, _surface(), [_path("batch GD", batch_gd(), "red"),
                                                         _path("SGD", sgd(), "cyan"),
                                                         _path("minibatch", minibatch(), "gold")])


CELLS = (cell05_data, cell223_surface, cell272_surface, cell314_batch_gd, cell316_sgd, cell318_minibatch)


def main(argv=None) -> list[Path]:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "out/notebook_figures")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for cell in CELLS:
        fig = cell()
        if hasattr(fig, "savefig"):
            path = out / f"{cell.__name__}.png"
            fig.savefig(path, dpi=100)
        else:
            path = out / f"{cell.__name__}.html"
            fig.write_html(path, include_plotlyjs="directory", auto_play=False)
        written.append(path)
        print(path)
    return written


if __name__ == "__main__":
    main()
