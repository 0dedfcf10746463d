"""The application above the library: the report, the command line, and their figures and files.

``presets`` (the notebook's modes and default learning rates) · ``config`` (the report's settings:
defaults, TOML, flags; checked into a plan) · ``report`` (compute every run, then write the files)
· ``results`` (results.json / .npz / metrics.csv, sweep.json) · ``page`` (the report's HTML page)
· ``landscape`` (``jaxgd landscape``) · ``shell`` (what every page needs: packed data and plotly.js,
the templates, one thinning rule) · ``plots`` (figures: plotly and matplotlib) · ``summary`` (``jaxgd notebook``'s text) · ``files``
(strict JSON, atomic writes) · ``cli`` (the ``jaxgd`` command).

Nothing in :mod:`jaxgd`'s numerics imports from here.
"""
