"""``python -m crossroads.cli``."""

from . import main

main()
