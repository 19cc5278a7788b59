"""Entry point for ``python -m proml_cli``."""

from proml_cli.node.client import main

main()
