"""The node's pieces without a process: frames, socket paths, routing, the key cache."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from proml_cli.node import protocol
from proml_cli.node.client import node_dir_for
from proml_cli.node.protocol import ProtocolError
from proml_cli.node.server import DEFAULT_IDLE, _KeyCache, idle_seconds


def test_frames_round_trip_and_bad_frames_are_errors() -> None:
    left, right = socket.socketpair()
    with left, right:
        protocol.send(left, {"op": "x", "data": "é"})
        assert protocol.recv(right) == {"op": "x", "data": "é"}
        protocol.send_output(left, "stderr", b"\0\xff{")
        assert protocol.recv(right) == {"op": "output", "stream": "stderr", "data": b"\0\xff{"}
        protocol.send_output(left, "stdout", b"")
        assert protocol.recv(right) == {"op": "output", "stream": "stdout", "data": b""}
        left.sendall(struct.pack(">I", protocol.MAX_FRAME + 1))
        with pytest.raises(ProtocolError, match="exceeds"):
            protocol.recv(right)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(struct.pack(">I", 2) + b"[]")
        with pytest.raises(ProtocolError, match="not a JSON object"):
            protocol.recv(right)
        left.sendall(struct.pack(">I", 10) + b"{")
        left.close()
        with pytest.raises(ProtocolError, match="middle of a frame"):
            protocol.recv(right)
    left, right = socket.socketpair()
    with right:
        left.close()
        assert protocol.recv(right) is None  # a clean hang-up between frames


def test_the_socket_leaves_a_too_long_project_path_for_a_private_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = tmp_path / ".proml"
    assert protocol.socket_path(short) == short / "node.sock"
    deep = tmp_path / ("x" * 120) / ".proml"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    chosen = protocol.socket_path(deep)
    assert chosen.parent == runtime
    assert len(os.fsencode(chosen)) <= protocol.SUN_PATH_MAX
    assert chosen == protocol.socket_path(deep)  # stable for one project
    assert chosen != protocol.socket_path(tmp_path / ("y" * 120) / ".proml")
    runtime.chmod(0o755)  # not private: not used
    fallback = protocol.socket_path(deep)
    assert fallback.parent == Path(f"/tmp/proml-{os.getuid()}")  # noqa: S108 - the fallback
    assert fallback.parent.stat().st_mode & 0o077 == 0


def test_only_the_same_user_is_a_peer() -> None:
    assert protocol.peer_allowed(1000, own_uid=1000)
    assert not protocol.peer_allowed(0, own_uid=1000)
    left, right = socket.socketpair()
    with left, right:
        assert protocol.peer_uid(left) == os.getuid()


def test_idle_time_setting() -> None:
    assert idle_seconds({}) == DEFAULT_IDLE
    assert idle_seconds({"PROML_NODE_IDLE": "2.5"}) == 2.5
    assert idle_seconds({"PROML_NODE_IDLE": "soon"}) == DEFAULT_IDLE
    assert idle_seconds({"PROML_NODE_IDLE": "-1"}) == DEFAULT_IDLE


def test_which_commands_go_to_the_node(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / ".proml").mkdir(parents=True)
    (project / "proml.yaml").write_text("version: 1\n")
    sub = project / "sub"
    sub.mkdir()
    state = project / ".proml"
    assert node_dir_for(["run", "--", "python", "x.py", "--help"], {}, sub) == state
    assert node_dir_for(["-v", "log"], {}, project) == state
    assert node_dir_for(["status"], {"PROML_NODE": "off"}, project) is None
    assert node_dir_for(["log", "--help"], {}, project) is None
    assert node_dir_for(["init"], {}, project) is None
    assert node_dir_for(["hash", "x"], {}, project) is None
    assert node_dir_for(["--version"], {}, project) is None
    assert node_dir_for([], {}, project) is None
    assert node_dir_for(["status"], {}, tmp_path) is None  # no project here
    assert node_dir_for(["status", "--policy", "p/proml.yaml"], {}, tmp_path) == state.resolve()
    assert node_dir_for(["status"], {"PROML_POLICY": "p/proml.yaml"}, tmp_path) == state.resolve()
    assert node_dir_for(["status", "--policy=missing.yaml"], {}, tmp_path) is None
    (project / ".proml").rmdir()
    assert node_dir_for(["status"], {}, project) is None  # not initialised


def test_the_key_cache_never_serves_another_keystore_or_password() -> None:
    calls: list[tuple[str, Any]] = []

    def decrypt(keystore: Any, password: str | bytes) -> bytes:
        calls.append((keystore["id"], password))
        if password != "right":
            raise ValueError("wrong password")
        return b"key-" + keystore["id"].encode()

    cache = _KeyCache(decrypt)
    assert cache({"id": "a"}, "right") == b"key-a"
    assert cache({"id": "a"}, "right") == b"key-a"
    assert len(calls) == 1  # the second came from memory
    with pytest.raises(ValueError, match="wrong password"):
        cache({"id": "a"}, "wrong")  # a wrong password is still checked
    assert cache({"id": "b"}, "right") == b"key-b"  # another keystore: decrypted
    assert len(calls) == 3


def test_a_requests_output_keeps_the_order_of_stdout_and_stderr(tmp_path: Path) -> None:
    from proml_cli.node.server import Request

    left, right = socket.socketpair()
    with left, right:
        message = {
            "argv": ["status"],
            "env": {},
            "cwd": str(tmp_path),
            "term": {"stdout_tty": True, "encoding": "utf-8"},
        }
        request = Request(left, message, tmp_path)
        assert request.stdout.isatty()
        assert not request.stderr.isatty()
        request.stdout.write("data 1\n")
        request.stderr.write("note é\n")
        request.stdout.write("data 2\n")
        request.send_output()
        chunks = [_output(right) for _ in range(3)]
        assert chunks == [
            ("stdout", b"data 1\n"),
            ("stderr", "note é\n".encode()),
            ("stdout", b"data 2\n"),
        ]
        request.send_output()  # nothing new: nothing sent
        right.setblocking(False)
        with pytest.raises(BlockingIOError):
            right.recv(1)


def _output(sock: socket.socket) -> tuple[str, bytes]:
    """The stream and bytes of the next frame, which must be output."""
    message = protocol.recv(sock)
    assert message is not None
    assert message["op"] == "output"
    return message["stream"], message["data"]
