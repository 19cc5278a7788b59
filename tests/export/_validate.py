"""Reading each export back with the format's own maintained library, offline and strictly."""

from __future__ import annotations

import json
from typing import Any


def in_toto_statement(document: dict[str, Any]) -> Any:
    """Parse a Statement v1 into in-toto-attestation's protobufs and run its validation.

    ``ignore_unknown_fields=False``: a field the spec does not define is an error; the
    predicate is parsed into its own message type (SLSA Provenance v1 or VSA v1) as well.
    """
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    pb = json_format.ParseDict(document, statement_pb2.Statement(), ignore_unknown_fields=False)
    statement = Statement.copy_from_pb(pb)
    statement.validate()
    predicates = {
        "https://slsa.dev/provenance/v1": provenance_pb2.Provenance,
        "https://slsa.dev/verification_summary/v1": vsa_pb2.VerificationSummary,
    }
    message = predicates[document["predicateType"]]()
    predicate = dict(document["predicate"])
    if document["predicateType"] == "https://slsa.dev/verification_summary/v1":
        # The spec makes verifiedLevels an array; the library's VSA v1 proto still has a single
        # string (https://github.com/in-toto/attestation/issues/425): each level must parse.
        levels = predicate.pop("verifiedLevels")
        assert isinstance(levels, list), levels
        assert levels
        for level in levels:
            json_format.ParseDict({"verifiedLevels": level}, vsa_pb2.VerificationSummary())
    json_format.ParseDict(predicate, message, ignore_unknown_fields=False)
    if document["predicateType"] == "https://slsa.dev/provenance/v1":
        for dependency in message.build_definition.resolved_dependencies:
            ResourceDescriptor.copy_from_pb(dependency).validate()
        for byproduct in message.run_details.byproducts:
            ResourceDescriptor.copy_from_pb(byproduct).validate()
    return statement, message


def prov_document(data: bytes) -> Any:
    """Read PROV-JSON with the ``prov`` package and check it survives a round trip."""
    from prov.model import ProvDocument

    document = ProvDocument.deserialize(content=data.decode(), format="json")
    again = ProvDocument.deserialize(content=document.serialize(format="json"), format="json")
    assert again == document
    return document


def cyclonedx_bom(data: bytes) -> None:
    """Validate against CycloneDX 1.6's bundled JSON schema (strict: no unknown fields)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode(), all_errors=True)
    assert errors is None, [str(e) for e in errors]


def spdx3_objects(data: bytes) -> Any:
    """Read SPDX 3 JSON-LD with spdx-python-model; every reference must resolve."""
    from spdx_python_model.bindings import v3_0_1 as spdx

    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().deserialize_data(json.loads(data), objects)
    missing = objects.link()
    assert not missing, missing
    again = spdx.JSONLDSerializer().serialize_data(objects)
    assert again == json.loads(data)
    return objects


def openlineage_events(data: bytes) -> list[Any]:
    """Rebuild every RunEvent with openlineage-python's models (their validators run)."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent
    from openlineage.client.serde import Serde

    events = []
    for line in data.decode().splitlines():
        raw = json.loads(line)
        event = RunEvent(
            eventType=raw["eventType"],
            eventTime=raw["eventTime"],
            run=Run(runId=raw["run"]["runId"], facets=raw["run"].get("facets", {})),
            job=Job(
                namespace=raw["job"]["namespace"],
                name=raw["job"]["name"],
                facets=raw["job"].get("facets", {}),
            ),
            inputs=[
                InputDataset(namespace=d["namespace"], name=d["name"], facets=d.get("facets", {}))
                for d in raw["inputs"]
            ],
            outputs=[
                OutputDataset(namespace=d["namespace"], name=d["name"], facets=d.get("facets", {}))
                for d in raw["outputs"]
            ],
            producer=raw["producer"],
        )
        assert json.loads(Serde.to_json(event)) == raw
        events.append(event)
    return events


def export(name: str, data: bytes) -> None:
    """Check one export of format ``name`` with that format's own library."""
    if name == "slsa":
        lines = data.splitlines() if data.startswith(b'{"') else [data]
        for line in lines:
            in_toto_statement(json.loads(line))
    elif name == "prov":
        prov_document(data)
    elif name == "cyclonedx":
        cyclonedx_bom(data)
    elif name == "spdx3":
        spdx3_objects(data)
    else:
        openlineage_events(data)
