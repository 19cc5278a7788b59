"""CycloneDX 1.6 ML-BOM: models and datasets as components, the lineage as dependencies.

Models are ``machine-learning-model`` components with a model card filled from the records
(the datasets used, with the parameters and metrics the runs captured); every other version is
a ``data`` component. Each carries its SHA-256, an ``ipfs://`` distribution reference and its
ledger state; the lineage is the ``dependencies`` graph and each component's
``pedigree.ancestors``. The serial number is derived from the content (a UUIDv5 of the
versions and their changes) and the timestamp is the newest change's block time, so the same
history gives the same bytes.
"""

from __future__ import annotations

import uuid
from typing import Any

from proml_cli.digest import prefixed
from proml_cli.export.facts import Facts, Version

SPEC_VERSION = "1.6"
SCHEMA = "http://cyclonedx.org/schema/bom-1.6.schema.json"


def bom(facts: Facts) -> dict[str, Any]:
    """The CycloneDX BOM of ``facts``."""
    components = [_component(facts, v) for v in facts.versions]
    dependencies = []
    for version in facts.versions:
        upstream = sorted({_ref(k) for k, _via in facts.materials_of(version) if facts.version(k)})
        dependencies.append({"ref": _ref(version.key), "dependsOn": upstream})
    seed = "\n".join(
        f"{v.ref} {c.tx_hash} {c.log_index}" for v in facts.versions for c in v.changes
    )
    metadata: dict[str, Any] = {
        "tools": {
            "components": [{"type": "application", "name": "proml", "version": facts.proml_version}]
        },
        "component": {
            "type": "application",
            "bom-ref": f"project:{facts.project}",
            "name": facts.project,
        },
        "properties": [
            {"name": "proml:chain", "value": facts.chain.caip2},
            {"name": "proml:ledger", "value": facts.chain.ledger},
            {"name": "proml:policy-digest", "value": facts.policy_digest},
        ],
    }
    newest = facts.last_time()
    if newest:
        metadata["timestamp"] = newest
    return {
        "$schema": SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": uuid.uuid5(uuid.NAMESPACE_URL, f"proml:{facts.project}\n{seed}").urn,
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
    }


def _ref(key: tuple[str, str]) -> str:
    return f"{key[0]}@{prefixed(key[1])}"


def _identity(version: Version) -> dict[str, Any]:
    return {
        "type": "machine-learning-model" if version.is_model else "data",
        "name": version.artefact,
        "version": version.cid,
        "hashes": [{"alg": "SHA-256", "content": version.sha256}],
    }


def _component(facts: Facts, version: Version) -> dict[str, Any]:
    component: dict[str, Any] = {"bom-ref": _ref(version.key), **_identity(version)}
    if version.description:
        component["description"] = version.description
    component["externalReferences"] = [
        {"type": "distribution", "url": f"ipfs://{version.cid}", "comment": "content CID"}
    ]
    registered = version.registered
    properties = [
        {"name": "proml:kind", "value": version.kind},
        {"name": "proml:state", "value": version.state},
        {"name": "proml:cid", "value": version.cid},
        {"name": "proml:registered-by", "value": registered.actor},
        {"name": "proml:registration-tx", "value": registered.tx_hash},
        {"name": "proml:record", "value": f"ipfs://{registered.record_cid}"},
    ]
    for change in version.changes[1:]:
        properties.append(
            {
                "name": f"proml:transition:{change.action}",
                "value": f"{change.source} -> {change.target} by {change.actor} "
                f"in {change.tx_hash} (block {change.block}, {change.time})",
            }
        )
    if version.path:
        properties.append({"name": "proml:path", "value": version.path})
    component["properties"] = properties
    ancestors = [facts.version(k) for k, _via in facts.materials_of(version)]
    if any(ancestors):
        component["pedigree"] = {
            "ancestors": [_identity(a) for a in ancestors if a is not None],
            "notes": _pedigree_note(facts, version),
        }
    if version.is_model:
        component["modelCard"] = _model_card(facts, version)
    else:
        component["data"] = [
            {
                "type": "dataset",
                "name": version.artefact,
                "contents": {"url": f"ipfs://{version.cid}"},
            }
        ]
    return component


def _pedigree_note(facts: Facts, version: Version) -> str:
    run = facts.run_of(version)
    registered = f"step '{run.record.step}'" if run else "a decision"
    parts = [
        f"{_ref(key)} ("
        + (f"input of {registered}" if via == "register" else f"used by {via}")
        + ")"
        for key, via in facts.materials_of(version)
    ]
    return "upstream versions: " + ", ".join(parts)


def _model_card(facts: Facts, version: Version) -> dict[str, Any]:
    datasets = sorted({_ref(k) for k, _via in facts.materials_of(version) if facts.version(k)})
    card: dict[str, Any] = {
        "modelParameters": {"datasets": [{"ref": ref} for ref in datasets]},
    }
    params: dict[str, Any] = {}
    metrics: list[dict[str, Any]] = []
    for change in version.changes:
        run = facts.runs.get(change.record_cid)
        if run is None:
            continue
        params.update(run.params)
        for name, value in run.metrics.items():
            metrics.append({"type": name, "value": str(value), "slice": run.record.step})
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    properties = [{"name": f"proml:param:{k}", "value": str(v)} for k, v in sorted(params.items())]
    if properties:
        card["properties"] = properties
    return card
