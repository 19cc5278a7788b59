"""Entry point for ``python -m proml_cli``."""

from proml_cli._cli.app import main

main()
