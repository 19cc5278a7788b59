"""The run lifecycle: check materials, execute the command unchanged, record products, anchor.

Order (after in-toto's runlib, with a journal so that nothing is lost):
validate the step → check every material against the ledger (bytes + state) → execute with
stdio inherited and signals forwarded → hash and store the products → build the canonical
record → journal it → submit one transaction → mark the journal entry done.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from proml_cli.errors import (
    BackendUnavailable,
    ContentError,
    ExitCode,
    InputError,
    JournalError,
    LedgerError,
    RefusedError,
)
from proml_cli.journal import DONE, REFUSED, Entry, Journal
from proml_cli.ledger import Move, Registration, VersionRef
from proml_cli.record import (
    RECORD_TYPE_DECISION,
    RECORD_TYPE_RUN,
    FileEntry,
    canonical_bytes,
    utc_now,
)

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.ledger import Ledger, Receipt
    from proml_cli.policy import Step
    from proml_cli.project import Project

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Material:
    """A used artefact, checked before the command ran."""

    entry: FileEntry
    state: str
    mtime_ns: int


@dataclass
class RunOutcome:
    """What ``run`` did; the CLI renders it (to stderr or ``--summary-json``)."""

    step: str
    exit_code: int
    recorded: bool = False
    journaled: bool = False
    record_cid: str | None = None
    tx_hash: str | None = None
    block: int | None = None
    gas_used: int | None = None
    materials: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    #: Why the record is only journaled: the chain's outage, naming its URL (None if anchored).
    unreachable: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON."""
        return {
            "step": self.step,
            "exit_code": self.exit_code,
            "recorded": self.recorded,
            "journaled": self.journaled,
            "record_cid": self.record_cid,
            "tx_hash": self.tx_hash,
            "block": self.block,
            "gas_used": self.gas_used,
            "materials": self.materials,
            "products": self.products,
            "transitions": self.transitions,
            "messages": self.messages,
            "deferred": self.deferred,
            "unreachable": self.unreachable,
        }


# ---------------------------------------------------------------------------- hashing


def hash_entry(project: Project, path: Path, artefact: str | None) -> FileEntry:
    """Hash a file or directory (sha256 + CID in one read) without storing it."""
    from proml_cli.content import hash_path

    result = hash_path(path, cid_version=project.policy.storage.cid_version)
    return FileEntry(
        path=_relative(project, path),
        sha256=result.sha256,
        cid=result.cid,
        size=result.size,
        type=result.type,
        artefact=artefact,
    )


def store_entry(
    project: Project, store: ContentStore, path: Path, artefact: str | None
) -> FileEntry:
    """Store a file or directory in the content store (hashing it in the same pass)."""
    stored = store.put_path(path, cid_version=project.policy.storage.cid_version)
    return FileEntry(
        path=_relative(project, path),
        sha256=stored.sha256,
        cid=stored.cid,
        size=stored.size,
        type=stored.type,
        artefact=artefact,
    )


def contained(project: Project, path: Path, what: str = "path") -> Path:
    """``path`` resolved (every parent, symlinks included), which must lie inside the project.

    A policy path is lexically inside the project, but ``data -> /elsewhere`` would still make
    proml read, record or write a file elsewhere: every path is resolved before it is used.

    Raises:
        InputError: the resolved path is outside the project's directory.
    """
    root = project.root.resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise InputError(
            f"{what} {path} resolves to {resolved}, outside the project {root}",
            hint="keep artefacts inside the project's directory (no symlink may lead out)",
        )
    return resolved


def _relative(project: Project, path: Path) -> str:
    """The project-relative POSIX path a record holds (never an absolute one).

    Raises:
        InputError: the path resolves outside the project.
    """
    return contained(project, path).relative_to(project.root.resolve()).as_posix()


def _cwd(project: Project) -> str | None:
    """The working directory relative to the project; None when proml runs from outside it."""
    try:
        return Path.cwd().resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        return None


def check_containment(project: Project, step: Step) -> None:
    """Every artefact the step reads or writes must resolve inside the project.

    Raises:
        InputError: naming the first one that does not; the command must not start.
    """
    for name in (*step.uses, *step.produces):
        role = "input" if name in step.uses else "output"
        contained(project, project.policy.artefact_path(name), f"{role} '{name}'")


# ---------------------------------------------------------------------------- materials


def _written_state(path: Path) -> tuple[tuple[str, int, int, int], ...] | None:
    """What changes when a command writes ``path``: size, mtime and inode of every file."""
    if not path.exists():
        return None
    files = [path] if not path.is_dir() else sorted(p for p in path.rglob("*") if p.is_file())
    state = []
    for file in files:
        st = file.stat()
        state.append((file.as_posix(), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(state)


def check_materials(project: Project, step: Step, ledger: Ledger) -> list[Material]:
    """Check every artefact the step uses: it exists, is a recorded version, in an allowed state.

    Raises:
        RefusedError: listing every failed check; the command must not start.
    """
    from proml_cli.suggest import path_to

    reasons: list[str] = []
    hints: list[str] = []
    materials: list[Material] = []
    for name, accepted in step.uses.items():
        path = project.policy.artefact_path(name)
        if not path.exists():
            reasons.append(f"input '{name}' ({_relative(project, path)}) does not exist")
            continue
        mtime = path.stat().st_mtime_ns
        entry = hash_entry(project, path, name)
        state = ledger.version(VersionRef(name, entry.sha256))
        if state is None:
            reasons.append(
                f"input '{name}' ({entry.path}, sha256:{entry.sha256[:12]}) is not a recorded "
                "version: it was never recorded, or it changed since"
            )
            hints.append(_record_first_hint(project, name, has_path_option=False))
            continue
        if state.state not in accepted:
            reasons.append(
                f"input '{name}' ({entry.path}) is in state '{state.state}', "
                f"step '{step.name}' requires {' or '.join(repr(s) for s in accepted)}"
            )
            kind = project.policy.kinds[project.policy.artefacts[name].kind]
            route = path_to(kind, state.state, accepted)
            if route:
                hints.append(" then ".join(f"`proml transition {name} {t}`" for t in route))
            continue
        materials.append(Material(entry, state.state, mtime))
    if reasons:
        raise RefusedError(
            f"step '{step.name}' refused: " + "; ".join(reasons),
            reasons,
            hint="; ".join(hints) if hints else None,
        )
    return materials


# ---------------------------------------------------------------------------- execution


def execute(argv: Sequence[str], cwd: Path | None = None) -> int:
    """Run ``argv`` with inherited stdio, forwarding SIGINT/SIGTERM; return its exit status.

    A signal death becomes 128+N, an unrunnable command 126 and a missing one 127 (shell
    conventions, so wrappers in CI scripts behave like the bare command).
    """
    # The handlers go in BEFORE the child starts. Installed after Popen returned (as before),
    # a signal sent as soon as the child was up (the child can print before the parent runs
    # again on a loaded machine) killed proml with the default action, or raised
    # KeyboardInterrupt, while the orphaned child kept running and held proml's stdout and
    # stderr open: the caller then waited for a command that was no longer proml's.
    started: list[subprocess.Popen[bytes]] = []
    early: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        # The child shares our terminal's process group, so a Ctrl-C reaches it directly; this
        # forwards signals sent to proml alone (kill, a CI runner's timeout) as well.
        if not started:
            early.append(signum)  # delivered as soon as the child exists
        elif started[0].poll() is None:
            started[0].send_signal(signum)

    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
    for forwarded in (signal.SIGINT, signal.SIGTERM):
        previous[forwarded] = signal.signal(forwarded, forward)
    try:
        try:
            # The wrapped command is the user's own, run without a shell, exactly as typed.
            child = subprocess.Popen(list(argv), cwd=cwd)  # noqa: S603
        except FileNotFoundError:
            sys.stderr.write(f"proml: command not found: {argv[0]}\n")
            return int(ExitCode.NOT_FOUND)
        except PermissionError:
            sys.stderr.write(f"proml: cannot execute: {argv[0]}\n")
            return int(ExitCode.CANNOT_EXECUTE)
        started.append(child)
        for signum in early:
            child.send_signal(signum)
        code = _wait_interruptibly(child)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


#: The longest a signal for the child can wait before proml forwards it (seconds).
SIGNAL_LATENCY = 0.05


def _wait_interruptibly(child: subprocess.Popen[bytes]) -> int:
    """Wait for ``child`` in short slices, so that a signal handler always gets to run.

    Python runs a signal handler between bytecodes, in the main thread. A signal that arrives
    just before a blocking call (between the interpreter's last check and the system call), or
    that the kernel hands to another thread, does not interrupt the call: a plain
    ``child.wait()`` then sleeps in ``waitpid`` until the child exits, with SIGTERM still
    unforwarded (python/cpython#98140; bpo-30643 calls it a well-known race). Under load this
    hung `proml run` after a SIGTERM until the command ended on its own. Waiting in slices of at
    most :data:`SIGNAL_LATENCY` bounds the delay instead (Popen's timed wait polls ``waitpid``
    with growing sleeps capped at 50 ms); the wake-ups cost nothing measurable.
    """
    while True:
        try:
            return child.wait(timeout=SIGNAL_LATENCY)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # pragma: no cover - our handler replaces the default one
            continue


# ---------------------------------------------------------------------------- environment


def git_state(root: Path) -> dict[str, Any] | None:
    """The commit and dirty flag of the git work tree containing ``root`` (None outside git)."""
    # gitpython costs ~0.06 s to import: look for a repository before paying for it.
    if not any((d / ".git").exists() for d in (root.resolve(), *root.resolve().parents)):
        return None
    try:
        import git
    except ImportError:  # pragma: no cover - git binary missing
        return None
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        commit = repo.head.commit.hexsha
    except ValueError:
        commit = None  # a repository without commits yet
    return {"commit": commit, "dirty": repo.is_dirty(untracked_files=True)}


def environment_summary() -> dict[str, Any]:
    """A small, key-free summary of where the command ran."""
    from proml_cli import __version__

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "user": os.environ.get("USER") or os.environ.get("USERNAME"),
        "proml": __version__,
    }


def _captured_files(
    project: Project, store: ContentStore, patterns: Sequence[str]
) -> list[dict[str, Any]]:
    found = []
    for pattern in patterns:
        matches = sorted(project.root.glob(pattern))
        if not matches:
            found.append({"path": pattern, "missing": True})
        for path in matches:
            contained(project, path, f"captured file {pattern!r}")
            if path.is_file():
                found.append(store_entry(project, store, path, None).to_json())
    return found


# ---------------------------------------------------------------------------- submission


def anchor(
    project: Project,
    signer: Any,
    entry: Entry,
    journal: Journal,
    store: ContentStore,
) -> Receipt | None:
    """Submit a journaled entry once; mark it done (or refused). Idempotent by record CID.

    Returns:
        The receipt of the transaction anchoring the record (the earlier one if it was anchored
        already), or None when nothing was left to anchor: every product was registered by
        then and the entry fires no transition (the entry is marked done without one).

    Raises:
        LedgerError: the contract refused (the entry moves to ``refused/``).
        BackendUnavailable: the chain is unreachable (the entry stays pending).
    """
    # The record is made durable in the local store before anything else, always: a node's
    # "I have it" (pin/ls) is a claim, and believing it once lost a record for good. Storing
    # bytes the local store holds already costs one lookup. It is also
    # what keeps an IPFS outage from holding a record off a reachable chain.
    stored = store.put_bytes(entry.record_bytes)
    if stored != entry.record_cid:
        raise ContentError(f"journaled record {entry.record_cid} re-stored as {stored}")
    with project.ledger(signer) as ledger:
        done = _find_anchor(ledger, entry.record_cid)
        if done is not None:
            journal.mark(entry.record_cid, DONE, tx_hash=done.tx_hash)
            return done
        # An entry journaled while the chain was unreachable lists every product; one that has
        # been registered since (an identical run) would revert the whole batch as a duplicate.
        registrations = [r for r in entry.registrations if ledger.version(r.version) is None]
        if not registrations and not entry.moves:
            journal.mark(entry.record_cid, DONE)
            return None
        try:
            receipt = ledger.submit(entry.record_cid, registrations, entry.moves)
        except LedgerError as exc:
            journal.mark(entry.record_cid, REFUSED)
            raise _name_allowed_roles(exc, ledger, registrations, entry.moves) from exc
    journal.mark(entry.record_cid, DONE, tx_hash=receipt.tx_hash)
    return receipt


def _name_allowed_roles(
    exc: LedgerError, ledger: Ledger, registrations: Sequence[Registration], moves: Sequence[Move]
) -> LedgerError:
    """Add to a missing-role refusal the roles the chain allows and those the signer holds.

    The contract's ``MissingRole`` error names the account, the kind and the action only; the
    user's next step (ask the admin for a role) needs the role's name.
    """
    if exc.contract_error != "MissingRole":
        return exc
    operations = [(r.version.artefact, "register") for r in registrations]
    operations += [(m.version.artefact, m.transition) for m in moves]
    for artefact, action in operations:
        kind_name = ledger.artefact_kind(artefact)
        kind = ledger.kind(kind_name) if kind_name else None
        if kind is None or f"'{action}' on kind '{kind.name}'" not in exc.diagnosis:
            continue
        if action == "register":
            allowed = kind.register_roles
        else:
            allowed = next((t.roles for t in kind.transitions if t.name == action), ())
        held = ledger.roles_of(ledger.account)
        return LedgerError(
            f"{exc.diagnosis} (allowed: {', '.join(allowed) or 'none'}; "
            f"it holds: {', '.join(held) or 'no role'})",
            hint=exc.hint
            or (
                f"the project's admin can run `proml roles grant {allowed[0]} {ledger.account}`,"
                " or sign with an account that holds the role (--as NAME)"
                if allowed
                else None
            ),
            contract_error="MissingRole",
        )
    return exc


def _find_anchor(ledger: Ledger, record_cid: str) -> Receipt | None:
    """The transaction that anchored ``record_cid`` already, if any.

    Only steps of versions whose events match the contract count: a row added to a local
    event index must not mark a pending record as anchored.
    """
    from proml_cli.history import read
    from proml_cli.ledger import Receipt

    found = [
        step.event
        for version in read(ledger).versions.values()
        if not version.problem
        for step in version.steps
        if step.record_cid == record_cid
    ]
    if not found:
        return None
    event = min(found, key=lambda e: (e.block, e.log_index))
    return Receipt(event.tx_hash, event.block, event.timestamp, 0)


def run_step(
    project: Project,
    argv: Sequence[str],
    *,
    step_name: str | None = None,
    account: str | None = None,
) -> RunOutcome:
    """The whole ``proml run`` lifecycle; returns the outcome (its ``exit_code`` is the child's).

    Raises:
        InputError / PolicyError: bad usage, before anything ran.
        RefusedError: a material failed its check; the command did not start.
    """
    policy = project.policy
    step = policy.match_step(argv, step_name)
    check_containment(project, step)
    store = project.store()
    with project.ledger() as ledger:
        # Before the command starts: the ledger must define what the step needs as the policy
        # says (exit 2 otherwise), so a run is never wasted on an unanchorable record.
        from proml_cli.consistency import require_on_ledger

        require_on_ledger(policy, ledger, [*step.uses, *step.produces, *step.fires], step.fires)
        materials = check_materials(project, step, ledger)
    # Chosen (and announced) once the inputs passed, still before the command starts.
    signer = project.signer(account)
    outcome = RunOutcome(step=step.name, exit_code=0)
    outcome.materials = [dict(m.entry.to_json(), state=m.state) for m in materials]

    before = {name: _written_state(policy.artefact_path(name)) for name in step.produces}
    started = utc_now()
    code = execute(argv, cwd=None)
    ended = utc_now()
    outcome.exit_code = code
    if code != 0:
        outcome.messages.append(f"command exited with {code}: nothing was recorded")
        return outcome

    changed = [
        m.entry.path
        for m in materials
        if not policy.artefact_path(str(m.entry.artefact)).exists()
        or policy.artefact_path(str(m.entry.artefact)).stat().st_mtime_ns != m.mtime_ns
    ]
    if changed:
        raise RefusedError(
            "inputs changed while the command ran, so its lineage cannot be recorded: "
            + ", ".join(changed),
            [f"input {p} changed during the run" for p in changed],
        )

    missing = [name for name in step.produces if not policy.artefact_path(name).exists()]
    # A file left over from an earlier run is not a product of this one.
    stale = [
        name
        for name in step.produces
        if name not in missing
        and before[name] is not None
        and before[name] == _written_state(policy.artefact_path(name))
    ]
    if missing or stale:
        raise RefusedError(
            "the command did not produce "
            + ", ".join(
                f"'{n}' ({policy.artefacts[n].path}"
                + (", unchanged since before it ran)" if n in stale else ")")
                for n in (*missing, *stale)
            )
            + ": nothing was recorded",
            [f"declared output '{n}' was not produced" for n in (*missing, *stale)],
        )

    products = [store_entry(project, store, policy.artefact_path(n), n) for n in step.produces]
    record: dict[str, Any] = {
        "type": RECORD_TYPE_RUN,
        "project": policy.project,
        "step": step.name,
        "command": list(argv),
        "cwd": _cwd(project),
        "started": started,
        "ended": ended,
        "exit_code": code,
        "materials": [m.entry.to_json() for m in materials],
        "products": [p.to_json() for p in products],
        "params": _captured_files(project, store, step.params),
        "metrics": _captured_files(project, store, step.metrics),
        "policy_digest": policy.digest,
        "actor": signer.address,
    }
    if step.capture_git:
        record["git"] = git_state(project.root)
    if step.capture_environment:
        record["environment"] = environment_summary()

    inputs = tuple(VersionRef(str(m.entry.artefact), m.entry.sha256) for m in materials)
    candidates = [
        Registration(VersionRef(str(p.artefact), p.sha256), p.cid, inputs) for p in products
    ]
    chain_down: BackendUnavailable | None = None
    try:
        with project.ledger(signer) as ledger:
            registrations = []
            for candidate in candidates:
                if ledger.version(candidate.version) is None:
                    registrations.append(candidate)
                else:
                    name = candidate.version.artefact
                    outcome.messages.append(f"'{name}' is unchanged (version already recorded)")
    except BackendUnavailable as exc:
        # The command has run: its record must reach the journal. Every product is journaled
        # as a registration; anchor() drops those already registered when the chain is back.
        registrations = candidates
        chain_down = exc
    moves = []
    for artefact, transition in step.fires.items():
        source = next((p for p in products if p.artefact == artefact), None)
        if source is None:
            source = next(m.entry for m in materials if m.entry.artefact == artefact)
        moves.append(Move(VersionRef(artefact, source.sha256), transition))
    outcome.products = [p.to_json() for p in products]
    outcome.transitions = [
        {"artefact": m.version.artefact, "transition": m.transition} for m in moves
    ]
    return _journal_and_anchor(
        project, signer, store, record, registrations, moves, outcome, chain_down=chain_down
    )


def decide(
    project: Project,
    artefact: str,
    transition: str,
    *,
    path: Path | None = None,
    note: str | None = None,
    account: str | None = None,
) -> RunOutcome:
    """``proml transition``: a human decision on one version, recorded like a run.

    With the chain unreachable the decision is journaled (``outcome.journaled``) for
    ``proml sync``, which anchors it once the chain is back.

    Raises:
        InputError: unknown artefact/transition (with the closest name), or no file at the path.
        RefusedError: the bytes are not a recorded version, or its state does not allow the
            transition (naming the transitions it allows).
    """
    from proml_cli.suggest import allowed_from, did_you_mean

    policy = project.policy
    if artefact not in policy.artefacts:
        raise InputError(
            f"unknown artefact '{artefact}'{did_you_mean(artefact, policy.artefacts)}",
            hint="the artefacts are declared under `artefacts:` in " + policy.source,
        )
    kind = policy.kinds[policy.artefacts[artefact].kind]
    if transition not in kind.transitions:
        raise InputError(
            f"kind '{kind.name}' of '{artefact}' has no transition '{transition}'"
            f"{did_you_mean(transition, kind.transitions)}",
            hint=f"its transitions: {', '.join(kind.transitions)}",
        )
    target = path if path is not None else policy.artefact_path(artefact)
    contained(project, target, f"'{artefact}'")
    if not target.exists():
        raise InputError(f"{target}: no such file or directory")
    signer = project.signer(account)
    store = project.store()
    subject = hash_entry(project, target, artefact)
    record: dict[str, Any] = {
        "type": RECORD_TYPE_DECISION,
        "project": policy.project,
        "transition": transition,
        "subject": subject.to_json(),
        "note": note,
        "decided": utc_now(),
        "policy_digest": policy.digest,
        "actor": signer.address,
    }
    outcome = RunOutcome(step=f"transition:{transition}", exit_code=0)
    moves = [Move(VersionRef(artefact, subject.sha256), transition)]
    outcome.transitions = [{"artefact": artefact, "transition": transition}]
    chain_down: BackendUnavailable | None = None
    try:
        with project.ledger(signer) as ledger:
            current = ledger.version(moves[0].version)
            if current is not None:
                # The version's kind as the ledger defines it must be the policy's (exit 2).
                from proml_cli.consistency import require_same_kind

                onchain_kind = ledger.kind(current.kind)
                if onchain_kind is not None:
                    require_same_kind(policy, onchain_kind)
    except BackendUnavailable as exc:
        # The decision is made: keep it in the journal; `proml sync` anchors it (or reports
        # the contract's refusal) once the chain answers again.
        chain_down = exc
    else:
        if current is None:
            raise RefusedError(
                f"{subject.path} (sha256:{subject.sha256[:12]}) is not a recorded version of "
                f"'{artefact}'",
                ["not a recorded version"],
                hint=_record_first_hint(project, artefact, has_path_option=True),
            )
        if current.state not in kind.transitions[transition].sources:
            allowed = allowed_from(kind, current.state)
            needed = " or ".join(f"'{s}'" for s in kind.transitions[transition].sources)
            raise RefusedError(
                f"'{artefact}' ({subject.path}) is in state '{current.state}'; "
                f"'{transition}' fires only from {needed}",
                [f"wrong state '{current.state}'"],
                hint=(
                    f"from '{current.state}' the allowed transitions are: {', '.join(allowed)} "
                    f"(`proml transition {artefact} {allowed[0]}`)"
                    if allowed
                    else f"no transition leaves '{current.state}'"
                ),
            )
    return _journal_and_anchor(
        project, signer, store, record, [], moves, outcome, chain_down=chain_down
    )


def _record_first_hint(project: Project, artefact: str, *, has_path_option: bool) -> str:
    """The next command for a version the ledger does not know: the step that produces it."""
    producers = [s for s in project.policy.steps.values() if artefact in s.produces]
    other = " or pass --path with a recorded version's file" if has_path_option else ""
    if producers:
        import shlex

        return (
            f"record it first: `proml run -- {shlex.join(producers[0].command)}` (step "
            f"'{producers[0].name}'){',' + other if other else ''}"
        )
    return f"`proml log {artefact}` lists its recorded versions;{other or ' restore one'}"


def _journal_and_anchor(
    project: Project,
    signer: Any,
    store: ContentStore,
    record: dict[str, Any],
    registrations: Sequence[Registration],
    moves: Sequence[Move],
    outcome: RunOutcome,
    *,
    chain_down: BackendUnavailable | None = None,
) -> RunOutcome:
    """Journal the record, then anchor it unless the chain was already found unreachable.

    ``chain_down`` is the outage this command already waited for: asking again would only
    double the wait, so the record stays in the journal for ``proml sync``.
    """
    from proml_cli.content import bytes_cid

    # The CID is computed here, not by the store: the journal must hold the record even when
    # the store is unreachable.
    record_cid = bytes_cid(canonical_bytes(record))
    entry = Entry(record_cid, record, tuple(registrations), tuple(moves), utc_now())
    outcome.record_cid = record_cid
    _anchor_entry(project, signer, store, entry, outcome, chain_down=chain_down)
    outcome.deferred = store.unpushed()
    if outcome.deferred:
        outcome.messages.append(
            f"{len(outcome.deferred)} item(s) are only in the local store: the IPFS node was "
            "unreachable or misbehaved: run `proml push` (or `proml sync`) once it is back"
        )
    return outcome


def _anchor_entry(
    project: Project,
    signer: Any,
    store: ContentStore,
    entry: Entry,
    outcome: RunOutcome,
    *,
    chain_down: BackendUnavailable | None = None,
) -> None:
    """Journal ``entry`` and anchor it, noting in ``outcome`` what happened."""
    if not entry.registrations and not entry.moves:
        store.put_bytes(entry.record_bytes)
        outcome.messages.append("nothing new to anchor on the ledger")
        return
    journal = Journal(project.state_dir / "journal")
    try:
        journal.write(entry)
    except OSError as exc:
        raise JournalError(f"cannot write the journal: {exc}") from exc
    outcome.journaled = True
    if chain_down is not None:
        # Keep the bytes of the record too (locally at least), so sync has all it needs.
        store.put_bytes(entry.record_bytes)
        outcome.unreachable = chain_down.diagnosis
        outcome.messages.append(
            f"{chain_down.diagnosis}; the record is kept in the journal: run `proml sync`"
        )
        return
    try:
        receipt = anchor(project, signer, entry, journal, store)
    except BackendUnavailable as exc:
        outcome.unreachable = exc.diagnosis
        outcome.messages.append(
            f"{exc.diagnosis}; the record is kept in the journal: run `proml sync`"
        )
        return
    outcome.journaled = False
    if receipt is None:
        outcome.messages.append("nothing new to anchor on the ledger")
        return
    outcome.recorded = True
    outcome.tx_hash = receipt.tx_hash
    outcome.block = receipt.block
    outcome.gas_used = receipt.gas_used


def sync(project: Project, *, account: str | None = None) -> list[dict[str, Any]]:
    """Anchor every pending journal entry, each exactly once; return what happened to each."""
    journal = Journal(project.state_dir / "journal")
    pending = journal.pending()
    # An unreadable entry was set aside; it never stops the others from being anchored.
    results: list[dict[str, Any]] = [
        {
            "record_cid": q.path.stem,
            "status": "quarantined",
            "reason": q.describe(project.root),
            "path": str(q.moved_to),
        }
        for q in journal.quarantined
    ]
    if not pending:
        return results
    signer = project.signer(account)
    store = project.store()
    for entry in pending:
        try:
            receipt = anchor(project, signer, entry, journal, store)
        except BackendUnavailable as exc:
            if not journal.quarantined:
                raise
            # The entry set aside must not go unreported because the chain is away.
            raise BackendUnavailable(
                f"{exc.diagnosis}; also, {journal.quarantined[0].describe(project.root)}",
                hint=exc.hint,
            ) from exc
        except LedgerError as exc:
            results.append(
                {"record_cid": entry.record_cid, "status": "refused", "reason": exc.diagnosis}
            )
            continue
        if receipt is None:
            results.append(
                {
                    "record_cid": entry.record_cid,
                    "status": "done",
                    "reason": "nothing left to anchor: its versions were registered since",
                }
            )
            continue
        results.append(
            {
                "record_cid": entry.record_cid,
                "status": "anchored",
                "tx_hash": receipt.tx_hash,
                "block": receipt.block,
            }
        )
    return results
