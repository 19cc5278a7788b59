"""SPDX 3.0.1 JSON-LD with AI and Dataset profile elements, built with spdx-python-model.

Models are ``ai_AIPackage`` elements (hyperparameters and metrics from the run records),
other versions ``dataset_DatasetPackage`` elements; each has its SHA-256 (``verifiedUsing``), its
``ipfs://`` download location and the account that registered it (``originatedBy``). A model
is ``trainedOn`` the inputs of the run that registered it and ``testedOn`` the inputs of the
runs that fired a transition on it (e.g. ``evaluate``); other derived versions are
``hasInput``-linked from their run's build. Element ids are IRIs derived from the project and
the versions' digests; ``created`` is the newest change's block time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import spdx_python_model.bindings.v3_0_1 as spdx

from proml_cli.export.facts import Facts, Version

SPEC_VERSION = "3.0.1"


def document(facts: Facts) -> dict[str, Any]:
    """The SPDX 3 JSON-LD document of ``facts`` (as the model's serializer writes it)."""
    base = f"urn:proml:{facts.project}:"
    created = _time(facts.last_time() or "1970-01-01T00:00:00Z")
    tool = spdx.Tool(spdxId=f"{base}tool/proml", name=f"proml {facts.proml_version}")
    info = spdx.CreationInfo(specVersion=SPEC_VERSION, created=created, createdUsing=[tool])
    agents = {
        address: spdx.Agent(
            spdxId=f"{base}account/{address}",
            name=address,
            description=f"account on {facts.chain.caip2}; roles: {', '.join(roles) or 'none'}",
            creationInfo=info,
        )
        for address, roles in facts.agents().items()
    }
    info.createdBy = [agents[a] for a in sorted(agents)] or [
        spdx.Agent(spdxId=f"{base}agent/proml", name="proml", creationInfo=info)
    ]
    tool.creationInfo = info
    packages = {v.key: _package(facts, v, base, info, agents) for v in facts.versions}
    relationships = []
    for version in facts.versions:
        relationships += _relationships(facts, version, base, info, packages)
    roots = [packages[v.key] for v in facts.focused]
    doc = spdx.SpdxDocument(
        spdxId=f"{base}document",
        name=f"{facts.project} provenance",
        creationInfo=info,
        profileConformance=[
            spdx.ProfileIdentifierType.core,
            spdx.ProfileIdentifierType.software,
            spdx.ProfileIdentifierType.ai,
            spdx.ProfileIdentifierType.dataset,
        ],
        rootElement=roots,
        element=[*agents.values(), tool, *packages.values(), *relationships],
    )
    objects = spdx.SHACLObjectSet([doc, tool, *agents.values(), *packages.values(), *relationships])
    data: dict[str, Any] = spdx.JSONLDSerializer().serialize_data(objects)
    return data


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _package(facts: Facts, version: Version, base: str, info: Any, agents: dict[str, Any]) -> Any:
    common: dict[str, Any] = {
        "spdxId": f"{base}version/{version.artefact}/{version.sha256}",
        "name": version.artefact,
        "creationInfo": info,
        "software_packageVersion": version.cid,
        "software_downloadLocation": f"ipfs://{version.cid}",
        "verifiedUsing": [spdx.Hash(algorithm=spdx.HashAlgorithm.sha256, hashValue=version.sha256)],
        "originatedBy": [agents[version.registered.actor]],
        "builtTime": _time(version.registered.time),
        "comment": f"kind {version.kind}, state {version.state} on {facts.chain.caip2} "
        f"ledger {facts.chain.ledger}",
    }
    if version.description:
        common["description"] = version.description
    if version.path:
        # A package has no file name in SPDX 3: the path in the project goes in the summary.
        common["summary"] = f"path in the project: {version.path}"
    if not version.is_model:
        return spdx.dataset_DatasetPackage(
            **common,
            software_primaryPurpose=spdx.software_SoftwarePurpose.data,
            dataset_datasetType=[spdx.dataset_DatasetType.other],
        )
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    for change in version.changes:
        run = facts.runs.get(change.record_cid)
        if run is not None:
            params.update(run.params)
            metrics.update(run.metrics)
    return spdx.ai_AIPackage(
        **common,
        software_primaryPurpose=spdx.software_SoftwarePurpose.model,
        ai_hyperparameter=[spdx.DictionaryEntry(key=k, value=str(v)) for k, v in params.items()],
        ai_metric=[spdx.DictionaryEntry(key=k, value=str(v)) for k, v in metrics.items()],
    )


def _relationships(
    facts: Facts, version: Version, base: str, info: Any, packages: dict[Any, Any]
) -> list[Any]:
    found = []
    by_type: dict[str, list[Any]] = {}
    for key, via in facts.uses_of(version):
        upstream = packages.get(key)
        if upstream is None:
            continue
        if version.is_model:
            kind = "trainedOn" if via == "register" else "testedOn"
        else:
            kind = "hasInput"
        if upstream not in by_type.setdefault(kind, []):
            by_type[kind].append(upstream)
    for kind in sorted(by_type):
        found.append(
            spdx.Relationship(
                spdxId=f"{base}relationship/{version.artefact}/{version.sha256}/{kind}",
                creationInfo=info,
                from_=packages[version.key],
                to=by_type[kind],
                relationshipType=getattr(spdx.RelationshipType, kind),
            )
        )
    return found
