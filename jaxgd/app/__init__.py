"""The application above the library and its figures (:mod:`jaxgd.plots`): the report, the command
line, their pages and files.

``presets`` (the notebook's modes and default learning rates) · ``config`` (the report's settings:
defaults, TOML, flags; checked into a plan) · ``report`` (compute every run, then write the files)
· ``results`` (results.json / .npz / metrics.csv, sweep.json) · ``page`` (the report's HTML page)
· ``landscape`` (``jaxgd landscape``) · ``shell`` (what every page needs: packed data and plotly.js,
the templates) · ``summary`` (``jaxgd notebook``'s text) · ``files``
(strict JSON, atomic writes) · ``program_cache`` (the command's disk cache of compiled runs) ·
``cli`` (the ``jaxgd`` command's parsing and dispatch) · ``commands`` (each command's pipeline and
printed summary) · ``terminal`` (signals, streams, exit codes, the one progress display).

Nothing in :mod:`jaxgd`'s numerics imports from here.
"""

import importlib.util
import sys

EXTRA = ("plotly", "matplotlib", "tqdm") + (("tomli",) if sys.version_info < (3, 11) else ())
"""The packages of the ``app`` extra (``pip install 'jaxgd[app]'``), which the library does not need."""


def require_extra() -> None:
    """Exit with one line (status 1) naming the extra to install when a package of it is missing."""
    missing = [m for m in EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"jaxgd: the command needs the app extra ({', '.join(missing)} missing): pip install 'jaxgd[app]'")
