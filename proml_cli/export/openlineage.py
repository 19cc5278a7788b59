"""OpenLineage RunEvents, one per recorded run, built with openlineage-python.

The job is the step (namespace: the project), the run id a UUIDv7 whose time is the run's start
and whose other bits come from the record CID (the same run always has the same id), the event
a ``COMPLETE`` at the run's end. Input and output datasets are the artefacts (namespace
``proml://<project>``, name: the artefact) with the standard ``version`` facet (the content
CID) and a ``proml`` facet carrying the digest, the CID, the kind and the state the version
was in when the run was anchored. The run's ``proml`` facet names the record, the account and
roles, and the transactions that anchored it. Human decisions are not runs: they are in the
other formats.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, ClassVar

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    dataset_version_dataset,
    job_type_job,
)
from openlineage.client.serde import Serde

from proml_cli.digest import prefixed
from proml_cli.export.facts import Facts, Version
from proml_cli.export.facts import Run as RunFact

SCHEMA_BASE = "https://proml.dev/spec/openlineage/"


def producer(facts: Facts) -> str:
    """The ``producer`` URI of every event and facet."""
    return f"https://proml.dev/proml/{facts.proml_version}"


@attr.define
class ProMLVersionDatasetFacet(DatasetFacet):
    """The ledger's view of a dataset version: digest, CID, kind and state at the event."""

    artefact: str
    sha256: str
    cid: str
    kind: str | None = attr.field(default=None)
    state: str | None = attr.field(default=None)

    _additional_skip_redact: ClassVar[list[str]] = ["artefact", "sha256", "cid", "kind", "state"]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "ProMLVersionDatasetFacet.json#/$defs/ProMLVersionDatasetFacet"


@attr.define
class ProMLRunFacet(RunFacet):
    """The run's record and where the ledger anchored it."""

    record: str
    recordSha256: str  # noqa: N815 - OpenLineage facets use camelCase keys
    actor: str
    roles: list[str]
    chain: str
    ledger: str
    transactions: list[str]
    policyDigest: str  # noqa: N815 - OpenLineage facets use camelCase keys

    _additional_skip_redact: ClassVar[list[str]] = ["record", "actor", "transactions"]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "ProMLRunFacet.json#/$defs/ProMLRunFacet"


def events(facts: Facts) -> list[dict[str, Any]]:
    """One RunEvent (as JSON data) per run in scope, in the order the chain anchored them."""
    ordered = sorted(facts.runs.values(), key=lambda r: _anchor(facts, r))
    return [Serde.to_dict(event(facts, run)) for run in ordered]


def _anchor(facts: Facts, run: RunFact) -> tuple[int, int, str]:
    changes = facts.changes_of(run.record_cid)
    if not changes:
        return (0, 0, run.record_cid)
    first = changes[0][1]
    return (first.block, first.log_index, run.record_cid)


def run_id(run: RunFact) -> str:
    """A UUIDv7 for the run: its start time in milliseconds, then bits of the record's CID."""
    started = datetime.fromisoformat(run.record.started.replace("Z", "+00:00"))
    millis = int(started.timestamp() * 1000) & ((1 << 48) - 1)
    rest = int.from_bytes(hashlib.sha256(run.record_cid.encode()).digest()[:10], "big")
    value = (millis << 80) | rest
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def event(facts: Facts, run: RunFact) -> RunEvent:
    """The RunEvent of one run."""
    record = run.record
    made = producer(facts)
    changes = facts.changes_of(run.record_cid)
    # The states the versions were in once every change this record anchors was made.
    anchor = changes[-1][1] if changes else None
    position = (anchor.block, anchor.log_index) if anchor else (0, 0)
    actor_roles = sorted({r for _v, c in changes for r in c.roles})
    run_facet = ProMLRunFacet(
        record=f"ipfs://{run.record_cid}",
        recordSha256=prefixed(run.record_sha256),
        actor=record.actor,
        roles=actor_roles,
        chain=facts.chain.caip2,
        ledger=facts.chain.ledger,
        transactions=sorted({c.tx_hash for _v, c in changes}),
        policyDigest=record.policy_digest,
        producer=made,
    )
    job_facet = job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="PROML", jobType="STEP", producer=made
    )
    inputs = [
        InputDataset(
            namespace=f"proml://{facts.project}",
            name=e.artefact,
            facets=_facets(facts, (e.artefact, e.sha256), e.cid, position, made),
        )
        for e in record.materials
        if e.artefact
    ]
    outputs = [
        OutputDataset(
            namespace=f"proml://{facts.project}",
            name=e.artefact,
            facets=_facets(facts, (e.artefact, e.sha256), e.cid, position, made),
        )
        for e in record.products
        if e.artefact
    ]
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=record.ended,
        run=Run(runId=run_id(run), facets={"proml": run_facet}),
        job=Job(namespace=facts.project, name=record.step, facets={"jobType": job_facet}),
        inputs=inputs,
        outputs=outputs,
        producer=made,
    )


def _facets(
    facts: Facts, key: tuple[str, str], cid: str, position: tuple[int, int], made: str
) -> dict[str, DatasetFacet]:
    version: Version | None = facts.version(key)
    state = version.state_at(*position) if version is not None else None
    return {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=cid, producer=made
        ),
        "proml": ProMLVersionDatasetFacet(
            artefact=key[0],
            sha256=prefixed(key[1]),
            cid=cid,
            kind=version.kind if version is not None else None,
            state=state,
            producer=made,
        ),
    }
