"""The run lifecycle, in phases: plan, check materials, execute, collect products, build record.

:func:`prepare` plans (matches the step, checks containment and the ledger's definitions) and
checks every material against the ledger (bytes + state);
:func:`proml_cli.execution.execute` runs the command
unchanged, stdio inherited and signals forwarded (``proml run`` only: an in-process step runs
its body instead); :func:`record_run` collects and stores the products and builds the
canonical record, which :mod:`proml_cli.anchoring` journals and anchors in one transaction.

The ledger is opened once on each side of the work: :func:`prepare` reads it (the step's
definitions and every material), :func:`record_run` opens it once more for the new-version
check, the journal and the anchoring together. It is never held while the work runs: the
embedded chain's lock would keep every other proml process (and a step body that asks the
ledger itself) waiting for as long as the training lasts. :func:`decide` opens it once.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_cli import execution
from proml_cli.errors import (
    BackendUnavailable,
    InputError,
    RefusedError,
)
from proml_cli.ledger import Kind, Move, Registration, VersionRef
from proml_cli.record import (
    DecisionRecord,
    FileEntry,
    RunRecord,
    utc_now,
)

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.ledger import Ledger
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

    def require_anchored(self, *, why: str = "", hint: str) -> None:
        """Refuse a record that could only be journaled (``--require-anchor``, ``require_anchor``).

        Raises:
            BackendUnavailable: the record is in the journal, not on the ledger.
        """
        if self.journaled and not self.recorded:
            raise BackendUnavailable(
                f"{self.unreachable or 'the chain is unreachable'}; the record "
                f"{self.record_cid} of step '{self.step}' is only journaled, not anchored{why}",
                hint=hint,
            )

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


def check_materials(
    project: Project, step: Step, ledger: Ledger, kinds: Mapping[str, Kind]
) -> list[Material]:
    """Check every artefact the step uses: it exists, is a recorded version, in an allowed state.

    ``kinds``: the ledger's kinds by name (as :func:`proml_cli.consistency.require_on_ledger`
    returns them); a version of a kind not among them is asked of the ledger.

    Raises:
        RefusedError: listing every failed check; the command must not start.
    """
    from proml_cli.history import version_problem
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
        onchain = kinds.get(state.kind) or ledger.kind(state.kind)
        problem = version_problem(ledger, state, onchain) if onchain is not None else None
        if problem is not None:
            reasons.append(
                f"input '{name}' ({entry.path}): its history does not match the contract: {problem}"
            )
            continue
        materials.append(Material(entry, state.state, mtime))
    if reasons:
        raise RefusedError(
            f"step '{step.name}' refused: " + "; ".join(reasons),
            reasons,
            hint="; ".join(hints) if hints else None,
        )
    return materials


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


def environment_summary(user: str | None = None) -> dict[str, Any]:
    """A small, key-free summary of where the command ran (``user``: who ran it)."""
    from proml_cli import __version__

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "user": user,
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


@dataclass
class Prepared:
    """A step planned and its inputs checked: what the step's work may now run on.

    Attributes:
        step: the policy step.
        store: the project's content store.
        materials: the checked inputs (bytes, state, modification time).
        signer: the account that signs the record (chosen once the inputs passed).
        before: each product's files as they were before the work ran (to tell stale ones).
    """

    step: Step
    store: ContentStore
    materials: list[Material]
    signer: Any
    before: dict[str, tuple[tuple[str, int, int, int], ...] | None]


def prepare(
    project: Project,
    argv: Sequence[str],
    *,
    step_name: str | None = None,
    account: str | None = None,
) -> Prepared:
    """Plan and check materials: match the step, check containment, the ledger and every input.

    Raises:
        InputError / PolicyError: bad usage.
        RefusedError: a material failed its check; the work must not start.
    """
    policy = project.policy
    step = policy.match_step(argv, step_name)
    check_containment(project, step)
    store = project.store()
    with project.ledger() as ledger:
        # Before the command starts: the ledger must define what the step needs as the policy
        # says (exit 2 otherwise), so a run is never wasted on an unanchorable record.
        from proml_cli.consistency import require_on_ledger

        kinds = require_on_ledger(
            policy, ledger, [*step.uses, *step.produces, *step.fires], step.fires
        )
        materials = check_materials(project, step, ledger, kinds)
    # Chosen (and announced) once the inputs passed, still before the command starts.
    signer = project.signer(account)
    before = {name: _written_state(policy.artefact_path(name)) for name in step.produces}
    return Prepared(step, store, materials, signer, before)


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
    prepared = prepare(project, argv, step_name=step_name, account=account)
    started = utc_now()
    code = execution.execute(argv, cwd=None)
    ended = utc_now()
    if code != 0:
        outcome = RunOutcome(step=prepared.step.name, exit_code=code)
        outcome.materials = [dict(m.entry.to_json(), state=m.state) for m in prepared.materials]
        outcome.messages.append(f"command exited with {code}: nothing was recorded")
        return outcome
    return record_run(project, prepared, command=argv, started=started, ended=ended)


def record_run(
    project: Project,
    prepared: Prepared,
    *,
    command: Sequence[str],
    started: str,
    ended: str,
    logged: Mapping[str, Mapping[str, Any]] | None = None,
) -> RunOutcome:
    """After the work succeeded: collect products, build the record, journal and anchor it.

    ``logged`` adds ``logged_params`` / ``logged_metrics`` (values given in-process) to the
    record; a run of a command has none and its record is unchanged.

    Raises:
        RefusedError: an input changed while the work ran, or a product is missing or stale.
    """
    policy = project.policy
    step, store, materials, signer = (
        prepared.step,
        prepared.store,
        prepared.materials,
        prepared.signer,
    )
    before = prepared.before
    code = 0
    outcome = RunOutcome(step=step.name, exit_code=0)
    outcome.materials = [dict(m.entry.to_json(), state=m.state) for m in materials]

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
    extra: dict[str, Any] = {}
    if step.capture_git:
        extra["git"] = git_state(project.root)
    if step.capture_environment:
        extra["environment"] = environment_summary(project.settings.user)
    for key, values in (logged or {}).items():
        if values:
            extra[f"logged_{key}"] = dict(values)
    record = RunRecord(
        project=policy.project,
        step=step.name,
        command=tuple(command),
        cwd=_cwd(project),
        started=started,
        ended=ended,
        exit_code=code,
        materials=tuple(m.entry for m in materials),
        products=tuple(products),
        params=tuple(_captured_files(project, store, step.params)),
        metrics=tuple(_captured_files(project, store, step.metrics)),
        policy_digest=policy.digest,
        actor=signer.address,
        extra=extra,
    ).to_json()

    inputs = tuple(VersionRef(str(m.entry.artefact), m.entry.sha256) for m in materials)
    candidates = [
        Registration(VersionRef(str(p.artefact), p.sha256), p.cid, inputs) for p in products
    ]
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
    from proml_cli.anchoring import journal_and_anchor

    with ExitStack() as stack:
        # One ledger for the rest of the command: the new-version check and the anchoring.
        ledger, chain_down = _reach(project, signer, stack)
        registrations = candidates
        if ledger is not None:
            try:
                registrations = [c for c in candidates if ledger.version(c.version) is None]
            except BackendUnavailable as exc:
                ledger, chain_down = None, exc
        for candidate in candidates:
            if candidate not in registrations:
                name = candidate.version.artefact
                outcome.messages.append(f"'{name}' is unchanged (version already recorded)")
        # With the chain down, every product is journaled as a registration: the command has
        # run, its record must reach the journal; anchor() drops those registered meanwhile.
        return journal_and_anchor(
            project, ledger, store, record, registrations, moves, outcome, chain_down=chain_down
        )


def _reach(
    project: Project, signer: Any, stack: ExitStack
) -> tuple[Ledger | None, BackendUnavailable | None]:
    """Open the project's ledger (signing as ``signer``) for the rest of ``stack``'s block.

    Returns the ledger, or None and the outage when the chain cannot be reached: work that
    is done must still reach the journal.
    """
    try:
        return stack.enter_context(project.ledger(signer)), None
    except BackendUnavailable as exc:
        return None, exc


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
    from proml_cli.suggest import did_you_mean

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
    record = DecisionRecord(
        project=policy.project,
        transition=transition,
        subject=subject,
        note=note,
        decided=utc_now(),
        policy_digest=policy.digest,
        actor=signer.address,
    ).to_json()
    outcome = RunOutcome(step=f"transition:{transition}", exit_code=0)
    moves = [Move(VersionRef(artefact, subject.sha256), transition)]
    outcome.transitions = [{"artefact": artefact, "transition": transition}]
    with ExitStack() as stack:
        # One ledger for the command: the checks and the anchoring. Unreachable, the decision
        # is made all the same: the journal keeps it for `proml sync`, which anchors it (or
        # reports the contract's refusal) once the chain answers again.
        ledger, chain_down = _reach(project, signer, stack)
        if ledger is not None:
            try:
                _check_decision(project, ledger, subject, artefact, transition)
            except BackendUnavailable as exc:
                ledger, chain_down = None, exc
        from proml_cli.anchoring import journal_and_anchor

        return journal_and_anchor(
            project, ledger, store, record, [], moves, outcome, chain_down=chain_down
        )


def _check_decision(
    project: Project, ledger: Ledger, subject: FileEntry, artefact: str, transition: str
) -> None:
    """The version must be recorded, of the policy's kind, in a state the transition leaves.

    Raises:
        InputError: the ledger defines the version's kind otherwise than the policy (exit 2).
        RefusedError: not a recorded version, or in a state the transition does not leave.
    """
    from proml_cli.history import version_problem
    from proml_cli.suggest import allowed_from

    policy = project.policy
    kind = policy.kind_of(artefact)
    current = ledger.version(VersionRef(artefact, subject.sha256))
    onchain_kind = ledger.kind(current.kind) if current is not None else None
    if onchain_kind is not None:
        # The version's kind as the ledger defines it must be the policy's (exit 2).
        from proml_cli.consistency import require_same_kind

        require_same_kind(policy, onchain_kind)
    if current is None:
        raise RefusedError(
            f"{subject.path} (sha256:{subject.sha256[:12]}) is not a recorded version of "
            f"'{artefact}'",
            ["not a recorded version"],
            hint=_record_first_hint(project, artefact, has_path_option=True),
        )
    problem = version_problem(ledger, current, onchain_kind) if onchain_kind is not None else None
    if problem is not None:
        raise RefusedError(
            f"'{artefact}' ({subject.path}): its history does not match the contract: {problem}",
            ["history does not match the contract"],
            hint="`proml verify` names the check; `proml fsck` checks the chain's blocks",
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
