"""The ``proml`` command's entry point: hand chain commands to the project's node.

A chain command (:data:`~proml_cli.node.protocol.NODE_COMMANDS`) in an initialised project is
sent to the project's node, which is started on demand; everything else (``init``, ``hash``,
any ``--help``, a directory without ``.proml/``), ``PROML_NODE=off``, and any command the node
cannot take runs in this process as before. This module imports the standard library only:
the process that uses a node never loads the chain libraries.

``proml run`` keeps the user's command here: the node checks the inputs, then asks this process
to run the command (its stdin, terminal, signals, environment and working directory are the
caller's), then records the products. Should the node fail before the command ran, the whole
``proml run`` runs in-process instead; no recording is ever lost to a node that cannot start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from proml_cli.node import protocol
from proml_cli.node.protocol import ProtocolError

#: How long a client waits to connect to a running node (seconds).
CONNECT_TIMEOUT = 5.0
#: How long a client waits for a node it started to be ready (loading takes a few seconds).
START_TIMEOUT = 60.0
#: Commands that only read: should the node die during one, it is rerun in-process.
READ_ONLY = frozenset({"log", "show", "status", "verify", "roles"})
#: Values of ``PROML_NODE`` that run every command in-process.
OFF = frozenset({"off", "0", "no", "false"})
#: Variables the node process itself does not inherit (each request brings its own).
SECRET_VARIABLES = ("PROML_PRIVATE_KEY", "PROML_KEYSTORE_PASSWORD")


class NodeUnavailableError(Exception):
    """No node could serve this command; ``fixable`` says whether to tell the user why."""

    def __init__(self, reason: str, *, fixable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fixable = fixable


def main() -> None:
    """Console-script entry point: through the node when it applies, else in-process."""
    argv = sys.argv[1:]
    state_dir = node_dir_for(argv, os.environ, Path.cwd())
    if state_dir is not None:
        code = call(state_dir, argv)
        if code is not None:
            sys.exit(code)
    from proml_cli._cli.app import main as in_process

    in_process()


def node_dir_for(argv: list[str], environ: Any, cwd: Path) -> Path | None:
    """The ``.proml`` directory whose node should run ``argv``; None to run it in-process."""
    if str(environ.get("PROML_NODE", "")).strip().lower() in OFF:
        return None
    index = 0
    while index < len(argv) and argv[index] in ("-v", "--verbose"):
        index += 1
    if index >= len(argv) or argv[index] not in protocol.NODE_COMMANDS:
        return None
    options = argv[index + 1 :]
    if "--" in options:
        options = options[: options.index("--")]
    if "--help" in options or "-h" in options:
        return None
    explicit: str | None = environ.get("PROML_POLICY") or None
    for position, word in enumerate(options):
        if word == "--policy" and position + 1 < len(options):
            explicit = options[position + 1]
        elif word.startswith("--policy="):
            explicit = word.split("=", 1)[1]
    if explicit:
        policy = cwd / explicit
        if not policy.is_file():
            return None  # in-process, which names the problem
        root = policy.resolve().parent
    else:
        here = cwd.resolve()
        found = next((d for d in (here, *here.parents) if (d / "proml.yaml").is_file()), None)
        if found is None:
            return None
        root = found
    state_dir = root / ".proml"
    return state_dir if state_dir.is_dir() else None


def call(state_dir: Path, argv: list[str]) -> int | None:
    """Run ``argv`` in the node of ``state_dir``; its exit code, or None to run it in-process."""
    try:
        conn = connect_or_start(state_dir)
    except NodeUnavailableError as exc:
        if exc.fixable:
            sys.stderr.write(
                f"proml: note: the proml node is unavailable ({exc.reason}); "
                "running in this process\n"
            )
        return None
    try:
        with conn:
            code = _converse(conn, argv)
    except KeyboardInterrupt:
        return 130  # as in-process: Ctrl-C while proml (not the wrapped command) works
    if code is not _RESTART:
        return code
    # The node ran other code (proml was upgraded or edited): it retired; start a current one.
    try:
        conn = connect_or_start(state_dir)
    except NodeUnavailableError:
        return None
    with conn:
        code = _converse(conn, argv)
    return None if code is _RESTART else code


def _terminal() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "stdin_tty": _isatty(sys.stdin),
        "stdout_tty": _isatty(sys.stdout),
        "stderr_tty": _isatty(sys.stderr),
        "encoding": getattr(sys.stdout, "encoding", None) or "utf-8",
        "errors": getattr(sys.stdout, "errors", None) or "strict",
    }
    for stream in (sys.stdout, sys.stderr):
        if _isatty(stream):
            with contextlib.suppress(OSError, ValueError):
                facts["columns"] = os.get_terminal_size(stream.fileno()).columns
                break
    return facts


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (OSError, ValueError):
        return False


#: What :func:`_converse` returns when the node retired and a new one should serve the call.
_RESTART = -1


def _converse(conn: socket.socket, argv: list[str]) -> int | None:
    """Send the request and serve the node's callbacks until it sends the exit code."""
    command = next(a for a in argv if a not in ("-v", "--verbose"))
    executed = False
    answered = False
    try:
        protocol.send(
            conn,
            {
                "op": "call",
                "protocol": protocol.PROTOCOL,
                "package": protocol.package_id(),
                "argv": argv,
                "prog_name": program_name(),
                "cwd": os.getcwd(),
                "env": dict(os.environ),
                "term": _terminal(),
            },
        )
        conn.settimeout(None)  # the node may wait for the chain's lock (PROML_LOCK_TIMEOUT)
        while True:
            message = protocol.recv(conn)
            if message is None:
                raise ProtocolError("the node hung up")
            op = message.get("op")
            if op == "refused" and not answered:
                return _RESTART if message.get("restart") else None
            answered = True
            if op == "output":
                data = message.get("data")
                if not isinstance(data, bytes):
                    raise ProtocolError("output is sent as a raw frame")
                _write(sys.stdout if message.get("stream") == "stdout" else sys.stderr, data)
            elif op == "exit":
                code = message.get("code")
                return code if isinstance(code, int) else 1
            elif op == "execute":
                code = _execute(message)
                executed = True
                protocol.send(conn, {"op": "executed", "code": code})
            elif op == "prompt":
                protocol.send(conn, _prompt(message))
            else:
                raise ProtocolError(f"unexpected frame {op!r}")
    except (OSError, ProtocolError) as exc:
        if not executed and (command in READ_ONLY or command == "run"):
            return None  # nothing was done yet (a read, or a run before its command): redo here
        sys.stderr.write(
            f"proml: error: the proml node stopped during `proml {command}` ({exc}); "
            "what it did is unknown\n"
            "hint: `proml sync` anchors a journaled record; `proml log` shows what is recorded\n"
        )
        return 3


def program_name() -> str:
    """The name usage lines give this program, as click derives it for a process."""
    main_module = sys.modules.get("__main__")
    path = sys.argv[0] if sys.argv and sys.argv[0] else "proml"
    package = getattr(main_module, "__package__", None)
    if not package:
        return os.path.basename(path)
    name = os.path.splitext(os.path.basename(path))[0]
    module = package if name == "__main__" else f"{package}.{name}"
    return f"python -m {module.lstrip('.')}"


def _write(stream: Any, data: bytes) -> None:
    if not data:
        return
    stream.flush()
    stream.buffer.write(data)
    stream.buffer.flush()


def _execute(message: dict[str, Any]) -> int:
    """Run the user's command here, as ``proml run`` in-process would."""
    argv = message.get("argv")
    cwd = message.get("cwd")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ProtocolError("execute needs a command")
    from proml_cli.execution import execute

    return execute(argv, cwd=Path(cwd) if isinstance(cwd, str) else None)


def _prompt(message: dict[str, Any]) -> dict[str, Any]:
    """Ask the node's question at this terminal (a hidden password prompt)."""
    import getpass

    try:
        text = getpass.getpass(str(message.get("text") or "Password: "))
    except KeyboardInterrupt:
        return {"op": "answer", "interrupted": True}
    except EOFError:
        return {"op": "answer", "text": None}
    return {"op": "answer", "text": text}


# ---------------------------------------------------------------------------- the node's life


def connect(state_dir: Path) -> socket.socket | None:
    """A connection to the running node of ``state_dir``, or None when none listens.

    Raises:
        NodeUnavailableError: the socket's directory is unusable (not private to this user).
    """
    try:
        path = protocol.socket_path(state_dir)
    except OSError as exc:
        raise NodeUnavailableError(str(exc), fixable=True) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None  # no node, or a stale socket a dead node left: a new node replaces it
    except OSError as exc:
        sock.close()
        raise NodeUnavailableError(f"cannot connect to {path}: {exc}") from None
    return sock


def connect_or_start(state_dir: Path) -> socket.socket:
    """Connect to the node of ``state_dir``, starting it first when none runs.

    Raises:
        NodeUnavailableError: it cannot be started or reached.
    """
    sock = connect(state_dir)
    if sock is not None:
        return sock
    try:
        start_lock = open(state_dir / protocol.START_LOCK_NAME, "a+")  # noqa: SIM115
    except OSError as exc:
        raise NodeUnavailableError(f"{state_dir}: {exc.strerror or exc}", fixable=True) from None
    with start_lock:
        _lock_within(start_lock, START_TIMEOUT)
        sock = connect(state_dir)  # another client may have started it meanwhile
        if sock is None:
            start(state_dir)
            sock = connect(state_dir)
    if sock is None:
        raise NodeUnavailableError("the node started but does not accept connections")
    return sock


def _lock_within(handle: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise NodeUnavailableError("another proml is starting the node") from None
            time.sleep(0.01)


def start(state_dir: Path, timeout: float = START_TIMEOUT) -> None:
    """Start the node of ``state_dir`` detached (its own session) and wait until it is ready.

    Raises:
        NodeUnavailableError: it failed to start or did not report ready within ``timeout``.
    """
    try:
        logfile = open(state_dir / protocol.LOG_NAME, "ab")  # noqa: SIM115
        os.chmod(state_dir / protocol.LOG_NAME, 0o600)
    except OSError as exc:
        raise NodeUnavailableError(f"{state_dir}: {exc.strerror or exc}", fixable=True) from None
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    read_end, write_end = os.pipe()
    try:
        with logfile:
            launcher = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
                [
                    sys.executable,
                    "-P",
                    "-m",
                    "proml_cli.node",
                    str(state_dir),
                    "--ready-fd",
                    str(write_end),
                ],
                cwd=state_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
                pass_fds=(write_end,),
                start_new_session=True,
            )
        os.close(write_end)
        write_end = -1
        launcher.wait(timeout=timeout)  # it forks the node and exits at once
        answer = _read_line(read_end, timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NodeUnavailableError(f"cannot start the node: {exc}") from None
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)
    if answer in ("ready", "busy"):
        return
    if answer.startswith("failed:"):
        raise NodeUnavailableError(answer[len("failed:") :].strip(), fixable=True)
    raise NodeUnavailableError(f"the node did not start within {timeout:g} s (see its node.log)")


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def stop(state_dir: Path, timeout: float = 10.0) -> int | None:
    """Ask the node of ``state_dir`` to stop; its pid, or None when none was running."""
    sock = connect(state_dir)
    if sock is None:
        return None
    with sock:
        sock.settimeout(timeout)
        protocol.send(sock, {"op": "stop"})
        reply = protocol.recv(sock)
    pid = (reply or {}).get("pid")
    return pid if isinstance(pid, int) else None


def status(state_dir: Path, timeout: float = 10.0) -> dict[str, Any] | None:
    """The running node's description, or None when none runs."""
    sock = connect(state_dir)
    if sock is None:
        return None
    with sock:
        sock.settimeout(timeout)
        protocol.send(sock, {"op": "ping"})
        return protocol.recv(sock)
