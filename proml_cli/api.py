"""The public Python API: capture and verification from inside a script or a notebook.

``import proml_cli as proml`` gives :func:`open_project`, the :func:`step` decorator,
:func:`verify_or_raise` and the types they return (documented in docs/api.md). The ``proml``
command is a client of the same functions.

Nothing here takes over the process: no signal handler, nothing written to stdout or stderr
(progress and warnings go to the ``proml_cli`` logger), no prompt unless a network keystore
needs a password and stdin is a terminal. Importing this module loads no chain library: web3
and py-evm are imported when a ledger is first opened.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import math
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from proml_cli.errors import InputError, VerificationFailed
from proml_cli.settings import Settings

if TYPE_CHECKING:
    from proml_cli.capture import Prepared, RunOutcome
    from proml_cli.content import ContentStore
    from proml_cli.history import History, LogEntry, RecordDetail, VersionDetail
    from proml_cli.ledger import LedgerReader, Receipt
    from proml_cli.policy import Policy
    from proml_cli.project import Project as _Context
    from proml_cli.queries import ArtefactStatus, RoleHolders
    from proml_cli.record import Record
    from proml_cli.verify import Verdict

logger = logging.getLogger("proml_cli")

P = ParamSpec("P")
R = TypeVar("R")

#: The step a ``with`` block or a decorated function is running (for :func:`log_params`).
_ACTIVE: contextvars.ContextVar[StepRun | None] = contextvars.ContextVar(
    "proml_active_step", default=None
)


def open_project(
    path: str | Path = ".",
    *,
    account: str | None = None,
    announce: Callable[[str], None] | None = None,
    settings: Settings | None = None,
) -> Project:
    """The project whose ``proml.yaml`` is at ``path`` or in a directory above it (like git).

    ``path`` may also name the policy file itself. ``account`` is the local account that signs
    (default: ``default``); ``announce`` is told, in one line, which address signs whenever a
    signer is chosen (default: the ``proml_cli`` logger at INFO). ``settings`` overrides the
    policy's chain and store (default: read once from ``PROML_CHAIN_URL`` / ``PROML_IPFS_URL``).

    Raises:
        InputError: no policy found; PolicyError: an invalid one.
    """
    from proml_cli.project import load_project

    where = Path(path)
    explicit = str(where) if where.is_file() else None
    start = None if explicit else where
    if settings is None:
        # ``path`` says where the project is: PROML_POLICY is the command line's way.
        settings = replace(Settings.from_environ(), policy=None)
    announce = announce or logger.info
    context = load_project(explicit, start=start, announce=announce, settings=settings)
    return Project(context, account=account)


class Project:
    """An opened project: its policy, ledger and content store, and what can be asked of them.

    Every method opens what it needs and releases it before returning (the embedded chain is
    locked only while a method runs), so a project may be kept open in a notebook.
    """

    def __init__(self, context: _Context, *, account: str | None = None) -> None:
        self._context = context
        self._account = account

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    @property
    def root(self) -> Path:
        """The project's directory (where ``proml.yaml`` is)."""
        return self._context.root

    @property
    def policy(self) -> Policy:
        """The validated policy."""
        return self._context.policy

    @property
    def context(self) -> _Context:
        """The internal project (state directory, ledger and store factories)."""
        return self._context

    # ------------------------------------------------------------------ capture

    def step(
        self, name: str, *, account: str | None = None, require_anchor: bool = False
    ) -> StepRun:
        """The policy step ``name`` run in-process: use as ``with project.step("train") as s:``.

        See :class:`StepRun`. ``account`` overrides the project's signing account.
        """
        return StepRun(
            name, project=self, account=account or self._account, require_anchor=require_anchor
        )

    def transition(
        self,
        artefact: str,
        name: str,
        *,
        path: str | Path | None = None,
        note: str | None = None,
        account: str | None = None,
    ) -> RunOutcome:
        """Fire transition ``name`` on the version of ``artefact`` whose bytes are at ``path``.

        ``path`` defaults to the artefact's own path in the policy. The record is journaled
        and anchored in one transaction, like ``proml transition``.

        Raises:
            InputError: unknown artefact or transition, or no file at the path.
            RefusedError: the bytes are not a recorded version.
            LedgerError: the contract refused (state, role).
            BackendUnavailable: the chain is unreachable.
        """
        from proml_cli.capture import decide

        return decide(
            self._context,
            artefact,
            name,
            path=Path(path) if path is not None else None,
            note=note,
            account=account or self._account,
        )

    def set_role(
        self, role: str, who: str, *, granted: bool, account: str | None = None
    ) -> tuple[str, Receipt]:
        """Grant (``granted``) or revoke ``role`` for ``who`` (an address or a local account).

        Returns:
            The address and the transaction's receipt.

        Raises:
            InputError: ``who`` is neither an address nor a local account.
            LedgerError: the contract refused (only the admin may; an unknown role).
        """
        from proml_cli.account import resolve_address

        address = resolve_address(self._context.state_dir, who)
        signer = self._context.signer(account or self._account)
        with self._context.ledger(signer) as ledger:
            change = ledger.grant_role if granted else ledger.revoke_role
            return address, change(role, address)

    def sync(self, *, account: str | None = None) -> list[dict[str, Any]]:
        """Anchor every record left in the journal; one result per entry."""
        from proml_cli.anchoring import sync

        return sync(self._context, account=account or self._account)

    # ------------------------------------------------------------------ gate

    def verify(
        self,
        path: str | Path,
        *,
        artefact: str | None = None,
        states: Sequence[str] = (),
        deep: bool = False,
    ) -> Verdict:
        """Check that the bytes at ``path`` are a recorded version in an accepted state.

        ``artefact`` defaults to the artefact whose declared path ``path`` is; ``states``
        defaults to the kind's consumable states on the ledger; ``deep`` repeats the checks
        for the whole upstream lineage. The answer is a :class:`Verdict`: a negative one is a
        value, not an exception (see :meth:`verify_or_raise`).

        Raises:
            InputError: no file at ``path``, no artefact for it, or a policy whose kind differs
                from the ledger's.
            BackendUnavailable: the chain is unreachable.
        """
        from proml_cli import history
        from proml_cli.content import hash_path
        from proml_cli.queries import which_artefact
        from proml_cli.verify import local_path_label, verify_content

        target = Path(path)
        if not target.exists():
            raise InputError(f"{target}: no such file or directory")
        policy = self.policy
        name = which_artefact(policy, target, artefact)
        cid_version = policy.storage.cid_version
        hashed = hash_path(target, cid_version=cid_version)
        store = self._context.store()
        with self._context.ledger() as ledger:
            return verify_content(
                path=local_path_label(target, self.root),
                sha256=hashed.sha256,
                cid=hashed.cid,
                cid_version=cid_version,
                artefact=name,
                ledger=ledger,
                history=history.view(ledger, strict=False),
                store=store,
                policy=policy,
                states=states,
                deep=deep,
            )

    def verify_or_raise(
        self,
        path: str | Path,
        *,
        artefact: str | None = None,
        states: Sequence[str] = (),
        deep: bool = False,
    ) -> Verdict:
        """:meth:`verify`, raising :class:`VerificationFailed` (with every reason) unless verified.

        Raises:
            VerificationFailed: the verdict is negative.
        """
        verdict = self.verify(path, artefact=artefact, states=states, deep=deep)
        if not verdict.verified:
            raise VerificationFailed(
                f"{verdict.path} is not verified as '{verdict.artefact}': {verdict.reasons[0]}"
                + (f" (and {len(verdict.reasons) - 1} more)" if len(verdict.reasons) > 1 else ""),
                verdict.reasons,
            )
        return verdict

    # ------------------------------------------------------------------ history

    @contextmanager
    def reader(self) -> Iterator[LedgerReader]:
        """The project's ledger, read-only, checked against ``proml.lock``; closed on exit."""
        with self._context.ledger() as ledger:
            yield ledger

    def history(self) -> History:
        """The whole history, every version checked against contract storage.

        Raises:
            LedgerError: the event index disagrees with the contract.
        """
        from proml_cli.history import load

        return load(self._context)

    def store(self) -> ContentStore:
        """The project's content store (read records and contents by CID; ``export_car``)."""
        return self._context.store()

    def record(self, cid: str) -> Record:
        """The provenance record ``cid``, checked against its CID and parsed into its model.

        Raises:
            ContentNotFoundError: the store does not hold it.
            ContentError: its bytes do not hash to ``cid``, or it is not a proml record.
        """
        from proml_cli.record import read_record

        store = self._context.store()
        store.check(cid)
        return read_record(store.cat(cid), cid=cid)

    def log(self, artefact: str | None = None, *, limit: int | None = None) -> list[LogEntry]:
        """Registrations and transitions, newest first (``proml log --json``'s entries).

        With ``limit`` only the newest ``limit`` steps are read, and only the versions they
        show are checked against the contract; records are read (for ``by``) only for the
        entries returned.

        Raises:
            InputError: ``artefact`` is not in the policy.
            LedgerError: what the index says disagrees with the contract.
        """
        from proml_cli import history

        if artefact is not None and artefact not in self.policy.artefacts:
            from proml_cli.suggest import did_you_mean

            raise InputError(
                f"unknown artefact '{artefact}'{did_you_mean(artefact, self.policy.artefacts)}"
            )
        store = self._context.store()
        with self._context.ledger() as ledger:
            if limit:
                seen = history.view(ledger)
                assert seen.source is not None  # noqa: S101 - a view has a source
                seen._want(seen.source.index.newest_steps(limit, artefact))
            else:
                seen = history.require_consistent(history.read(ledger))
            return history.log_rows(seen, artefact=artefact, limit=limit, store=store)

    def show(self, ref: str) -> VersionDetail | RecordDetail:
        """One version (by artefact name: its latest; or content CID) or one record, in full.

        Only the versions ``ref`` names, their inputs and their users are read and checked.

        Raises:
            InputError: nothing matches ``ref``.
            LedgerError: what the index says disagrees with the contract.
        """
        from proml_cli.history import view
        from proml_cli.queries import describe_ref

        store = self._context.store()
        with self._context.ledger() as ledger:
            return describe_ref(self.policy, view(ledger), store, ref)

    def status(self) -> list[ArtefactStatus]:
        """Each artefact's current file against its last recorded version."""
        from proml_cli.history import view
        from proml_cli.queries import artefact_status

        with self._context.ledger() as ledger:
            return artefact_status(self.policy, view(ledger))

    def roles(self) -> RoleHolders:
        """Who holds which role now, as contract storage says."""
        from proml_cli.history import read, require_consistent
        from proml_cli.queries import role_holders

        with self._context.ledger() as ledger:
            return role_holders(ledger, require_consistent(read(ledger)))


def _json_values(values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``values`` checked to be JSON a record can hold (string keys, finite numbers).

    Raises:
        InputError: a key that is not a string, a value JSON cannot hold, or NaN/infinity.
    """
    from proml_cli.record import canonical_bytes

    if not isinstance(values, Mapping):
        raise InputError(f"{what} must be a mapping of names to values, not {type(values)}")

    def check(value: Any, where: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{what} {where} is {value}: a record holds finite numbers only")
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InputError(f"{what} {where} has a key that is not a string: {key!r}")
                check(item, f"{where}.{key}" if where else key)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                check(item, f"{where}[{index}]")
        elif not isinstance(value, str | int | float | bool | type(None)):
            raise InputError(f"{what} {where} is a {type(value).__name__}, not a JSON value")

    check(values, "")
    copied: dict[str, Any] = json.loads(canonical_bytes(dict(values)))
    return copied


class StepRun:
    """One policy step run in-process, as a context manager or a decorator.

    On enter: the policy step is matched by name, every input it uses is checked (bytes and
    state, against the ledger) and the signer chosen; a failed check raises
    :class:`RefusedError` before the body runs. On a clean exit: the products are hashed and
    stored, the record written (the same format as ``proml run``, plus ``logged_params`` /
    ``logged_metrics`` when values were logged), journaled and anchored in one transaction;
    :attr:`outcome` says what happened. On an exception: nothing is recorded and the exception
    propagates.

    :meth:`log_params` and :meth:`log_metrics` may be called from any thread while the step
    runs. A ``StepRun`` runs once; as a decorator each call runs a fresh one.

    With the chain unreachable at exit the record is journaled (``outcome.journaled``; a
    warning is logged; ``Project.sync`` anchors it later); with ``require_anchor`` that raises
    :class:`BackendUnavailable` instead (the record stays journaled).
    """

    def __init__(
        self,
        name: str,
        *,
        project: Project | None = None,
        path: str | Path = ".",
        account: str | None = None,
        require_anchor: bool = False,
    ) -> None:
        self.name = name
        self.require_anchor = require_anchor
        self._project = project
        self._path = path
        self._account = account
        self._lock = threading.Lock()
        self._params: dict[str, Any] = {}
        self._metrics: dict[str, Any] = {}
        self._prepared: Prepared | None = None
        self._started: str | None = None
        self._token: contextvars.Token[StepRun | None] | None = None
        self._used = False
        #: What the clean exit recorded (None before it, or after an exception).
        self.outcome: RunOutcome | None = None

    def __repr__(self) -> str:
        return f"StepRun({self.name!r})"

    @property
    def params(self) -> dict[str, Any]:
        """The parameters logged so far (a copy)."""
        with self._lock:
            return dict(self._params)

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics logged so far (a copy)."""
        with self._lock:
            return dict(self._metrics)

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Add parameters to the record (a later value for a name replaces the earlier one).

        Raises:
            InputError: not JSON-representable, or the step is not running.
        """
        self._log(self._params, values, "params")

    def log_metrics(self, values: Mapping[str, Any]) -> None:
        """Add metrics to the record (a later value for a name replaces the earlier one).

        Raises:
            InputError: not JSON-representable, or the step is not running.
        """
        self._log(self._metrics, values, "metrics")

    def _log(self, into: dict[str, Any], values: Mapping[str, Any], what: str) -> None:
        checked = _json_values(values, what)
        with self._lock:
            if self._prepared is None or self.outcome is not None:
                raise InputError(f"step '{self.name}' is not running: nothing to log {what} to")
            into.update(checked)

    def __enter__(self) -> StepRun:
        from proml_cli.capture import prepare
        from proml_cli.record import utc_now

        if self._used:
            raise InputError(f"step '{self.name}' has run already: start a new one")
        self._used = True
        project = self._project or open_project(self._path, account=self._account)
        self._project = project
        self._prepared = prepare(
            project.context, (), step_name=self.name, account=self._account or project._account
        )
        self._started = utc_now()
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        from proml_cli.capture import record_run
        from proml_cli.record import utc_now

        if self._token is not None:
            try:
                _ACTIVE.reset(self._token)
            except ValueError:
                _ACTIVE.set(None)  # exited in another context (thread) than it was entered in
            self._token = None
        prepared, started, project = self._prepared, self._started, self._project
        if exc_type is not None or prepared is None or started is None or project is None:
            return  # nothing is recorded; the exception (if any) propagates
        ended = utc_now()
        with self._lock:
            logged = {"params": dict(self._params), "metrics": dict(self._metrics)}
        outcome = record_run(
            project.context,
            prepared,
            command=_command(),
            started=started,
            ended=ended,
            logged=logged,
        )
        with self._lock:
            self.outcome = outcome
        for message in outcome.messages:
            (logger.warning if outcome.journaled or outcome.deferred else logger.info)(message)
        if self.require_anchor:
            outcome.require_anchored(
                hint="anchor it with `proml sync` (or Project.sync) once the chain is reachable"
            )

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        """Run ``function`` as this step: each call is a fresh :class:`StepRun`."""

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with StepRun(self.name, project=self._project, path=self._path, account=self._account):
                return function(*args, **kwargs)

        return wrapper


def _command() -> list[str]:
    """How this interpreter was started, as typed (the record's ``command``)."""
    return list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])


def step(
    name: str,
    *,
    project: Project | None = None,
    path: str | Path = ".",
    account: str | None = None,
    require_anchor: bool = False,
) -> StepRun:
    """The policy step ``name`` run in-process, as a decorator or a ``with`` block.

    ``@proml.step("train")`` opens the project found from ``path`` (default: the working
    directory) when the function is called; ``project`` uses an opened one instead. Inside,
    :func:`log_params` / :func:`log_metrics` add to the running step's record.
    """
    return StepRun(name, project=project, path=path, account=account, require_anchor=require_anchor)


def current_step() -> StepRun:
    """The step running in this context (a ``with`` block or a decorated function).

    Raises:
        InputError: no step is running here.
    """
    running = _ACTIVE.get()
    if running is None:
        raise InputError("no proml step is running here", hint="use `with project.step(NAME):`")
    return running


def log_params(values: Mapping[str, Any]) -> None:
    """Add parameters to the running step's record (see :meth:`StepRun.log_params`)."""
    current_step().log_params(values)


def log_metrics(values: Mapping[str, Any]) -> None:
    """Add metrics to the running step's record (see :meth:`StepRun.log_metrics`)."""
    current_step().log_metrics(values)


def verify_or_raise(
    path: str | Path,
    *,
    artefact: str | None = None,
    states: Sequence[str] = (),
    deep: bool = False,
    project: Project | None = None,
) -> Verdict:
    """The line before ``load()``: the verdict if ``path`` is verified, else an exception.

    Without ``project``, the project is the one whose ``proml.yaml`` is in ``path``'s directory
    or above it.

    Raises:
        VerificationFailed: not verified (``reasons`` lists every failed check).
        InputError: no file, no project, or no artefact for ``path``.
    """
    if project is None:
        project = open_project(Path(path).resolve().parent)
    return project.verify_or_raise(path, artefact=artefact, states=states, deep=deep)
