"""Figures. Thin: each takes NumPy-convertible arrays and returns a figure.

The layer between the library and the app: it imports the library, plotly and matplotlib (the
``app`` extra), never :mod:`jaxgd.app`; ``import jaxgd`` reaches it on first use of ``jaxgd.plots``.

Two backends with the same figure set and the same function names — :mod:`.plotly_figs`
(interactive, for notebooks and sweep.html) and :mod:`.mpl_figs` (PNGs, GIF) — over what they share in :mod:`.common`:
:class:`Path`, colours and dashes, the log colour scale, the slider's steps, the sweep's series.
The report's PNGs are drawn with matplotlib; its page draws its own figures. The old flat names
(``plotly_surface``, ``mpl_contour``, ...) stay importable from here. A landscape's figures
(:mod:`.landscape_figs`: ``landscape_contour``, ``landscape_surface``, ``landscape_interpolation``,
``landscape_gaps``, ``landscape_variance``, ``sharpness`` against each run's 2/lr, and
``landscape_figures`` for a whole :class:`jaxgd.Landscape`; its page is ``Landscape.write``) take the
Landscape or its pieces (a projection, trajectories) directly.

Nothing here computes a loss. plotly functions return ``plotly.graph_objects.Figure``;
``mpl_*`` functions return a ``matplotlib.figure.Figure`` built without pyplot (no global
state, never ``show()``), or draw into the ``ax`` given.

Axes everywhere: x = the first parameter (W), y = the second (b), z = loss. A surface array
``S`` has ``S[i, j] = loss(w[i], b[j])`` (see :func:`jaxgd.loss_surface`); plotly's
``z[row]`` runs along y, so plotly gets ``S.T``.
"""

import importlib.util

_missing = [m for m in ("plotly", "matplotlib") if importlib.util.find_spec(m) is None]
if _missing:
    raise ImportError(f"jaxgd.plots needs the app extra ({', '.join(_missing)} missing): pip install 'jaxgd[app]'")

from jaxgd.plots.common import (  # noqa: E402, F401  (re-exported)
    DIAGNOSTICS, LOG_LABEL, MODE_DASH, OPTIMIZER_COLORS, SWEEP_FLOOR, Path, frame_steps, log_excess, path_name,
    style_for)
from jaxgd.plots import landscape_figs, mpl_figs, plotly_figs  # noqa: E402, F401  (re-exported)
from jaxgd.plots.compare_figs import expected_best_curve, lr_sensitivity, performance_profiles, ranking_heatmap  # noqa: E402, F401
from jaxgd.plots.landscape_figs import (  # noqa: E402, F401
    contour as landscape_contour, figures as landscape_figures, gaps as landscape_gaps,
    interpolation as landscape_interpolation, sharpness, surface as landscape_surface, variance as landscape_variance)
from jaxgd.plots.mpl_figs import (  # noqa: E402, F401
    animation as mpl_animation, contour as mpl_contour, data as mpl_data, diagnostics as mpl_diagnostics,
    frames as mpl_frames, loss_curves as mpl_loss_curves, surface as mpl_surface, sweep as mpl_sweep)
from jaxgd.plots.plotly_figs import (  # noqa: E402, F401
    add_step_slider, contour as plotly_contour, data as plotly_data, diagnostics as plotly_diagnostics,
    loss_curves as plotly_loss_curves, surface as plotly_surface, sweep as plotly_sweep)
