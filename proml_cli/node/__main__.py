"""``python -m proml_cli.node STATE_DIR [--ready-fd N]``: a project's node (clients start it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    """Parse the arguments and serve until idle."""
    parser = argparse.ArgumentParser(prog="python -m proml_cli.node", description=__doc__)
    parser.add_argument("state_dir", type=Path, help="the project's .proml directory")
    parser.add_argument("--ready-fd", type=int, default=None, help="pipe to report readiness on")
    args = parser.parse_args()
    import os

    if os.fork() > 0:  # the starting client waits for this parent; the node lives on detached
        os._exit(0)
    from proml_cli.node.server import run_node

    return run_node(args.state_dir, args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
