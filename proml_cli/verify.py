"""The gate before consumption: is *this exact content* a recorded version in an accepted state?

Every answer comes from the contract: its storage says whether the version exists, its kind,
state, number of steps and step-chain head; the kind's rules (states, transitions, roles,
consumable states) are read from storage too. The events read for the version (from a node, or
the embedded chain's local index) are used only once they recompute that head, so an index
with rows added, removed or edited is reported, never believed (see :mod:`proml_cli.history`).

Checks, numbered as they are reported:

1. the bytes at PATH are a registered version of the artefact (contract storage), and the
   version's events match the contract's step-chain head;
2. the content CID the ledger recorded equals the CID computed from the bytes;
3. the version's current state is accepted (``--state``, else the kind's consumable states as
   the ledger defines them);
4. every step (registration and each transition) names the roles that allowed it, as the
   contract checked them when it was made (no replay of role events);
5. every record the ledger anchored for it is in the store, hashes to its CID and names it;
6. with ``deep``: checks 1 to 5 for every input of every record in the version's history (the
   registration's run and every transition's run, e.g. the test set an ``evaluate`` used),
   recursively.

A policy that defines the version's kind differently from the ledger is refused before any
check (exit 2, see :mod:`proml_cli.consistency`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_cli.digest import bare, prefixed
from proml_cli.errors import ProMLError
from proml_cli.history import TAMPERED, History, VersionHistory

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.ledger import Kind, Ledger, VersionState
    from proml_cli.policy import Policy


@dataclass
class Verdict:
    """The answer for one path: ``verified`` and the reason for every failed check."""

    path: str
    artefact: str | None
    sha256: str
    cid: str
    state: str | None = None
    kind: str | None = None
    reasons: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """True when no check failed."""
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` shape."""
        return {
            "verified": self.verified,
            "path": self.path,
            "artefact": self.artefact,
            "sha256": prefixed(self.sha256),
            "cid": self.cid,
            "kind": self.kind,
            "state": self.state,
            "reasons": self.reasons,
            "checked": self.checked,
            "lineage": self.lineage,
        }


@dataclass
class _Gate:
    """What every check reads: the contract (storage), the checked history, the store."""

    ledger: Ledger
    history: History
    store: ContentStore
    policy: Policy | None


def verify_content(
    *,
    path: str,
    sha256: str,
    cid: str,
    cid_version: int,
    artefact: str,
    ledger: Ledger,
    history: History,
    store: ContentStore,
    policy: Policy | None,
    states: Sequence[str] = (),
    deep: bool = False,
) -> Verdict:
    """Run every check for content (``sha256``/``cid``) found at ``path``, as ``artefact``.

    ``history`` is :func:`proml_cli.history.read` of the same ``ledger``.

    Raises:
        InputError: the policy defines the version's kind differently from the ledger.
    """
    from proml_cli.ledger import VersionRef

    gate = _Gate(ledger, history, store, policy)
    verdict = Verdict(path=path, artefact=artefact, sha256=sha256, cid=cid)
    onchain = ledger.version(VersionRef(artefact, sha256))
    if onchain is None:
        verdict.reasons.append(_not_recorded(gate, artefact, sha256))
        return verdict
    verdict.kind = onchain.kind
    verdict.state = onchain.state
    version = _authentic(gate, verdict, onchain, label="")
    if version is None:
        return verdict
    _check_version(verdict, gate, version, states, cid, cid_version, label="")
    if deep:
        _walk(verdict, gate, version, {(version.artefact, version.digest)}, depth=1)
    return verdict


def _not_recorded(gate: _Gate, artefact: str, sha256: str) -> str:
    """Check 1's reason for bytes the contract does not know as a version of ``artefact``."""
    from proml_cli.ledger import VersionRef

    reason = (
        f"1: the content (sha256:{sha256[:12]}) is not a recorded version of '{artefact}': "
        "it was never recorded, or it was modified"
    )
    others = []
    names = list(gate.policy.artefacts) if gate.policy is not None else []
    for other in names:
        if other == artefact:
            continue
        found = gate.ledger.version(VersionRef(other, sha256))
        if found is not None:
            others.append(f"'{other}' (state '{found.state}')")
    if others:
        return (
            f"1: the content (sha256:{sha256[:12]}) is a recorded version of "
            f"{', '.join(others)}, not of '{artefact}'"
        )
    if gate.history.get(artefact, sha256) is not None:
        return reason + f"; the local event index lists it, the contract does not: {TAMPERED}"
    latest = gate.history.latest(artefact)
    if latest is not None and not latest.problem:
        reason += f" (latest recorded: {latest.cid}, state '{latest.state}')"
    return reason


def _authentic(
    gate: _Gate, verdict: Verdict, onchain: VersionState, *, label: str
) -> VersionHistory | None:
    """The version's history if its events match the contract; else a check-1 reason."""
    where = f" ({label})" if label else ""
    number = "6" if label else "1"
    version = gate.history.get(onchain.artefact, onchain.digest)
    if version is None:
        verdict.reasons.append(
            f"{number}{where}: the contract records '{onchain.artefact}' "
            f"sha256:{onchain.digest[:12]} ({onchain.steps} step(s), state '{onchain.state}'), "
            f"the local event index has none of its steps: {TAMPERED}"
        )
        return None
    if version.problem:
        verdict.reasons.append(
            f"{number}{where}: history of '{onchain.artefact}' sha256:{onchain.digest[:12]} "
            f"does not match the contract: {version.problem}"
        )
        return None
    verdict.checked.append(
        f"{number}{where}: recorded version, {len(version.steps)} step(s) matching the contract"
    )
    return version


def _require_same_kind(gate: _Gate, kind: Kind) -> None:
    if gate.policy is not None:
        from proml_cli.consistency import require_same_kind

        require_same_kind(gate.policy, kind)


def _check_version(
    verdict: Verdict,
    gate: _Gate,
    version: VersionHistory,
    states: Sequence[str],
    cid: str | None,
    cid_version: int,
    *,
    label: str,
) -> None:
    where = f" ({label})" if label else ""
    kind = gate.history.kinds[version.kind]
    _require_same_kind(gate, kind)
    # 2. content CID
    if cid is not None and _cid_version(version.cid) == cid_version and version.cid != cid:
        verdict.reasons.append(
            f"2{where}: the ledger recorded CID {version.cid}, the bytes give {cid}"
        )
    else:
        verdict.checked.append(f"2{where}: content CID")
    # 3. state, against the consumer's --state or the ledger's consumable states
    accepted = tuple(states) or kind.consumable
    if version.state not in accepted:
        wanted = ", ".join(accepted) if accepted else "none configured"
        verdict.reasons.append(
            f"3{where}: '{version.artefact}' is in state '{version.state}', accepted: {wanted}"
        )
    else:
        verdict.checked.append(f"3{where}: state '{version.state}' accepted")
    # 4. authorisation of every step: the roles the contract checked, carried by the event
    transitions = kind.transitions
    for step in version.steps:
        if step.action == "register":
            allowed: tuple[str, ...] = kind.register
        else:
            allowed = transitions[step.action].roles if step.action in transitions else ()
        if not step.roles or not set(step.roles) <= set(allowed):
            verdict.reasons.append(
                f"4{where}: '{step.action}' (block {step.event.block}) by {step.actor} names "
                f"roles [{', '.join(step.roles)}], allowed: {', '.join(allowed) or 'none'}"
            )
    verdict.checked.append(f"4{where}: {len(version.steps)} step(s) authorised")
    # 5. records
    for step in version.steps:
        problem = _record_problem(gate.store, step.record_cid, version)
        if problem:
            verdict.reasons.append(
                f"5{where}: record {step.record_cid} of '{step.action}': {problem}"
            )
    verdict.checked.append(f"5{where}: records checked")


def _record_problem(store: ContentStore, record_cid: str, version: VersionHistory) -> str | None:
    from proml_cli.record import parse_record, versions_in

    try:
        if not store.has(record_cid):
            return "missing from the content store"
        store.check(record_cid)
        document = parse_record(store.cat(record_cid), cid=record_cid)
    except ProMLError as exc:
        return exc.diagnosis
    if (version.artefact, version.digest) not in versions_in(document):
        return "does not name this version"
    return None


def _inputs(gate: _Gate, version: VersionHistory) -> list[tuple[str, str, str]]:
    """(artefact, digest, step) for every input of every record in the version's history.

    The registration's inputs are the event's (covered by the head); a transition fired by a
    run adds that run's materials, read from its record (which check 5 proves is the anchored
    one). A record that cannot be read is check 5's finding already.
    """
    from proml_cli.record import parse_record

    found: dict[tuple[str, str], str] = {}
    for artefact, digest in version.inputs:
        found.setdefault((artefact, digest), "register")
    for step in version.steps:
        try:
            gate.store.check(step.record_cid)
            document = parse_record(gate.store.cat(step.record_cid), cid=step.record_cid)
        except ProMLError:
            continue
        for entry in document.get("materials", []):
            if isinstance(entry, dict) and entry.get("artefact"):
                key = (str(entry["artefact"]), bare(str(entry.get("sha256", ""))))
                if key != (version.artefact, version.digest):
                    found.setdefault(key, step.action)
    return [(a, d, step) for (a, d), step in found.items()]


def _walk(
    verdict: Verdict,
    gate: _Gate,
    version: VersionHistory,
    seen: set[tuple[str, str]],
    depth: int,
) -> None:
    from proml_cli.ledger import VersionRef

    for artefact, digest, via in _inputs(gate, version):
        if (artefact, digest) in seen:
            continue
        seen.add((artefact, digest))
        if artefact == "?":
            # The head covers the input's key, but no registration in the events hashes to it.
            verdict.reasons.append(
                f"6 (an input of '{version.artefact}' {via}): no registration in the local "
                f"event index has its key: {TAMPERED}"
            )
            continue
        label = f"input {artefact}@sha256:{digest[:12]} of '{version.artefact}' {via}"
        onchain = None
        if len(digest) == 64:
            onchain = gate.ledger.version(VersionRef(artefact, digest))
        if onchain is None:
            verdict.reasons.append(f"6 ({label}): not a registered version")
            continue
        upstream = _authentic(gate, verdict, onchain, label=label)
        if upstream is None:
            continue
        verdict.lineage.append(
            {
                "artefact": artefact,
                "sha256": prefixed(digest),
                "cid": upstream.cid,
                "state": upstream.state,
                "depth": depth,
                "via": via,
            }
        )
        _check_version(verdict, gate, upstream, (), None, 1, label=label)
        _walk(verdict, gate, upstream, seen, depth + 1)


def _cid_version(cid: str) -> int:
    return 0 if cid.startswith("Qm") else 1


def local_path_label(path: Path, root: Path | None) -> str:
    """``path`` relative to the project root when inside it (for reports)."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
