"""The proml node: started on demand, reused warm, stopped when idle or orphaned, and the
same answers as a command run in its own process.

Every command here is a real ``proml`` process (``python -m proml_cli``) in a small project on
the embedded chain; the node is the real one it starts.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _nodes import alive, stop_nodes
from _project import ok, process_env, proml, proml_argv

TIMEOUT = 120.0

POLICY = """\
version: 1
project: node
roles: [developer]
kinds:
  blob:
    states: [made, ok]
    initial: made
    register: [developer]
    consumable: [made, ok]
    transitions:
      approve: {from: [made], to: ok, roles: [developer]}
artefacts:
  a: {kind: blob, path: a.bin}
  b: {kind: blob, path: b.bin}
  c: {kind: blob, path: c.bin}
steps:
  slow: {command: python slow.py, produces: [a]}
  fast: {command: python fast.py, produces: [b]}
  late: {command: python late.py, uses: {a: [ok]}, produces: [c]}
"""

SCRIPTS = {
    # Says it started, then waits for a line on its stdin (the caller's): the test decides.
    "slow.py": """
        import os, sys
        print("started", flush=True)
        sys.stdin.readline()
        open("a.bin", "wb").write(os.urandom(16))
    """,
    "fast.py": """
        import os
        open("b.bin", "wb").write(os.urandom(16))
    """,
    "late.py": """
        open("c.bin", "w").write("late")
    """,
}


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "proml.yaml").write_text(POLICY)
    for name, body in SCRIPTS.items():
        (root / name).write_text(textwrap.dedent(body).lstrip())
    ok(proml(root, "init"))  # in-process: no node yet
    return root


def _cli(
    root: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        proml_argv(*args),
        cwd=root,
        env=process_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _node_pid(root: Path) -> int | None:
    pid_file = root / ".proml" / "node.pid"
    if not pid_file.exists():
        return None
    pid = int(json.loads(pid_file.read_text())["pid"])
    return pid if alive(pid) else None


def _wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def _line(stream: object, timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()  # type: ignore[attr-defined]
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def _start_slow(project: Path) -> subprocess.Popen[str]:
    """``proml run`` of the step whose command prints 'started' and waits for 'go' on stdin."""
    return subprocess.Popen(
        proml_argv("run", "--step", "slow", "--", "python", "slow.py"),
        cwd=project,
        env=process_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = _project(tmp_path / "p")
    yield root
    stop_nodes(tmp_path)


def test_the_first_chain_command_starts_the_node_and_the_next_reuses_it(project: Path) -> None:
    assert _node_pid(project) is None
    ok_status = _cli(project, "status")
    assert ok_status.returncode == 0, ok_status.stderr
    pid = _node_pid(project)
    assert pid is not None
    again = _cli(project, "run", "--step", "fast", "--", "python", "fast.py")
    assert again.returncode == 0, again.stderr
    assert "recorded step 'fast'" in again.stderr
    assert _node_pid(project) == pid
    described = _cli(project, "node", "status", "--json")
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["pid"] == pid
    state = project / ".proml"
    assert (state / "node.sock").stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
    # Commands that need no chain never start a node elsewhere, and help stays in-process.
    assert _cli(project, "--help").returncode == 0


def test_a_node_whose_code_changed_steps_aside_for_a_current_one(project: Path) -> None:
    assert _cli(project, "status").returncode == 0
    pid = _node_pid(project)
    assert pid is not None
    from proml_cli.node import protocol

    source = Path(protocol.__file__)
    stamp = source.stat()
    os.utime(source, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))  # "upgraded"
    try:
        result = _cli(project, "status")
    finally:
        os.utime(source, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert result.returncode == 0, result.stderr
    assert "note" not in result.stderr
    assert _wait_gone(pid)
    new = _node_pid(project)
    assert new is not None
    assert new != pid
    assert "changed since the node loaded it" in (project / ".proml" / "node.log").read_text()


def test_node_stops_when_idle(project: Path) -> None:
    assert _cli(project, "status", env={"PROML_NODE_IDLE": "1"}).returncode == 0
    pid = _node_pid(project)
    assert pid is not None
    assert _wait_gone(pid), "the node outlived its idle time"
    assert not (project / ".proml" / "node.sock").exists()
    assert _cli(project, "status").returncode == 0  # a new one starts on demand


def test_node_stops_when_its_project_is_removed(project: Path) -> None:
    assert _cli(project, "status").returncode == 0
    pid = _node_pid(project)
    assert pid is not None
    shutil.rmtree(project)
    assert _wait_gone(pid), "the node outlived its project"


def test_a_stale_socket_and_pid_file_are_replaced(project: Path) -> None:
    assert _cli(project, "status").returncode == 0
    pid = _node_pid(project)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # leaves node.sock and node.pid behind
    assert _wait_gone(pid)
    assert (project / ".proml" / "node.sock").exists()
    result = _cli(project, "status")
    assert result.returncode == 0, result.stderr
    assert "note" not in result.stderr
    new = _node_pid(project)
    assert new is not None
    assert new != pid


def test_two_runs_do_not_wait_for_each_others_command(project: Path) -> None:
    slow = _start_slow(project)
    try:
        assert _line(slow.stdout, TIMEOUT) == "started\n"
        fast = _cli(project, "run", "--step", "fast", "--", "python", "fast.py")
        assert fast.returncode == 0, fast.stderr
        assert slow.poll() is None  # still in its command, which waits for us
        _, stderr = slow.communicate("go\n", timeout=TIMEOUT)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.communicate()
    assert slow.returncode == 0, stderr
    entries = json.loads(_cli(project, "log", "--json").stdout)["entries"]
    assert {e["artefact"] for e in entries} == {"a", "b"}


def test_a_stopped_node_finishes_the_run_in_flight_while_a_new_one_serves(
    project: Path,
) -> None:
    slow = _start_slow(project)
    try:
        assert _line(slow.stdout, TIMEOUT) == "started\n"
        old = _node_pid(project)
        assert old is not None
        assert _cli(project, "node", "stop").returncode == 0
        fast = _cli(project, "run", "--step", "fast", "--", "python", "fast.py")
        assert fast.returncode == 0, fast.stderr
        new = _node_pid(project)
        assert new is not None
        assert new != old
        assert alive(old)  # still finishing the run in flight
        _, stderr = slow.communicate("go\n", timeout=TIMEOUT)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.communicate()
    assert slow.returncode == 0, stderr
    assert "recorded step 'slow'" in stderr
    assert _wait_gone(old)
    entries = json.loads(_cli(project, "log", "--json").stdout)["entries"]
    assert {e["artefact"] for e in entries} == {"a", "b"}


def test_a_client_killed_during_its_command_records_nothing(project: Path) -> None:
    slow = _start_slow(project)
    try:
        assert _line(slow.stdout, TIMEOUT) == "started\n"
        pid = _node_pid(project)
        assert pid is not None
        slow.kill()
        slow.wait(timeout=TIMEOUT)
        assert slow.stdin is not None
        slow.stdin.write("go\n")  # the orphaned command finishes and writes a.bin
        slow.stdin.close()
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait(timeout=TIMEOUT)
        for stream in (slow.stdout, slow.stderr):
            if stream is not None:
                stream.close()
    after = _cli(project, "log", "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["entries"] == []
    assert _node_pid(project) == pid  # the node is fine
    assert not list((project / ".proml" / "journal").rglob("*.json"))
    assert "abandoned" in (project / ".proml" / "node.log").read_text()


def test_a_write_by_another_process_is_seen_by_the_next_request(project: Path) -> None:
    made = _cli(project, "run", "--step", "fast", "--", "python", "fast.py")
    assert made.returncode == 0, made.stderr
    before = json.loads(_cli(project, "show", "b", "--json").stdout)
    assert before["state"] == "made"
    # In-process, as the Python API would: the node holds no lock between requests.
    moved = _cli(project, "transition", "b", "approve", env={"PROML_NODE": "off"})
    assert moved.returncode == 0, moved.stderr
    after = json.loads(_cli(project, "show", "b", "--json").stdout)
    assert after["state"] == "ok"
    assert _node_pid(project) is not None


def test_node_and_in_process_answer_alike(project: Path) -> None:
    assert _cli(project, "run", "--step", "fast", "--", "python", "fast.py").returncode == 0
    commands = [
        ("status",),
        ("status", "--json"),
        ("log", "--json"),
        ("log",),
        ("show", "b", "--json"),
        ("show", "nothing-like-this"),
        ("verify", "b"),
        ("roles", "list"),
        ("transition", "b", "no-such-transition"),
        ("run", "--step", "late", "--", "python", "late.py"),  # refused: 'a' never recorded
        ("log", "--limit", "x"),
    ]
    for command in commands:
        off = _cli(project, *command, env={"PROML_NODE": "off"})
        on = _cli(project, *command)
        assert (on.returncode, on.stdout, on.stderr) == (off.returncode, off.stdout, off.stderr), (
            command
        )
    for zone in ("Asia/Tokyo", "America/Lima"):  # the node follows each caller's time zone
        off = _cli(project, "log", env={"PROML_NODE": "off", "TZ": zone})
        on = _cli(project, "log", env={"TZ": zone})
        assert (on.returncode, on.stdout, on.stderr) == (off.returncode, off.stdout, off.stderr), (
            command
        )
    assert _node_pid(project) is not None


def test_secrets_never_reach_the_node_log(project: Path) -> None:
    password = "pw-never-logged-7f3a"
    key = "0x" + "5e" * 32
    for env in ({"PROML_KEYSTORE_PASSWORD": password}, {"PROML_PRIVATE_KEY": key}):
        _cli(project, "run", "--step", "fast", "--", "python", "fast.py", env=env)
        _cli(project, "status", env=env)
    pid = _node_pid(project)
    assert pid is not None
    text = (project / ".proml" / "node.log").read_text()
    assert "command run" in text
    assert password not in text
    assert key[2:] not in text
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert password.encode() not in environ
    assert key[2:].encode() not in environ


def test_a_connection_from_another_user_is_refused() -> None:
    from proml_cli.node import protocol

    assert protocol.peer_allowed(os.getuid())
    assert not protocol.peer_allowed(os.getuid() + 1)
    if os.getuid() != 0:
        pytest.skip("needs root to connect as another user")
    # A directory the other user can traverse (pytest's are private to this user).
    outer = Path(tempfile.mkdtemp(prefix="proml-peer-"))
    try:
        os.chmod(outer, 0o711)  # noqa: S103 - traversable, not listable
        _refused_from_another_uid(_project(outer / "p"))
    finally:
        stop_nodes(outer)
        shutil.rmtree(outer)


def _refused_from_another_uid(project: Path) -> None:
    assert _cli(project, "status").returncode == 0
    sock_path = project / ".proml" / "node.sock"
    # Open the socket's and its directory's modes so that only the peer check stands.
    os.chmod(project / ".proml", 0o711)  # noqa: S103 - for this test only
    os.chmod(sock_path, 0o666)  # noqa: S103 - for this test only
    probe = textwrap.dedent(
        f"""
        import os, socket, struct, sys
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect({str(sock_path)!r})
        body = b'{{"op": "ping"}}'
        try:
            s.sendall(struct.pack(">I", len(body)) + body)
            answer = s.recv(100)
        except (BrokenPipeError, ConnectionResetError):
            answer = b''
        sys.stdout.write(repr(answer))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    os.chmod(sock_path, 0o600)
    os.chmod(project / ".proml", 0o700)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "b''"  # closed without an answer
    assert "refused a connection from uid 65534" in (project / ".proml" / "node.log").read_text()


def test_a_node_that_cannot_start_falls_back_in_process(project: Path) -> None:
    (project / ".proml" / "node.sock").mkdir()  # a directory where the socket should be
    result = _cli(project, "run", "--step", "fast", "--", "python", "fast.py")
    assert result.returncode == 0, result.stderr
    assert "recorded step 'fast'" in result.stderr
    assert result.stderr.startswith("proml: note: the proml node is unavailable")
    entries = json.loads(_cli(project, "log", "--json", env={"PROML_NODE": "off"}).stdout)
    assert [e["artefact"] for e in entries["entries"]] == ["b"]


def test_a_long_project_path_puts_the_socket_elsewhere(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    root = _project(deep)
    assert _cli(root, "status").returncode == 0
    described = json.loads(_cli(root, "node", "status", "--json").stdout)
    assert not described["socket"].startswith(str(root))
    mode = Path(described["socket"]).stat().st_mode & 0o777
    assert mode == 0o600
    stop_nodes(tmp_path)


def test_the_client_loads_no_chain_library_nor_the_cli_framework(project: Path) -> None:
    for command in (("status",), ("run", "--step", "fast", "--", "python", "fast.py")):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "proml_cli", *command],
            cwd=project,
            env=process_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        loaded = {
            line.rsplit("|", 1)[1].strip()
            for line in done.stderr.splitlines()
            if line.startswith("import time:")
        }
        heavy = {"web3", "eth", "eth_account", "eth_utils", "typer", "rich", "click", "yaml"}
        assert loaded & heavy == set(), command
        assert "proml_cli.node.client" in loaded
