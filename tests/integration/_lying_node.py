"""A small Kubo RPC server on 127.0.0.1 that can lie: the IPFS node proml must never trust.

It speaks just enough of the Kubo RPC API for ``proml run``/``sync`` (``pin/ls``, ``add``,
``block/get``, ``dag/import``), keeps blocks in memory by their sha256, and answers honestly
unless told to lie in one of these ways:

* ``pin_ls``: every CID is "pinned", held or not;
* ``add``: the answer names a CID other than that of the uploaded bytes (nothing is kept);
* ``dag_import``: the import is acknowledged with the right root, but no block is kept.
"""

from __future__ import annotations

import email.parser
import json
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from proml_cli.content import bytes_cid
from proml_cli.content._car import CarReader
from proml_cli.content._unixfs import Cid, raw_cid

LIES = ("pin_ls", "add", "dag_import")


@dataclass
class LyingNode:
    """The node's state: its blocks, the lies it tells, and the endpoints it was asked."""

    lies: frozenset[str] = frozenset()
    blocks: dict[bytes, bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    url: str = ""

    def holds(self, cid: str) -> bool:
        """Whether the node really keeps the root block of ``cid``."""
        return Cid.parse(cid).digest in self.blocks


def _parts(content_type: str, body: bytes) -> list[bytes]:
    """The payloads of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + body)
    payloads = []
    for part in message.walk():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        payloads.append(data if isinstance(data, bytes) else b"")
    return payloads


def _handler(node: LyingNode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests read the node's state, not its log."""

        def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: object) -> None:
            self._reply(status, json.dumps(document).encode() + b"\n")

        def do_POST(self) -> None:
            url = urlparse(self.path)
            endpoint = url.path.removeprefix("/api/v0/")
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            node.calls.append(endpoint)
            if endpoint == "pin/ls":
                cid = params["arg"]
                if "pin_ls" in node.lies or node.holds(cid):
                    self._json(200, {"Keys": {cid: {"Type": "recursive"}}})
                else:
                    self._json(500, {"Message": "path is not pinned", "Code": 0})
            elif endpoint == "block/get":
                block = node.blocks.get(Cid.parse(params["arg"]).digest)
                if block is None:
                    self._json(500, {"Message": "block not found", "Code": 0})
                else:
                    self._reply(200, block, "application/octet-stream")
            elif endpoint == "add":
                answers = []
                for data in _parts(self.headers["Content-Type"], body):
                    if "add" in node.lies:
                        answers.append({"Name": "x", "Hash": str(raw_cid(b"a lie: " + data))})
                        continue
                    # Single-block files only (the tests' files are small): the CID of a
                    # file this small is the raw leaf's, which bytes_cid computes.
                    assert len(data) < 262144, "the lying node keeps single-block files only"
                    node.blocks[Cid.parse(bytes_cid(data)).digest] = data
                    answers.append({"Name": "x", "Hash": bytes_cid(data)})
                self._reply(200, "".join(json.dumps(a) + "\n" for a in answers).encode())
            elif endpoint == "dag/import":
                [car] = _parts(self.headers["Content-Type"], body)
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "in.car"
                    path.write_bytes(car)
                    with CarReader(path) as reader:
                        roots = [str(r) for r in reader.roots]
                        for cid, block in reader:
                            if "dag_import" not in node.lies:
                                node.blocks[cid.digest] = bytes(block)
                self._json(200, {"Root": {"Cid": {"/": roots[0]}, "PinErrorMsg": ""}})
            else:
                self._json(404, {"Message": f"the lying node does not serve {endpoint}"})

    return Handler


@contextmanager
def lying_node(*lies: str) -> Iterator[LyingNode]:
    """Serve a node telling ``lies`` (from :data:`LIES`) on 127.0.0.1, a free port."""
    assert set(lies) <= set(LIES), lies
    node = LyingNode(lies=frozenset(lies))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(node))
    node.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
