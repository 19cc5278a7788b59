"""Output discipline: data on stdout (plain or JSON), everything else on one stderr console."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

#: The one console for messages, warnings, progress and human tables: always stderr.
err = Console(stderr=True, highlight=False, soft_wrap=True)

SCHEMA_VERSION = 1


def emit_json(document: dict[str, Any]) -> None:
    """Write exactly one JSON document to stdout, with the schema version first."""
    body = {"schema_version": SCHEMA_VERSION, **document}
    # print() is the point of this module: stdout carries data and nothing else.
    print(json.dumps(body, sort_keys=False, ensure_ascii=False))  # noqa: T201


def emit_line(text: str) -> None:
    """Write one plain line of data to stdout (no markup interpretation)."""
    print(text)  # noqa: T201


def emit_bytes(data: bytes) -> None:
    """Write bytes of data (an exported document) to stdout unchanged."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def write_file(path: Path, data: bytes, option: str) -> None:
    """Write ``data`` to ``path`` whole (a temporary file renamed over it), for ``option``.

    A path that is there but not a regular file (a pipe, ``/dev/stdout``) is written in place.

    Raises:
        InputError: (exit 2) the directory is missing, or the file cannot be written there.
    """
    from proml_cli.errors import InputError

    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such directory (for {option})")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.exists() and not path.is_file():
            with path.open("wb") as target:
                target.write(data)
            return
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write it (for {option}): {exc.strerror}") from exc


def stdout_console() -> Console:
    """Return a console for human tables on stdout (data), honouring NO_COLOR and pipes."""
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        # Piped or captured: rich would assume 80 columns and fold every row.
        console = Console(file=sys.stdout, highlight=False, width=200)
    return console


def warn(text: str) -> None:
    """Print a warning line to stderr, with file names kept literal."""
    err.print(f"[yellow]warning:[/yellow] {_escape(text)}")


def info(text: str) -> None:
    """Print an informational line to stderr."""
    err.print(_escape(text))


def not_verified(subject: object, reasons: list[str]) -> None:
    """Print a negative verdict to stderr: the subject, then one line per failed check."""
    err.print(f"NOT verified: {subject}", markup=False)
    for reason in reasons:
        err.print(f"  - {reason}", markup=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
