"""The node's wire format and where its files live.

Frames are a 4-byte big-endian length then that many bytes: UTF-8 JSON (a body that starts
with ``{``), or a command's output, raw (a body that starts with the byte 1 for stdout or 2
for stderr, then the bytes as written). Everything here is standard library only: the client
imports it on every command.

Files, all under the project's ``.proml/`` directory (mode 0700):

* ``node.sock`` - the Unix socket (0600); when that path would exceed the kernel's
  ``sun_path`` limit it lives in ``$XDG_RUNTIME_DIR`` or a 0700 ``/tmp/proml-UID/`` directory
  instead, named by a hash of the project's state directory;
* ``node.lock`` - held (``flock``) by the running node for its whole life, so a second node
  cannot start and a socket left by a dead one is known to be stale;
* ``node.start`` - held by a client while it starts a node, so concurrent clients start one;
* ``node.pid`` - the running node's pid and socket path (JSON), for ``proml node status``;
* ``node.log`` - the node's log: starts, stops, each command's name, exit code and time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

#: Bumped whenever a frame changes meaning; a node answering another version is not used.
PROTOCOL = 3

#: The largest frame either side accepts (bytes); a longer one is a protocol error.
MAX_FRAME = 256 * 1024 * 1024

#: The kernel's ``sun_path`` holds 108 bytes including the terminating NUL.
SUN_PATH_MAX = 107

SOCKET_NAME = "node.sock"
LOCK_NAME = "node.lock"
START_LOCK_NAME = "node.start"
PID_NAME = "node.pid"
LOG_NAME = "node.log"

#: The commands the node serves; every other one (and any ``--help``) runs in-process.
NODE_COMMANDS = frozenset(
    {"run", "transition", "log", "show", "status", "verify", "roles", "sync", "push"}
)


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol (or hung up mid-frame)."""


#: The first byte of an output frame, by stream (a JSON frame starts with ``{``).
_OUTPUT_TAGS = {"stdout": b"\x01", "stderr": b"\x02"}
_OUTPUT_STREAMS = {tag[0]: name for name, tag in _OUTPUT_TAGS.items()}


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one frame."""
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)


def send_output(sock: socket.socket, stream: str, data: bytes) -> None:
    """Send bytes written to ``stream`` (``stdout`` or ``stderr``) as one raw output frame.

    Received as ``{"op": "output", "stream": stream, "data": data}``. Raw, so a large output
    (``log --json`` of a long history) is neither encoded nor parsed on its way.
    """
    if len(data) + 1 > MAX_FRAME:  # split what one frame cannot hold
        step = MAX_FRAME - 1
        for start in range(0, len(data), step):
            send_output(sock, stream, data[start : start + step])
        return
    sock.sendall(struct.pack(">I", len(data) + 1) + _OUTPUT_TAGS[stream])
    sock.sendall(data)


def recv(sock: socket.socket) -> dict[str, Any] | None:
    """Receive one frame; None when the peer closed the connection cleanly between frames.

    Raises:
        ProtocolError: a truncated or oversized frame, or one that is not a JSON object.
        OSError: the socket failed (including its timeout).
    """
    header = _read_exactly(sock, 4, eof_ok=True)
    if header is None:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    body = _read_exactly(sock, size, eof_ok=False)
    assert body is not None  # noqa: S101 - eof_ok=False raises instead
    stream = _OUTPUT_STREAMS.get(body[0]) if body else None
    if stream is not None:
        return {"op": "output", "stream": stream, "data": body[1:]}
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message


def _read_exactly(sock: socket.socket, size: int, *, eof_ok: bool) -> bytes | None:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            if eof_ok and got == 0:
                return None
            raise ProtocolError("connection closed in the middle of a frame")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def socket_path(state_dir: Path) -> Path:
    """Where the node of the project whose state directory is ``state_dir`` listens.

    ``state_dir/node.sock`` when that fits in ``sun_path``; else a name keyed by a hash of the
    state directory in ``$XDG_RUNTIME_DIR`` (when it is a private directory of this user) or in
    ``/tmp/proml-UID`` (created 0700, and refused unless it is this user's and private).

    Raises:
        OSError: the fallback directory cannot be created or is not private to this user.
    """
    local = state_dir / SOCKET_NAME
    if len(os.fsencode(local)) <= SUN_PATH_MAX:
        return local
    key = hashlib.sha256(os.fsencode(state_dir.resolve())).hexdigest()[:24]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and _private_dir(Path(runtime)):
        candidate = Path(runtime) / f"proml-{key}.sock"
        if len(os.fsencode(candidate)) <= SUN_PATH_MAX:
            return candidate
    private = Path("/tmp") / f"proml-{os.getuid()}"  # noqa: S108 - 0700, owner checked
    with contextlib.suppress(FileExistsError):
        private.mkdir(mode=0o700)
    if not _private_dir(private):
        raise OSError(f"{private} is not a private directory of this user")
    return private / f"{key}.sock"


def _private_dir(path: Path) -> bool:
    """``path`` is a real directory (no symlink) of this user that nobody else can enter."""
    try:
        st = path.lstat()
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket (``SO_PEERCRED``)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def peer_allowed(uid: int, own_uid: int | None = None) -> bool:
    """Only this user's processes may talk to the node (it acts with this user's keys)."""
    return uid == (os.getuid() if own_uid is None else own_uid)


def package_id() -> str:
    """Which proml code answers: the package's directory (a node of another install is not used)."""
    import proml_cli

    return str(Path(proml_cli.__file__).resolve().parent)
