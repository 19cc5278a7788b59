"""`proml hash`: print the sha256 and the IPFS CID of a file or directory, storing nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from proml_cli._cli.output import emit_json, emit_line, err
from proml_cli.content import ProgressCallback, hash_path

#: Below this many bytes a progress bar would only flicker.
PROGRESS_THRESHOLD = 64 * 1024 * 1024

EPILOG = """\b
Examples:
  proml hash data/train.csv
  proml hash --json models/
  proml hash --cid-version 0 weights.bin

\b
The CID is the one `ipfs add --cid-version 1` prints (or plain `ipfs add`
with --cid-version 0); for a directory, the one `ipfs add -r --hidden`
prints, and sha256 is the digest of its sorted file manifest.

\b
Exit codes: 0 success; 2 bad usage or input (missing or unreadable path,
refused symlink, file changed while hashed); 130 interrupted."""


def register(app: typer.Typer) -> None:
    """Attach the command to ``app``."""
    app.command(
        "hash", epilog=EPILOG, short_help="sha256 and IPFS CID of a file or directory; no project."
    )(hash_command)


def hash_command(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="File or directory to hash.", show_default=False)
    ],
    cid_version: Annotated[
        int,
        typer.Option(
            "--cid-version",
            min=0,
            max=1,
            help="1: CIDv1 with raw leaves (ipfs add --cid-version 1); 0: CIDv0 (ipfs add).",
        ),
    ] = 1,
    allow_symlinks: Annotated[
        bool,
        typer.Option(
            "--allow-symlinks",
            help="Record symbolic links (as kubo does) instead of refusing them.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Print the sha256 and the IPFS CID of a file or directory; nothing is stored."""
    with _progress(path, enabled=not as_json) as progress:
        result = hash_path(
            path, cid_version=cid_version, allow_symlinks=allow_symlinks, progress=progress
        )
    if as_json:
        emit_json(
            {
                "path": str(result.path),
                "type": result.type,
                "size": result.size,
                "sha256": result.sha256,
                "cid": result.cid,
            }
        )
        return
    emit_line(f"cid     {result.cid}")
    emit_line(f"sha256  {result.sha256}")
    emit_line(f"size    {result.size}")
    emit_line(f"type    {result.type}")
    emit_line(f"path    {result.path}")


def _total_bytes(path: Path) -> int:
    """Estimate the bytes to read, for the progress bar only (errors are left to hash_path)."""
    try:
        if not path.is_dir():
            return path.stat().st_size
    except OSError:
        return 0
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


@contextmanager
def _progress(path: Path, *, enabled: bool) -> Iterator[ProgressCallback | None]:
    """Yield a callback driving a progress bar on stderr, or None when no bar is wanted."""
    if not enabled or not err.is_terminal:
        yield None
        return
    total = _total_bytes(path)
    if total < PROGRESS_THRESHOLD:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("hashing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("hash", total=total)

        def advance(done: int) -> None:
            bar.update(task, completed=done)

        yield advance
