"""``python -m crossroads``: the command line."""

from .cli import main

main()
