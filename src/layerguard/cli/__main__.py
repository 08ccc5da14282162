"""``python -m layerguard.cli``."""

from layerguard.cli.main import main

main()
