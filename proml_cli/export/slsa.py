"""in-toto Statement v1 with a SLSA Provenance v1 predicate for a version, from its run record.

The subject is the version's file (SHA-256 digest, ``ipfs://CID`` URI); the predicate says how
it was built: the step, its command, params and policy digest (``buildDefinition``), the input
versions, captured params files and git commit (``resolvedDependencies``), and who ran it,
when, and where the ledger holds it (``runDetails``: builder, invocation id = the record CID,
start and finish, byproducts naming the record, the signing account, the chain, the ledger,
the transaction and the block).
"""

from __future__ import annotations

from typing import Any

from proml_cli.export.facts import Facts, Run, StateChange, Version
from proml_cli.record import FileEntry

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE_RUN = "https://proml.dev/slsa/run/v1"
BUILD_TYPE_DECISION = "https://proml.dev/slsa/decision/v1"
BUILDER_ID = "https://proml.dev/builder/v1"
MEDIA_TYPE_RECORD = "application/vnd.proml.record+json"


def subject(version: Version) -> dict[str, Any]:
    """The in-toto ResourceDescriptor of a version's content."""
    return {
        "name": version.path or version.artefact,
        "digest": {"sha256": version.sha256},
        "uri": f"ipfs://{version.cid}",
        "annotations": {"artefact": version.artefact, "kind": version.kind},
    }


def statements(facts: Facts) -> list[dict[str, Any]]:
    """One statement per version asked for (every version when the whole project was)."""
    return [statement(facts, v) for v in facts.focused]


def statement(facts: Facts, version: Version) -> dict[str, Any]:
    """The statement for ``version``: its registration's run as SLSA provenance."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject(version)],
        "predicateType": PROVENANCE_TYPE,
        "predicate": predicate(facts, version),
    }


def predicate(facts: Facts, version: Version) -> dict[str, Any]:
    """The SLSA Provenance v1 predicate of ``version``."""
    registered = version.registered
    run = facts.run_of(version)
    dependencies = [_input(facts, key) for key, _via in _registration_inputs(version, run)]
    if run is not None:
        record = run.record
        build: dict[str, Any] = {
            "buildType": BUILD_TYPE_RUN,
            "externalParameters": _external(facts, run),
            "internalParameters": {
                "record_type": record.TYPE,
                "tool_versions": run.tool_versions,
            },
        }
        dependencies += [_file("params", e) for e in _entries(record.params)]
        if run.git_commit:
            dependencies.append({"name": "git", "digest": {"gitCommit": run.git_commit}})
        metadata = {
            "invocationId": run.record_cid,
            "startedOn": record.started,
            "finishedOn": record.ended,
        }
    else:
        decision = facts.decisions.get(registered.record_cid)
        build = {
            "buildType": BUILD_TYPE_DECISION,
            "externalParameters": {
                "project": facts.project,
                "transition": decision.record.transition if decision else registered.action,
            },
        }
        metadata = {"invocationId": registered.record_cid}
    if dependencies:
        build["resolvedDependencies"] = dependencies
    byproducts = [_record(facts, registered.record_cid), _actor(facts, version)]
    byproducts += [_change(facts, version, c) for c in version.changes]
    return {
        "buildDefinition": build,
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"proml": facts.proml_version}},
            "metadata": metadata,
            "byproducts": byproducts,
        },
    }


def _registration_inputs(version: Version, run: Run | None) -> list[tuple[tuple[str, str], str]]:
    """The registration's inputs: the ledger's list, as the run's materials name them."""
    keys = list(version.inputs)
    if run is not None:
        for entry in run.record.materials:
            key = (entry.artefact or "", entry.sha256)
            if entry.artefact and key not in keys and key != version.key:
                keys.append(key)
    return [(key, "register") for key in keys]


def _external(facts: Facts, run: Run) -> dict[str, Any]:
    record = run.record
    external: dict[str, Any] = {
        "project": facts.project,
        "step": record.step,
        "command": list(record.command),
        "policy_digest": record.policy_digest,
    }
    if record.cwd is not None:
        external["cwd"] = record.cwd
    if run.params:
        external["params"] = dict(run.params)
    return external


def _input(facts: Facts, key: tuple[str, str]) -> dict[str, Any]:
    artefact, sha256 = key
    found = facts.version(key)
    descriptor: dict[str, Any] = {"name": artefact, "digest": {"sha256": sha256}}
    if found is not None:
        descriptor["uri"] = f"ipfs://{found.cid}"
        descriptor["annotations"] = {"artefact": artefact, "kind": found.kind}
    return descriptor


def _entries(items: tuple[dict[str, Any], ...]) -> list[FileEntry]:
    """Captured params/metrics entries that name content (``missing`` ones are skipped)."""
    return [FileEntry.from_json(e) for e in items if "cid" in e and "sha256" in e]


def _file(role: str, entry: FileEntry) -> dict[str, Any]:
    return {
        "name": entry.path,
        "digest": {"sha256": entry.sha256},
        "uri": f"ipfs://{entry.cid}",
        "annotations": {"role": role},
    }


def _record(facts: Facts, record_cid: str) -> dict[str, Any]:
    found = facts.runs.get(record_cid) or facts.decisions.get(record_cid)
    descriptor: dict[str, Any] = {
        "name": "record",
        "uri": f"ipfs://{record_cid}",
        "mediaType": MEDIA_TYPE_RECORD,
    }
    if found is not None:
        descriptor["digest"] = {"sha256": found.record_sha256}
    return descriptor


def _actor(facts: Facts, version: Version) -> dict[str, Any]:
    registered = version.registered
    return {
        "name": "actor",
        "uri": facts.chain.account_uri(registered.actor),
        "annotations": {"address": registered.actor, "roles": list(registered.roles)},
    }


def _change(facts: Facts, version: Version, change: StateChange) -> dict[str, Any]:
    annotations: dict[str, Any] = {
        "action": change.action,
        "to": change.target,
        "chain": facts.chain.caip2,
        "ledger": facts.chain.ledger,
        "transaction": change.tx_hash,
        "block": change.block,
        "log_index": change.log_index,
        "time": change.time,
        "actor": change.actor,
        "roles": list(change.roles),
        "record": change.record_cid,
    }
    if change.source is not None:
        annotations["from"] = change.source
    return {
        "name": f"ledger-event/{version.artefact}/{change.action}",
        "uri": facts.chain.tx_uri(change.tx_hash),
        "annotations": annotations,
    }
