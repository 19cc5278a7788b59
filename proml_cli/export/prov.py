"""W3C PROV-JSON of a version's lineage, or of the whole project.

Versions are entities, runs and human decisions are activities, accounts (with the roles they
acted in) are agents; every anchored state change is an activity of its own, at its block's
time, naming its transaction, informed by the run or decision whose record it anchors. The
relations are ``used``, ``wasGeneratedBy``, ``wasDerivedFrom``, ``wasAssociatedWith`` (with the
roles as ``prov:role``), ``wasAttributedTo`` and ``wasInformedBy``. Identifiers are derived
from the facts (record CIDs, transaction hashes, addresses, digests), never counters of the
export, so the same history gives the same document.
"""

from __future__ import annotations

from typing import Any

from proml_cli.digest import prefixed
from proml_cli.export.facts import Facts, StateChange, Version

NS = "https://proml.dev/ns/prov#"


def document(facts: Facts) -> dict[str, Any]:
    """The PROV-JSON document of ``facts``."""
    doc = _Doc(facts)
    for version in facts.versions:
        doc.version(version)
    for agent, roles in facts.agents().items():
        doc.agent(agent, roles)
    for cid in sorted(facts.runs):
        doc.run(cid)
    for cid in sorted(facts.decisions):
        doc.decision(cid)
    for version in facts.versions:
        for change in version.changes:
            doc.change(version, change)
        doc.lineage(version)
    return doc.finish()


def _time(text: str) -> dict[str, str]:
    return {"$": text, "type": "xsd:dateTime"}


class _Doc:
    """A PROV-JSON document under construction (one per export)."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.bundle: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}

    def add(self, section: str, ident: str, attributes: dict[str, Any]) -> None:
        self.bundle.setdefault(section, {})[ident] = attributes

    def relate(self, section: str, attributes: dict[str, Any]) -> None:
        # Relation ids count per section in the order the facts give: deterministic.
        self.counts[section] = self.counts.get(section, 0) + 1
        self.add(section, f"_:{section}{self.counts[section]}", attributes)

    def version_id(self, key: tuple[str, str]) -> str:
        return f"version:{key[0]}/{key[1]}"

    def version(self, version: Version) -> None:
        attributes: dict[str, Any] = {
            "prov:type": "proml:Version",
            "prov:label": f"{version.artefact}@{version.cid}",
            "prov:location": f"ipfs://{version.cid}",
            "proml:artefact": version.artefact,
            "proml:kind": version.kind,
            "proml:sha256": prefixed(version.sha256),
            "proml:cid": version.cid,
            "proml:state": version.state,
        }
        if version.path:
            attributes["proml:path"] = version.path
        self.add("entity", self.version_id(version.key), attributes)

    def agent(self, address: str, roles: tuple[str, ...]) -> None:
        self.add(
            "agent",
            f"account:{address}",
            {
                "prov:type": "proml:Account",
                "prov:label": address,
                "proml:address": address,
                "proml:roles": " ".join(roles),
            },
        )

    def run(self, cid: str) -> None:
        run = self.facts.runs[cid]
        record = run.record
        self.add(
            "activity",
            f"record:{cid}",
            {
                "prov:type": "proml:Run",
                "prov:label": f"step {record.step}",
                "prov:startTime": record.started,
                "prov:endTime": record.ended,
                "proml:step": record.step,
                "proml:command": " ".join(record.command),
                "proml:policyDigest": record.policy_digest,
                "proml:record": f"ipfs://{cid}",
            },
        )
        self.associate(f"record:{cid}", record.actor, cid)
        for entry in record.materials:
            if entry.artefact:
                self.relate(
                    "used",
                    {
                        "prov:activity": f"record:{cid}",
                        "prov:entity": self.version_id((entry.artefact, entry.sha256)),
                        "prov:time": record.started,
                    },
                )
                self.ensure((entry.artefact, entry.sha256), entry.cid)
        for entry in record.products:
            if entry.artefact:
                self.relate(
                    "wasGeneratedBy",
                    {
                        "prov:entity": self.version_id((entry.artefact, entry.sha256)),
                        "prov:activity": f"record:{cid}",
                        "prov:time": record.ended,
                    },
                )
                self.ensure((entry.artefact, entry.sha256), entry.cid)

    def decision(self, cid: str) -> None:
        decision = self.facts.decisions[cid]
        record = decision.record
        attributes: dict[str, Any] = {
            "prov:type": "proml:Decision",
            "prov:label": f"decision {record.transition}",
            "prov:startTime": record.decided,
            "prov:endTime": record.decided,
            "proml:transition": record.transition,
            "proml:policyDigest": record.policy_digest,
            "proml:record": f"ipfs://{cid}",
        }
        if record.note:
            attributes["proml:note"] = record.note
        self.add("activity", f"record:{cid}", attributes)
        self.associate(f"record:{cid}", record.actor, cid)
        subject = record.subject
        if subject.artefact:
            self.relate(
                "used",
                {
                    "prov:activity": f"record:{cid}",
                    "prov:entity": self.version_id((subject.artefact, subject.sha256)),
                    "prov:time": record.decided,
                },
            )
            self.ensure((subject.artefact, subject.sha256), subject.cid)

    def change(self, version: Version, change: StateChange) -> None:
        ident = f"event:{change.tx_hash}/{change.log_index}"
        attributes: dict[str, Any] = {
            "prov:type": "proml:StateChange",
            "prov:label": f"{version.artefact} {change.action}: {change.source or '-'} -> "
            f"{change.target}",
            "prov:startTime": change.time,
            "prov:endTime": change.time,
            "proml:action": change.action,
            "proml:to": change.target,
            "proml:chain": self.facts.chain.caip2,
            "proml:ledger": self.facts.chain.ledger,
            "proml:transaction": change.tx_hash,
            "proml:block": change.block,
            "proml:logIndex": change.log_index,
        }
        if change.source is not None:
            attributes["proml:from"] = change.source
        self.add("activity", ident, attributes)
        self.relate(
            "used",
            {
                "prov:activity": ident,
                "prov:entity": self.version_id(version.key),
                "prov:time": change.time,
            },
        )
        self.relate(
            "wasInformedBy",
            {"prov:informed": ident, "prov:informant": f"record:{change.record_cid}"},
        )
        association = {"prov:activity": ident, "prov:agent": f"account:{change.actor}"}
        if change.roles:
            association["prov:role"] = " ".join(change.roles)
        self.relate("wasAssociatedWith", association)

    def lineage(self, version: Version) -> None:
        registered = version.registered
        self.relate(
            "wasAttributedTo",
            {
                "prov:entity": self.version_id(version.key),
                "prov:agent": f"account:{registered.actor}",
            },
        )
        for key in version.inputs:
            attributes = {
                "prov:generatedEntity": self.version_id(version.key),
                "prov:usedEntity": self.version_id(key),
            }
            if registered.record_cid in self.facts.runs:
                attributes["prov:activity"] = f"record:{registered.record_cid}"
            self.relate("wasDerivedFrom", attributes)
            self.ensure(key, None)

    def associate(self, activity: str, actor: str, record_cid: str) -> None:
        roles = sorted({r for _v, c in self.facts.changes_of(record_cid) for r in c.roles})
        association = {"prov:activity": activity, "prov:agent": f"account:{actor}"}
        if roles:
            association["prov:role"] = " ".join(roles)
        self.relate("wasAssociatedWith", association)
        self.add(
            "agent",
            f"account:{actor}",
            self.bundle.get("agent", {}).get(
                f"account:{actor}",
                {"prov:type": "proml:Account", "prov:label": actor, "proml:address": actor},
            ),
        )

    def ensure(self, key: tuple[str, str], cid: str | None) -> None:
        """A version outside the scope, named by a relation: a bare entity for it."""
        ident = self.version_id(key)
        if ident in self.bundle.get("entity", {}):
            return
        attributes: dict[str, Any] = {
            "prov:type": "proml:Version",
            "proml:artefact": key[0],
            "proml:sha256": prefixed(key[1]),
        }
        if cid:
            attributes["proml:cid"] = cid
            attributes["prov:location"] = f"ipfs://{cid}"
        self.add("entity", ident, attributes)

    def finish(self) -> dict[str, Any]:
        project = self.facts.project
        chain = self.facts.chain
        prefix = {
            "proml": NS,
            "version": f"urn:proml:{project}:version:",
            "record": "ipfs://",
            "event": f"urn:proml:{chain.caip2}:{chain.ledger}:event:",
            "account": f"did:pkh:{chain.caip2}:",
        }
        return {"prefix": prefix, **{k: self.bundle[k] for k in sorted(self.bundle)}}
