"""The gate before consumption: is *this exact content* a recorded version in an accepted state?

Checks, numbered as they are reported:

1. the bytes at PATH are a registered version (of the named artefact, if one is given);
2. the content CID the ledger recorded equals the CID computed from the bytes;
3. the version's current state is accepted (``--state``, else the kind's consumable states);
4. every step of the version (registration and each transition) was made by an account that
   held an allowed role at that moment (replayed from the role events);
5. every record the ledger anchored for it is in the store, hashes to its CID and names it;
6. with ``deep``: checks 1 to 5 for every input, recursively (the whole upstream lineage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_cli.errors import ProMLError
from proml_cli.history import History, VersionHistory

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
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
            "sha256": f"sha256:{self.sha256}",
            "cid": self.cid,
            "kind": self.kind,
            "state": self.state,
            "reasons": self.reasons,
            "checked": self.checked,
            "lineage": self.lineage,
        }


def verify_content(
    *,
    path: str,
    sha256: str,
    cid: str,
    cid_version: int,
    history: History,
    store: ContentStore,
    policy: Policy | None,
    artefact: str | None = None,
    states: Sequence[str] = (),
    deep: bool = False,
) -> Verdict:
    """Run every check for content (``sha256``/``cid``) found at ``path``."""
    verdict = Verdict(path=path, artefact=artefact, sha256=sha256, cid=cid)
    candidates = history.with_digest(sha256)
    if artefact is not None:
        candidates = [v for v in candidates if v.artefact == artefact]
    if not candidates:
        which = f" of '{artefact}'" if artefact else ""
        reason = (
            f"1: the content (sha256:{sha256[:12]}) is not a recorded version{which}: "
            "it was never recorded, or it was modified"
        )
        known = history.of_artefact(artefact) if artefact else []
        if known:
            reason += f" (latest recorded: {known[-1].cid}, state '{known[-1].state}')"
        verdict.reasons.append(reason)
        return verdict
    version = candidates[-1]
    verdict.artefact = version.artefact
    verdict.kind = version.kind
    verdict.state = version.state
    verdict.checked.append("1: recorded version")
    _check_version(verdict, version, history, store, policy, states, cid, cid_version, label="")
    if deep:
        seen: set[tuple[str, str]] = {(version.artefact, version.digest)}
        _walk(verdict, version, history, store, policy, seen, depth=1)
    return verdict


def _accepted(
    policy: Policy | None, version: VersionHistory, states: Sequence[str]
) -> tuple[str, ...]:
    if states:
        return tuple(states)
    if policy is not None and version.kind in policy.kinds:
        return tuple(policy.kinds[version.kind].consumable)
    return ()


def _check_version(
    verdict: Verdict,
    version: VersionHistory,
    history: History,
    store: ContentStore,
    policy: Policy | None,
    states: Sequence[str],
    cid: str | None,
    cid_version: int,
    *,
    label: str,
) -> None:
    where = f" ({label})" if label else ""
    # 2. content CID
    if cid is not None and _cid_version(version.cid) == cid_version and version.cid != cid:
        verdict.reasons.append(
            f"2{where}: the ledger recorded CID {version.cid}, the bytes give {cid}"
        )
    else:
        verdict.checked.append(f"2{where}: content CID")
    # 3. state
    accepted = _accepted(policy, version, states)
    if version.state not in accepted:
        wanted = ", ".join(accepted) if accepted else "none configured"
        verdict.reasons.append(
            f"3{where}: '{version.artefact}' is in state '{version.state}', accepted: {wanted}"
        )
    else:
        verdict.checked.append(f"3{where}: state '{version.state}' accepted")
    # 4. authorisation of every step
    kind = history.kinds[version.kind]
    transitions = {t.name: t for t in kind.transitions}
    for step in version.steps:
        allowed = (
            kind.register_roles if step.action == "register" else transitions[step.action].roles
        )
        held = history.roles_at(step.actor, step.event)
        if not held.intersection(allowed):
            verdict.reasons.append(
                f"4{where}: '{step.action}' (block {step.event.block}) was made by "
                f"{step.actor}, who held none of {', '.join(allowed)}"
            )
    verdict.checked.append(f"4{where}: {len(version.steps)} step(s) authorised")
    # 5. records
    for step in version.steps:
        problem = _record_problem(store, step.record_cid, version)
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


def _walk(
    verdict: Verdict,
    version: VersionHistory,
    history: History,
    store: ContentStore,
    policy: Policy | None,
    seen: set[tuple[str, str]],
    depth: int,
) -> None:
    for artefact, digest in version.inputs:
        if (artefact, digest) in seen:
            continue
        seen.add((artefact, digest))
        upstream = history.versions.get((artefact, digest))
        label = f"input {artefact}@sha256:{digest[:12]}"
        if upstream is None:
            verdict.reasons.append(f"6 ({label}): not a registered version")
            continue
        verdict.lineage.append(
            {
                "artefact": artefact,
                "sha256": f"sha256:{digest}",
                "cid": upstream.cid,
                "state": upstream.state,
                "depth": depth,
            }
        )
        _check_version(verdict, upstream, history, store, policy, (), None, 1, label=label)
        _walk(verdict, upstream, history, store, policy, seen, depth + 1)


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
