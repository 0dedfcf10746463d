"""``python -m jaxgd``: the command line."""

from jaxgd.app.cli import entry

entry()
