"""Helpers for the network tests (anvil, the IPFS node): ports, a relay that can cut a chain off,
the node's own view of a CID, and searches for leaked secrets.

Everything here talks to 127.0.0.1 only. The relay sits between proml and the session's anvil so
that a test can make the chain unreachable at a chosen moment (a wrapped command creates a flag
file) and bring it back, without losing the chain's state.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from proml_cli.ledger import ChainConfig

import httpx
from _project import POLICY

from proml_cli.content._unixfs import Cid

REPO = Path(__file__).resolve().parents[2]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: A step whose command writes its product and then cuts the chain off (see :class:`Relay`).
CUT_STEP = """\
  cut:
    command: python cut.py
    produces: [report]
"""

CUT_SCRIPT = """\
from pathlib import Path

Path("out").mkdir(exist_ok=True)
Path("out/report.txt").write_text("written while the chain was still there\\n")
Path("chain.down").write_text("cut\\n")
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on (the OS picked it, then it was closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def dead_url() -> str:
    """An HTTP URL on 127.0.0.1 where nothing answers."""
    return f"http://127.0.0.1:{free_port()}"


def rpc_policy(url: str, *, confirmations: int = 1) -> str:
    """The core-loop test policy (``_project.POLICY``) with its chain on JSON-RPC at ``url``."""
    embedded = "chain:\n  backend: embedded\n"
    assert embedded in POLICY
    chain = f"chain:\n  backend: rpc\n  url: {url}\n  confirmations: {confirmations}\n"
    return POLICY.replace(embedded, chain) + CUT_STEP


def rpc_config(url: str, **fields: Any) -> ChainConfig:
    """An rpc chain at ``url``, nonce locks where ``XDG_CACHE_HOME`` says (as the CLI reads it)."""
    from proml_cli.ledger import ChainConfig
    from proml_cli.settings import Settings

    return ChainConfig(
        backend="rpc", url=url, cache_dir=Settings.from_environ().cache_dir, **fields
    )


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (the example scripts print bold headings)."""
    return _ANSI.sub("", text)


def files_under(root: Path) -> Iterator[Path]:
    """Every regular file below ``root`` (symlinks are not followed)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


# ----------------------------------------------------------------------------- the IPFS node


def node_pins(ipfs_url: str, cid: str) -> bool:
    """Whether the node itself says it pins ``cid`` (``pin/ls`` answers 500 when it does not)."""
    reply = httpx.post(f"{ipfs_url}/api/v0/pin/ls", params={"arg": cid}, timeout=60)
    if reply.status_code != 200:
        return False
    wanted = Cid.parse(cid)
    return any(Cid.parse(key) == wanted for key in reply.json().get("Keys", {}))


def node_cid(ipfs_url: str, path: Path, *, cid_version: int = 1) -> Cid:
    """The CID the node computes for a file (``add --only-hash``), parsed to compare as a value.

    js-ipfs prints CIDv1 in base58btc (``z…``) where proml prints base32 (``b…``).
    """
    params = {"only-hash": "true", "cid-version": str(cid_version), "pin": "false"}
    if cid_version == 1:
        params["raw-leaves"] = "true"
    with path.open("rb") as handle:
        files = {"file": (path.name, handle, "application/octet-stream")}
        reply = httpx.post(f"{ipfs_url}/api/v0/add", params=params, files=files, timeout=120)
    reply.raise_for_status()
    last = [json.loads(line) for line in reply.text.splitlines() if line.strip()][-1]
    return Cid.parse(last["Hash"])


# ----------------------------------------------------------------------------- the relay


class Relay:
    """A TCP relay on 127.0.0.1 in front of ``target``; while ``flag`` exists it drops everything.

    Open connections are closed as soon as the flag appears and new ones are closed on accept,
    so a client sees the server vanish (a connection error) exactly as if it had stopped.
    Deleting the flag brings it back. Use as a context manager.
    """

    def __init__(self, target: str, flag: Path) -> None:
        parts = urlsplit(target)
        assert parts.hostname == "127.0.0.1", target
        assert parts.port is not None, target
        self._target = (parts.hostname, parts.port)
        self._flag = flag
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(32)
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def is_cut(self) -> bool:
        """Whether the relay drops connections now."""
        return self._flag.exists()

    def __enter__(self) -> Relay:
        self._spawn(self._accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if not ready:
                continue
            client, _ = self._listener.accept()
            if self.is_cut:
                client.close()
                continue
            self._spawn(self._pipe, client)

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target, timeout=10)
        except OSError:
            client.close()
            return
        for end in (client, upstream):
            # Without this, Nagle's algorithm and delayed ACKs add ~40 ms to every RPC call.
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with client, upstream:
            while not self._stop.is_set() and not self.is_cut:
                ready, _, _ = select.select([client, upstream], [], [], 0.05)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
