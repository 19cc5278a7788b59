"""The node process: it listens on the project's socket and runs proml commands in-process.

One command runs at a time (a lock): each request sets the working directory, the environment
and the standard streams of the interpreter to the caller's, runs the very same Typer command
the ``proml`` script would, and restores the node's own afterwards. Nothing is cached across
requests beyond the loaded modules, on request a decrypted keystore key, and contract storage
words by the storage root they were read under (each trie node checked against its hash, see
:mod:`proml_cli.ledger._storage`: an unchanged root is the same storage): every command
loads its policy, settings, ledger and history index afresh, as a fresh process would. The
embedded chain's file lock is therefore held only while a command has the ledger open, and a
write made meanwhile by another process (the Python API, ``PROML_NODE=off``, another node) is
seen by the next request.

``proml run`` hands the user's command back to the client (``execute``), and a password prompt
is asked at the client's terminal (``prompt``); the lock is released while the client works, so
other requests (another ``proml run``'s checks, a ``proml log``) proceed meanwhile.

The node exits when idle for ``PROML_NODE_IDLE`` seconds (default 600), when its ``.proml``
directory or its socket disappears, on SIGTERM, and on ``proml node stop``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import hashlib
import io
import itertools
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import IO, Any

from proml_cli.node import protocol
from proml_cli.node.protocol import ProtocolError

#: Default idle time before the node exits (seconds); ``PROML_NODE_IDLE`` overrides it.
DEFAULT_IDLE = 600.0

#: How often the node checks its idle time and whether its directory and socket still exist.
CHECK_INTERVAL = 0.5

#: How long a starting node waits for a retiring one to release the node lock (seconds).
LOCK_WAIT = 5.0

#: How long a connection may take to send its request frame (seconds).
REQUEST_TIMEOUT = 30.0

#: How many decrypted keys the node keeps at most (memory only, gone when it exits).
KEY_CACHE_SIZE = 16

log = logging.getLogger("proml_node")


class ClientGone(BaseException):
    """The client hung up while the node waited for it: the command is abandoned.

    A BaseException, so that no handler in the command (nor click's) mistakes it for a failure
    to report: it unwinds the command to the node's request loop, where nothing is recorded.
    """


_interpreter = threading.Lock()  # one command at a time owns cwd, environ and std streams
_current = threading.local()


def idle_seconds(environ: Mapping[str, str]) -> float:
    """``PROML_NODE_IDLE`` in seconds (default :data:`DEFAULT_IDLE`); bad values use the default."""
    text = environ.get("PROML_NODE_IDLE", "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_IDLE
    return value if value > 0 else DEFAULT_IDLE


# ---------------------------------------------------------------------------- streams


class _Sink(io.RawIOBase):
    """Where a request's stdout and stderr bytes go: one list, in the order they were written."""

    def __init__(self, chunks: list[tuple[str, bytes]], name: str) -> None:
        super().__init__()
        self._chunks = chunks
        self._name = name

    def writable(self) -> bool:
        """A sink is written to."""
        return True

    def write(self, data: Any) -> int:
        """Keep ``data`` (bytes-like) as the next chunk of this stream."""
        chunk = bytes(data)
        if chunk:
            self._chunks.append((self._name, chunk))
        return len(chunk)


class _Captured(io.TextIOWrapper):
    """A text stream into memory that answers ``isatty`` as the client's stream would."""

    def __init__(
        self, chunks: list[tuple[str, bytes]], name: str, *, tty: bool, encoding: str, errors: str
    ) -> None:
        super().__init__(
            _Sink(chunks, name),  # type: ignore[arg-type]  # unbuffered: each write in order
            encoding=encoding,
            errors=errors,
            write_through=True,
        )
        self._tty = tty

    def isatty(self) -> bool:
        """Whether the client's stream is a terminal."""
        return self._tty


class _NoInput(io.StringIO):
    """stdin of a request: empty (prompts go to the client), a terminal if the client's is."""

    def __init__(self, *, tty: bool) -> None:
        super().__init__("")
        self._tty = tty

    def isatty(self) -> bool:
        """Whether the client's stdin is a terminal."""
        return self._tty


# ---------------------------------------------------------------------------- one request


class Request:
    """One client's command, and the interpreter state it runs under."""

    def __init__(self, conn: socket.socket, message: Mapping[str, Any], node_dir: Path) -> None:
        self.conn = conn
        argv = message.get("argv")
        env = message.get("env")
        cwd = message.get("cwd")
        term = message.get("term") or {}
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
            raise ProtocolError("argv must be a list of strings")
        if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
            raise ProtocolError("env must map names to strings")
        if not isinstance(cwd, str) or not isinstance(term, dict):
            raise ProtocolError("cwd must be a string and term an object")
        self.argv: list[str] = argv
        prog_name = message.get("prog_name")
        self.prog_name = prog_name if isinstance(prog_name, str) and prog_name else "proml"
        self.env: dict[str, str] = dict(env)
        self.cwd = cwd
        self.node_dir = node_dir
        encoding = str(term.get("encoding") or "utf-8")
        errors = str(term.get("errors") or "strict")
        self._chunks: list[tuple[str, bytes]] = []
        self.stdout = _Captured(
            self._chunks,
            "stdout",
            tty=bool(term.get("stdout_tty")),
            encoding=encoding,
            errors=errors,
        )
        self.stderr = _Captured(
            self._chunks,
            "stderr",
            tty=bool(term.get("stderr_tty")),
            encoding=encoding,
            errors=errors,
        )
        self.stdin = _NoInput(tty=bool(term.get("stdin_tty")))
        columns = term.get("columns")
        if isinstance(columns, int) and columns > 0 and "COLUMNS" not in self.env:
            # What the client's terminal is wide; rich and click read it from COLUMNS.
            self.env["COLUMNS"] = str(columns)
        self._console: Any = None
        self._log_state: tuple[list[logging.Handler], int] = ([], logging.NOTSET)
        self._saved: tuple[dict[str, str], Any, Any, Any, list[str]] | None = None

    # The interpreter is one per process: enter/leave swap the request's state in and out.

    def enter(self) -> None:
        """Make the interpreter this request's: cwd, environment, streams, console, logger."""
        self._saved = (dict(os.environ), sys.stdin, sys.stdout, sys.stderr, sys.argv)
        os.environ.clear()
        os.environ.update(self.env)
        _follow_timezone(self._saved[0])
        os.chdir(self.cwd)
        sys.stdin, sys.stdout, sys.stderr = self.stdin, self.stdout, self.stderr
        sys.argv = ["proml", *self.argv]
        from proml_cli._cli import output

        if self._console is None:
            # A fresh console reads this terminal's facts (width, colour, NO_COLOR) as a fresh
            # process would at import.
            import importlib

            importlib.reload(output)
            self._console = output.err
        else:
            output.err = self._console
        logger = logging.getLogger("proml_cli")
        logger.handlers[:] = self._log_state[0]
        logger.setLevel(self._log_state[1])

    def leave(self) -> None:
        """Give the interpreter back to the node (its own environment, cwd and streams)."""
        if self._saved is None:
            return
        logger = logging.getLogger("proml_cli")
        self._log_state = (list(logger.handlers), logger.level)
        logger.handlers[:] = []
        self.env = dict(os.environ)
        with contextlib.suppress(OSError):
            self.cwd = os.getcwd()
        environ, sys.stdin, sys.stdout, sys.stderr, sys.argv = self._saved
        self._saved = None
        mine = dict(os.environ)
        os.environ.clear()
        os.environ.update(environ)
        _follow_timezone(mine)
        try:
            os.chdir(self.node_dir)
        except OSError:  # the project is gone (the node exits soon): stand anywhere
            os.chdir("/")

    def send_output(self) -> None:
        """Send the output written since the last call, in order: a raw frame per run of one stream.

        Raises:
            OSError: the client's socket failed.
        """
        for stream in (self.stdout, self.stderr):
            with contextlib.suppress(ValueError):
                stream.flush()
        chunks = list(self._chunks)
        self._chunks.clear()
        for name, run in itertools.groupby(chunks, key=lambda chunk: chunk[0]):
            protocol.send_output(self.conn, name, b"".join(data for _, data in run))

    def callback(self, message: dict[str, Any]) -> dict[str, Any]:
        """Ask the client to do something (run the command, prompt) and wait for its answer.

        The interpreter is released meanwhile, so other requests run while the client works.

        Raises:
            ClientGone: the client hung up or answered nonsense; the command is abandoned.
        """
        self.leave()
        _interpreter.release()
        reply: dict[str, Any] | None = None
        try:
            self.send_output()
            protocol.send(self.conn, message)
            reply = protocol.recv(self.conn)
        except (OSError, ProtocolError) as exc:
            log.info("client gone during %s: %s", message.get("op"), exc)
        finally:
            _interpreter.acquire()
            self.enter()
        if reply is None:
            raise ClientGone
        return reply


def _follow_timezone(before: Mapping[str, str]) -> None:
    """Local times follow ``TZ`` as in a fresh process (the C library reads it on ``tzset``)."""
    if before.get("TZ") != os.environ.get("TZ"):
        time.tzset()


@functools.lru_cache(maxsize=1)
def _command() -> Any:
    """The application's click command, built once (Typer builds it anew on every call)."""
    from typer.main import get_command

    from proml_cli._cli.app import app

    return get_command(app)


def _run_command(request: Request) -> int:
    """Run the Typer application on the request's argv; its exit code."""
    try:
        _command().main(args=request.argv, prog_name=request.prog_name, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write(f"{code}\n")
        return 1
    except ClientGone:
        raise
    except Exception:  # noqa: BLE001 - the node is the CLI's boundary: report as Python would
        sys.stderr.write(traceback.format_exc())
        return 1
    return 0


def _handle_call(conn: socket.socket, message: Mapping[str, Any], node_dir: Path) -> None:
    request = Request(conn, message, node_dir)
    if not Path(request.cwd).is_dir():
        protocol.send(conn, {"op": "refused", "reason": "working directory is gone"})
        return
    name = next((a for a in request.argv if not a.startswith("-")), "-")
    began = time.monotonic()
    with _interpreter:
        _current.request = request
        request.enter()
        try:
            code = _run_command(request)
        except ClientGone:
            log.info("command %s abandoned: the client hung up", name)
            return
        finally:
            request.leave()
            _current.request = None
    log.info("command %s exit %d in %.3f s", name, code, time.monotonic() - began)
    request.send_output()
    protocol.send(conn, {"op": "exit", "code": code})


# ---------------------------------------------------------------------------- process hooks


def _remote_execute(argv: Any, cwd: Path | None = None) -> int:
    """``execution.execute`` in the node: the client runs the command in its own process."""
    request: Request | None = getattr(_current, "request", None)
    if request is None:  # pragma: no cover - only requests run commands in the node
        return _local_execute(argv, cwd)
    reply = request.callback(
        {"op": "execute", "argv": list(argv), "cwd": None if cwd is None else str(cwd)}
    )
    code = reply.get("code")
    if reply.get("op") != "executed" or not isinstance(code, int):
        raise ClientGone
    return code


_local_execute: Callable[..., int]


def _remote_getpass(prompt: str = "Password: ", stream: IO[str] | None = None) -> str:
    """``getpass.getpass`` in the node: asked at the client's terminal."""
    request: Request | None = getattr(_current, "request", None)
    if request is None:  # pragma: no cover - only requests prompt in the node
        raise EOFError
    reply = request.callback({"op": "prompt", "text": prompt})
    if reply.get("op") != "answer":
        raise ClientGone
    if reply.get("interrupted"):
        raise KeyboardInterrupt
    text = reply.get("text")
    if not isinstance(text, str):
        raise EOFError
    return text


class _KeyCache:
    """Decrypted keystore keys, like ssh-agent's: memory only, for the node's life.

    Keyed by a hash of the keystore's content and the password, so a changed keystore file or
    password never returns an earlier key (nor skips the wrong-password check). The node exits
    after its idle time, which bounds how long a key stays.
    """

    def __init__(self, decrypt: Callable[[Mapping[str, Any], str | bytes], bytes]) -> None:
        self._decrypt = decrypt
        self._keys: dict[bytes, bytes] = {}
        self._guard = threading.Lock()

    def __call__(self, keystore: Mapping[str, Any], password: str | bytes) -> bytes:
        secret = password.encode() if isinstance(password, str) else bytes(password)
        digest = hashlib.sha256(
            json.dumps(keystore, sort_keys=True, default=str).encode() + b"\0" + secret
        ).digest()
        with self._guard:
            key = self._keys.get(digest)
        if key is not None:
            return key
        key = self._decrypt(keystore, password)
        with self._guard:
            if len(self._keys) >= KEY_CACHE_SIZE:
                self._keys.pop(next(iter(self._keys)))
            self._keys[digest] = key
        return key


def _install_hooks() -> None:
    """Route the user's command and prompts to the client; cache decrypted keys."""
    global _local_execute
    import getpass

    from proml_cli import _keystore, execution

    _local_execute = execution.execute
    execution.execute = _remote_execute
    getpass.getpass = _remote_getpass
    _keystore.decrypt = _KeyCache(_keystore.decrypt)
    from proml_cli.ledger import _storage

    # Contract storage read from the chain, kept by storage root with every trie node checked
    # against its hash (see that module): a read of an unchanged ledger skips the walk.
    _storage.keep_across_reads()


def _warm_up() -> None:
    """Load what chain commands need, once (this is what the node saves every command)."""
    from proml_cli import _deferred

    _deferred.install()
    import importlib

    for module in (
        "proml_cli._cli.app",
        "proml_cli.policy",
        "proml_cli.capture",
        "proml_cli.anchoring",
        "proml_cli.history",
        "proml_cli.queries",
        "proml_cli.verify",
        "proml_cli.account",
        "proml_cli.content",
        "proml_cli.ledger._embedded",
        "proml_cli.ledger._rpc",
        "eth_account",
    ):
        importlib.import_module(module)
    _command()


# ---------------------------------------------------------------------------- the server


class Node:
    """The listening node of one project's state directory."""

    def __init__(self, state_dir: Path, idle: float) -> None:
        self.state_dir = state_dir
        self.idle = idle
        self.stopping = threading.Event()
        self._active = 0
        self._last = time.monotonic()
        self._guard = threading.Lock()
        self._settled = threading.Condition(self._guard)  # notified as each connection ends
        self._dir_id = _identity(state_dir)
        self.sock_path = protocol.socket_path(state_dir)
        self._sock_id: tuple[int, int] | None = None
        self._code: dict[str, int] | None = None

    def listen(self) -> socket.socket:
        """Bind the socket (replacing a stale one: the node lock proves no node owns it)."""
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            server.bind(str(self.sock_path))
        finally:
            os.umask(old)
        os.chmod(self.sock_path, 0o600)
        server.listen(64)
        self._sock_id = _identity(self.sock_path)
        return server

    def serve(self, server: socket.socket) -> None:
        """Accept connections until told to stop, idle, or orphaned."""
        while not self.stopping.is_set():
            ready, _, _ = select.select([server], [], [], CHECK_INTERVAL)
            if ready:
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                with self._guard:
                    self._active += 1
                threading.Thread(target=self._connection, args=(conn,), daemon=True).start()
                continue
            reason = self._exit_reason()
            if reason:
                log.info("stopping: %s", reason)
                return

    def _exit_reason(self) -> str | None:
        if self.stopping.is_set():
            return None  # already logged why
        with self._guard:
            active, last = self._active, self._last
        if _identity(self.state_dir) != self._dir_id:
            return f"{self.state_dir} is gone"
        if self._sock_id is None or _identity(self.sock_path) != self._sock_id:
            return f"the socket {self.sock_path} was removed or replaced"
        if active == 0 and time.monotonic() - last > self.idle:
            return f"idle for {self.idle:g} s"
        return None

    def _connection(self, conn: socket.socket) -> None:
        try:
            uid = protocol.peer_uid(conn)
            if not protocol.peer_allowed(uid):
                log.warning("refused a connection from uid %d", uid)
                return
            conn.settimeout(REQUEST_TIMEOUT)
            message = protocol.recv(conn)
            if message is None:
                return
            conn.settimeout(None)  # the user's command may run for hours
            self._dispatch(conn, message)
        except (OSError, ProtocolError) as exc:
            log.info("connection ended: %s", exc)
        finally:
            conn.close()
            with self._guard:
                self._active -= 1
                self._last = time.monotonic()
                self._settled.notify_all()

    def drain(self) -> None:
        """Wait until every request in flight has ended (a run ends when its client's does)."""
        with self._guard:
            if self._active:
                log.info("finishing %d command(s) in flight", self._active)
            while self._active:
                self._settled.wait()

    def _dispatch(self, conn: socket.socket, message: Mapping[str, Any]) -> None:
        op = message.get("op")
        if op == "ping":
            protocol.send(conn, self.describe())
        elif op == "stop":
            log.info("stopping: asked to")
            self.retire()  # the next command starts a new node, even while this one finishes
            protocol.send(conn, {"op": "stopping", "pid": os.getpid()})
        elif op == "call":
            changed = self.code_changed()
            if (
                changed
                or message.get("protocol") != protocol.PROTOCOL
                or message.get("package") != protocol.package_id()
            ):
                # Its code is not the client's: step aside for a node of the client's code.
                log.info("stopping: %s", changed or "a client of another proml install")
                self.retire()
                protocol.send(conn, {"op": "refused", "reason": "stale", "restart": True})
                return
            _handle_call(conn, message, self.state_dir)
        else:
            raise ProtocolError(f"unknown request {op!r}")

    def code_changed(self) -> str | None:
        """A proml module file changed since the node loaded it (an upgrade, an edit)."""
        if self._code is None:
            self._code = _code_stamps()
            return None
        now = _code_stamps()
        for path, stamp in self._code.items():
            if now.get(path) != stamp:
                return f"{path} changed since the node loaded it"
        return None

    def retire(self) -> None:
        """Stop taking connections at once (a new node may bind the socket) and exit."""
        if _identity(self.sock_path) == self._sock_id:
            with contextlib.suppress(OSError):
                self.sock_path.unlink()
        self._sock_id = None
        self.stopping.set()

    def describe(self) -> dict[str, Any]:
        """The node's status, as ``proml node status`` shows it."""
        with self._guard:
            active, last = self._active, self._last
        return {
            "op": "pong",
            "pid": os.getpid(),
            "protocol": protocol.PROTOCOL,
            "package": protocol.package_id(),
            "socket": str(self.sock_path),
            "idle_timeout": self.idle,
            "idle_for": round(time.monotonic() - last, 3) if active <= 1 else 0.0,
            "active": max(active - 1, 0),
        }


def _code_stamps() -> dict[str, int]:
    """Modification time of each loaded proml module's file."""
    stamps = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == "proml_cli" or name.startswith("proml_cli.")) and path:
            with contextlib.suppress(OSError):
                stamps[path] = os.stat(path).st_mtime_ns
    return stamps


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _report(fd: int | None, text: str) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, text.encode() + b"\n")
        os.close(fd)


def run_node(state_dir: Path, ready_fd: int | None = None) -> int:
    """The node's life: lock, load, listen, serve, clean up. Returns its exit status.

    ``ready_fd`` (a pipe from the starting client) gets one line: ``ready``, ``busy`` (another
    node holds the lock) or ``failed: REASON``.
    """
    state_dir = state_dir.resolve()
    handler = logging.FileHandler(state_dir / protocol.LOG_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s node[%(process)d] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    with contextlib.suppress(OSError):
        os.chmod(state_dir / protocol.LOG_NAME, 0o600)
    lock = open(state_dir / protocol.LOCK_NAME, "a+")  # noqa: SIM115 - held for the node's life
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            # Another node runs (then this one is not needed), or one is retiring.
            if time.monotonic() > deadline:
                _report(ready_fd, "busy")
                return 0
            time.sleep(0.02)
    node = Node(state_dir, idle_seconds(os.environ))
    pid_path = state_dir / protocol.PID_NAME
    try:
        _warm_up()
        _install_hooks()
        # What the warm-up loaded lives as long as the node: keep it out of the collector's
        # walks, which would otherwise visit every module's objects on each full collection.
        gc.collect()
        gc.freeze()
        server = node.listen()
        node.code_changed()  # the first call records what was loaded
    except (OSError, ImportError) as exc:
        log.info("cannot start: %s", exc)
        _report(ready_fd, f"failed: {exc}")
        return 1
    os.chdir(state_dir)

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        node.stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid_path.write_text(json.dumps({"pid": os.getpid(), "socket": str(node.sock_path)}) + "\n")
    log.info("listening on %s (idle timeout %g s)", node.sock_path, node.idle)
    _report(ready_fd, "ready")
    try:
        node.serve(server)
    finally:
        # Give the project to a successor at once: no socket, no pid file, no lock...
        server.close()
        if node._sock_id is not None and _identity(node.sock_path) == node._sock_id:
            with contextlib.suppress(OSError):
                node.sock_path.unlink()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(pid_path.read_text()).get("pid") == os.getpid():
                pid_path.unlink()
        lock.close()
    # ...but finish what was started: a run whose command is under way records its products.
    node.drain()
    log.info("stopped")
    return 0
