"""``python -m jaxgd``: the command-line interface."""

from jaxgd.cli import main

raise SystemExit(main())
