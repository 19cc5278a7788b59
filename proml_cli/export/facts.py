"""The facts every export is written from: versions, runs, decisions, state changes, accounts.

They are gathered once from the public API (the checked history, the records in the content
store, the project's chain and ledger) into frozen values, so each format module is a pure
function of them: same history, same facts, same bytes. Nothing secret is gathered: no key,
no password, no environment variable; of a record's ``environment`` only the proml and Python
versions are kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from proml_cli.digest import bare, prefixed
from proml_cli.errors import InputError

if TYPE_CHECKING:
    from proml_cli.api import Project
    from proml_cli.content import ContentStore
    from proml_cli.history import History
    from proml_cli.policy import Policy
    from proml_cli.record import DecisionRecord, RunRecord

#: Artefact or kind names that make a version a model (CycloneDX/SPDX), unless told otherwise.
MODEL_WORDS = (
    "model",
    "classifier",
    "regressor",
    "estimator",
    "weights",
    "checkpoint",
    "network",
    "predictor",
)

#: Params and metrics files larger than this are not read for their values.
VALUES_LIMIT = 1 << 20

VersionKey = tuple[str, str]


@dataclass(frozen=True)
class ChainRef:
    """Where the history is anchored: the chain (EIP-155 id) and the ledger contract."""

    chain_id: int
    ledger: str

    @property
    def caip2(self) -> str:
        """The chain as a CAIP-2 id (``eip155:<chain id>``)."""
        return f"eip155:{self.chain_id}"

    def account_uri(self, address: str) -> str:
        """An account on this chain as a DID (``did:pkh:eip155:<chain>:<address>``)."""
        return f"did:pkh:{self.caip2}:{address}"

    def tx_uri(self, tx_hash: str) -> str:
        """A transaction on this chain (CAIP-2 chain, then the hash)."""
        return f"{self.caip2}:tx:{tx_hash}"


@dataclass(frozen=True)
class StateChange:
    """One anchored step of a version: its registration or a transition.

    Attributes:
        action: ``register`` or the transition's name.
        source: the state before (None for a registration); target: the state after.
        actor: the signing address; roles: the roles the contract checked for it.
        record_cid: the record anchored with it (a run's or a decision's).
        tx_hash, block, log_index, time: where and when the chain holds it (RFC 3339 UTC).
    """

    action: str
    source: str | None
    target: str
    actor: str
    roles: tuple[str, ...]
    record_cid: str
    tx_hash: str
    block: int
    log_index: int
    time: str


@dataclass(frozen=True)
class Version:
    """One artefact version as the ledger holds it.

    Attributes:
        artefact, kind: names from the ledger; path, description: from the policy.
        sha256: bare hex; cid: the content CID.
        inputs: the versions its registration names as inputs.
        changes: its state changes in chain order (the first is the registration).
        is_model: whether model-shaped formats (CycloneDX, SPDX AI) call it a model.
    """

    artefact: str
    kind: str
    sha256: str
    cid: str
    path: str | None
    description: str | None
    inputs: tuple[VersionKey, ...]
    changes: tuple[StateChange, ...]
    is_model: bool = False

    @property
    def key(self) -> VersionKey:
        """``(artefact, sha256)``: the ledger's key of the version."""
        return (self.artefact, self.sha256)

    @property
    def ref(self) -> str:
        """``artefact@sha256:<hex>``: a stable name for the version."""
        return f"{self.artefact}@{prefixed(self.sha256)}"

    @property
    def state(self) -> str:
        """The state after its last change."""
        return self.changes[-1].target

    @property
    def registered(self) -> StateChange:
        """Its registration."""
        return self.changes[0]

    def state_at(self, block: int, log_index: int) -> str | None:
        """The state right after chain position (block, log_index); None before registration."""
        state = None
        for change in self.changes:
            if (change.block, change.log_index) <= (block, log_index):
                state = change.target
        return state


@dataclass(frozen=True)
class Run:
    """A step's run, from its record (checked against its CID).

    Attributes:
        record_cid, record_sha256: the record's CID and the SHA-256 of its bytes.
        record: the parsed run record.
        params, metrics: the values read from the captured params/metrics files (flattened,
            dotted keys) and logged in-process; empty when none could be read.
    """

    record_cid: str
    record_sha256: str
    record: RunRecord
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def git_commit(self) -> str | None:
        """The git commit the record names, if any."""
        git = self.record.extra.get("git")
        if isinstance(git, Mapping) and isinstance(git.get("commit"), str):
            return str(git["commit"])
        return None

    @property
    def tool_versions(self) -> dict[str, str]:
        """The proml and Python versions the record names (nothing else of its environment)."""
        environment = self.record.extra.get("environment")
        if not isinstance(environment, Mapping):
            return {}
        return {k: str(environment[k]) for k in ("proml", "python") if environment.get(k)}


@dataclass(frozen=True)
class Decision:
    """A human decision (a transition fired by ``proml transition``), from its record."""

    record_cid: str
    record_sha256: str
    record: DecisionRecord


@dataclass(frozen=True)
class Facts:
    """Everything an export says, in chain order; ``focus`` is what was asked for.

    Attributes:
        project: the policy's project name; policy_digest: its digest (``sha256:<hex>``).
        chain: the chain and ledger.
        versions: the versions in scope, in registration order.
        runs, decisions: the records anchored with their changes, by record CID.
        focus: the versions asked for (empty: the whole project).
        proml_version: the version of proml writing the export.
    """

    project: str
    policy_digest: str
    chain: ChainRef
    versions: tuple[Version, ...]
    runs: Mapping[str, Run]
    decisions: Mapping[str, Decision]
    focus: tuple[VersionKey, ...] = ()
    proml_version: str = "0"

    def version(self, key: VersionKey) -> Version | None:
        """The version with ledger key ``key``, if in scope."""
        return next((v for v in self.versions if v.key == key), None)

    @property
    def focused(self) -> tuple[Version, ...]:
        """The versions asked for (every version when the whole project was)."""
        if not self.focus:
            return self.versions
        return tuple(v for v in self.versions if v.key in self.focus)

    def agents(self) -> dict[str, tuple[str, ...]]:
        """Each signing address to the roles it acted in, sorted by address."""
        roles: dict[str, set[str]] = {}
        for version in self.versions:
            for change in version.changes:
                roles.setdefault(change.actor, set()).update(change.roles)
        return {a: tuple(sorted(roles[a])) for a in sorted(roles, key=str.lower)}

    def changes_of(self, record_cid: str) -> list[tuple[Version, StateChange]]:
        """The state changes (with their version) anchored with record ``record_cid``."""
        found = [(v, c) for v in self.versions for c in v.changes if c.record_cid == record_cid]
        return sorted(found, key=lambda pair: (pair[1].block, pair[1].log_index))

    def run_of(self, version: Version) -> Run | None:
        """The run whose record registered ``version`` (None if a decision did, or unread)."""
        return self.runs.get(version.registered.record_cid)

    def materials_of(self, version: Version) -> list[tuple[VersionKey, str]]:
        """Every input of the version's history: (key, the action whose run used it).

        The registration's inputs, then the materials of each run that fired a transition on
        it (e.g. the test set an ``evaluate`` read), as ``verify --deep`` walks them.
        """
        found: dict[VersionKey, str] = dict.fromkeys(version.inputs, "register")
        for change in version.changes:
            run = self.runs.get(change.record_cid)
            if run is None:
                continue
            for entry in run.record.materials:
                key = (entry.artefact or "", entry.sha256)
                if entry.artefact and key != version.key:
                    found.setdefault(key, change.action)
        return list(found.items())

    def uses_of(self, version: Version) -> list[tuple[VersionKey, str]]:
        """Like :meth:`materials_of`, but a version used by several actions once per action."""
        found: list[tuple[VersionKey, str]] = [(key, "register") for key in version.inputs]
        for change in version.changes:
            run = self.runs.get(change.record_cid)
            for entry in run.record.materials if run is not None else ():
                use = ((entry.artefact or "", entry.sha256), change.action)
                if entry.artefact and use[0] != version.key and use not in found:
                    found.append(use)
        return found

    def last_time(self) -> str | None:
        """The time of the newest state change in scope (a deterministic document time)."""
        times = [c.time for v in self.versions for c in v.changes]
        return max(times) if times else None


def is_model_name(artefact: str, kind: str) -> bool:
    """Whether an artefact (or its kind) is named like a model (see :data:`MODEL_WORDS`)."""
    text = f"{artefact} {kind}".lower()
    return any(word in text for word in MODEL_WORDS)


def gather(project: Project, *, models: Iterable[str] | None = None) -> Facts:
    """The facts of the whole project, read once from its ledger and content store.

    ``models`` names the artefacts that are models (default: named like one, see
    :func:`is_model_name`).

    Raises:
        LedgerError: the event index disagrees with the contract.
        ContentError: a record anchored on the ledger is missing from the store or damaged.
    """
    from proml_cli import __version__

    context = project.context
    state = context.state()
    return collect(
        history=project.history(),
        store=project.store(),
        policy=project.policy,
        chain=ChainRef(state.chain_id, state.ledger),
        models=models,
        proml_version=__version__,
    )


def collect(
    *,
    history: History,
    store: ContentStore,
    policy: Policy,
    chain: ChainRef,
    models: Iterable[str] | None = None,
    proml_version: str = "0",
) -> Facts:
    """The facts of ``history`` (see :func:`gather`; this is its pure part, for tests).

    Raises:
        ContentError: a record anchored on the ledger is missing from the store or damaged.
    """
    from proml_cli.history import require_consistent
    from proml_cli.record import RunRecord, from_timestamp, read_record

    require_consistent(history)
    chosen = set(models) if models is not None else None
    versions = []
    for v in history.versions.values():
        declared = policy.artefacts.get(v.artefact)
        changes = tuple(
            StateChange(
                action=s.action,
                source=s.source,
                target=s.target,
                actor=s.actor,
                roles=tuple(s.roles),
                record_cid=s.record_cid,
                tx_hash=s.event.tx_hash,
                block=s.event.block,
                log_index=s.event.log_index,
                time=from_timestamp(s.event.timestamp),
            )
            for s in v.steps
        )
        versions.append(
            Version(
                artefact=v.artefact,
                kind=v.kind,
                sha256=v.digest,
                cid=v.cid,
                path=declared.path if declared else None,
                description=declared.description if declared else None,
                inputs=tuple(v.inputs),
                changes=changes,
                is_model=(
                    v.artefact in chosen
                    if chosen is not None
                    else is_model_name(v.artefact, v.kind)
                ),
            )
        )
    versions.sort(key=lambda v: (v.registered.block, v.registered.log_index))
    runs: dict[str, Run] = {}
    decisions: dict[str, Decision] = {}
    for cid in sorted({c.record_cid for v in versions for c in v.changes}):
        data = store.cat(cid)
        record = read_record(data, cid=cid)
        digest = hashlib.sha256(data).hexdigest()
        if isinstance(record, RunRecord):
            runs[cid] = Run(
                cid,
                digest,
                record,
                params={**_values(store, record.params), **_flat(record.logged_params)},
                metrics={**_values(store, record.metrics), **_flat(record.logged_metrics)},
            )
        else:
            decisions[cid] = Decision(cid, digest, record)
    return Facts(
        project=policy.project,
        policy_digest=prefixed(bare(policy.digest)),
        chain=chain,
        versions=tuple(versions),
        runs=runs,
        decisions=decisions,
        proml_version=proml_version,
    )


def select(facts: Facts, ref: str | None, *, deep: bool = False) -> Facts:
    """The facts for ``ref`` (``ARTEFACT[@VERSION]``), or all of them when ``ref`` is None.

    VERSION is a content CID, ``sha256:<hex>`` or a unique prefix of the hex (default: the
    artefact's latest version). The scope is the version and its direct inputs, or with
    ``deep`` its whole upstream lineage (every input of every run in its history, recursively).

    Raises:
        InputError: unknown artefact, no such version, or an ambiguous prefix.
    """
    if ref is None:
        return facts
    focus = resolve(facts, ref)
    scope = {focus.key}
    frontier = [focus]
    while frontier:
        version = frontier.pop()
        for key, _via in facts.materials_of(version):
            upstream = facts.version(key)
            if upstream is None or key in scope:
                continue
            scope.add(key)
            if deep:
                frontier.append(upstream)
    kept = tuple(v for v in facts.versions if v.key in scope)
    cids = {c.record_cid for v in kept for c in v.changes}
    return replace(
        facts,
        versions=kept,
        runs={k: r for k, r in facts.runs.items() if k in cids},
        decisions={k: d for k, d in facts.decisions.items() if k in cids},
        focus=(focus.key,),
    )


def resolve(facts: Facts, ref: str) -> Version:
    """The version ``ARTEFACT[@VERSION]`` names (see :func:`select`).

    Raises:
        InputError: unknown artefact, no such version, or an ambiguous prefix.
    """
    artefact, _, wanted = ref.partition("@")
    candidates = [v for v in facts.versions if v.artefact == artefact]
    if not candidates:
        from proml_cli.suggest import did_you_mean

        names = sorted({v.artefact for v in facts.versions})
        raise InputError(
            f"'{artefact}' has no recorded version{did_you_mean(artefact, names)}",
            hint="`proml log` lists every recorded version",
        )
    if not wanted:
        return candidates[-1]
    hex_prefix = bare(wanted).lower()
    matches = [v for v in candidates if wanted in (v.cid, prefixed(v.sha256))]
    if not matches and len(hex_prefix) >= 6:
        matches = [v for v in candidates if v.sha256.startswith(hex_prefix)]
    if len(matches) == 1:
        return matches[0]
    what = "matches several versions" if matches else "is not a recorded version"
    raise InputError(
        f"'{wanted}' {what} of '{artefact}'",
        hint=f"`proml log` lists the versions of '{artefact}' (give a CID or sha256:<hex>)",
    )


def _values(store: ContentStore, entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The flattened values of captured JSON/YAML files; files that do not parse are skipped."""
    import yaml

    from proml_cli.errors import ProMLError

    found: dict[str, Any] = {}
    for entry in entries:
        cid, path = entry.get("cid"), str(entry.get("path", ""))
        if not isinstance(cid, str) or int(entry.get("size", 0)) > VALUES_LIMIT:
            continue
        try:
            text = store.cat(cid).decode("utf-8")
            document = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (ProMLError, OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
            continue
        if isinstance(document, Mapping):
            found.update(_flat(document))
    return found


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; only scalar values (str, int, float, bool) kept."""
    flat: dict[str, Any] = {}
    for key in sorted(values, key=str):
        value = values[key]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{name}."))
        elif isinstance(value, str | int | float | bool):
            flat[name] = value
    return flat
