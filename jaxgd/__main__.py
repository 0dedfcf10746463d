"""``python -m jaxgd``: the command-line interface."""

from jaxgd.cli import entry

entry()
