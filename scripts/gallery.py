"""The README's gallery: the contour view of every problem's report, as PNGs in docs/gallery/.

    python scripts/gallery.py [OUT_DIR]      # default docs/gallery
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from jaxgd.app import config, plots, report  # noqa: E402
from jaxgd.app.plan import plan  # noqa: E402
from jaxgd.landscapes import LANDSCAPES  # noqa: E402


def main(argv=None) -> list[Path]:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/gallery")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("notebook", *LANDSCAPES):
        data = report.compute(plan(config.check(config.ReportConfig(problem=name, sweep=False))))
        fig = plots.mpl_contour(data.w, data.b, data.surface, report.paths(data), report._minima(data),
                                data.problem.param_names)
        fig.axes[0].set_title(f"{name}: contours of the loss and paths")
        path = out / f"{name}.png"
        fig.savefig(path, dpi=70)
        written.append(path)
        print(path)
    return written


if __name__ == "__main__":
    main()
