"""in-toto Verification Summary Attestation (VSA v1) of a ``verify`` verdict.

A CI gate hands its decision on with it: the verifier, the policy digest, the resource (the
content CID), PASSED or FAILED, and the records it checked (the input attestations, each by its
``ipfs://`` CID and the SHA-256 of its bytes). ``timeVerified`` is the one field that is the
time of writing (the caller may pass it for reproducible output).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from proml_cli.digest import bare

if TYPE_CHECKING:
    from proml_cli.api import Project
    from proml_cli.verify import Verdict

VSA_TYPE = "https://slsa.dev/verification_summary/v1"
VERIFIER_ID = "https://proml.dev/verifier/v1"
#: The level a passed gate reaches (custom levels may not start with ``SLSA_``).
LEVEL = "VERIFIED_BY_PROML"
LEVEL_DEEP = "LINEAGE_VERIFIED_BY_PROML"


def summary(
    verdict: Verdict,
    *,
    policy_digest: str,
    policy_uri: str,
    records: Sequence[tuple[str, str]],
    deep: bool,
    time_verified: str,
) -> dict[str, Any]:
    """The VSA statement for ``verdict``.

    Args:
        verdict: the gate's answer.
        policy_digest: ``sha256:<hex>`` of the policy it applied.
        policy_uri: where that policy is (e.g. ``proml.yaml`` of project ``NAME``).
        records: ``(record CID, sha256 hex of its bytes)`` of every record the gate checked.
        deep: whether the lineage was checked too.
        time_verified: RFC 3339 UTC.
    """
    passed = verdict.verified
    level = LEVEL_DEEP if deep else LEVEL
    predicate: dict[str, Any] = {
        "verifier": {"id": VERIFIER_ID},
        "timeVerified": time_verified,
        "resourceUri": f"ipfs://{verdict.cid}",
        "policy": {"uri": policy_uri, "digest": {"sha256": bare(policy_digest)}},
        "inputAttestations": [
            {"uri": f"ipfs://{cid}", "digest": {"sha256": digest}} for cid, digest in records
        ],
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": [level] if passed else ["FAILED"],
        "slsaVersion": "1.0",
    }
    if deep and passed:
        predicate["dependencyLevels"] = {level: len(verdict.lineage)}
    subject: dict[str, Any] = {
        "name": verdict.path,
        "digest": {"sha256": bare(verdict.sha256)},
        "uri": f"ipfs://{verdict.cid}",
    }
    if verdict.artefact:
        subject["annotations"] = {"artefact": verdict.artefact}
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [subject],
        "predicateType": VSA_TYPE,
        "predicate": predicate,
    }


def checked_records(project: Project, verdict: Verdict) -> list[tuple[str, str]]:
    """The records the gate read for ``verdict``: the version's and, if deep, its lineage's.

    Each is ``(CID, sha256 hex of its bytes)``, sorted; records the store lacks are left out
    (the verdict has failed on them already).
    """
    from proml_cli.errors import ContentError

    keys = [(verdict.artefact or "", bare(verdict.sha256))]
    keys += [(str(e["artefact"]), bare(str(e["sha256"]))) for e in verdict.lineage]
    history = project.history()
    cids = _record_cids(history.versions.get(k) for k in keys)
    store = project.store()
    found = []
    for cid in sorted(cids):
        try:
            found.append((cid, hashlib.sha256(store.cat(cid)).hexdigest()))
        except ContentError:
            continue
    return found


def _record_cids(versions: Iterable[Any]) -> set[str]:
    return {s.record_cid for v in versions if v is not None for s in v.steps}


def attest(
    project: Project, verdict: Verdict, *, deep: bool, time_verified: str | None = None
) -> dict[str, Any]:
    """The VSA for a verdict of ``project`` (``verify --attest``): policy and records filled in.

    ``time_verified`` defaults to now.

    Raises:
        LedgerError: the event index disagrees with the contract.
    """
    from proml_cli.record import utc_now

    policy = project.policy
    return summary(
        verdict,
        policy_digest=policy.digest,
        policy_uri=f"urn:proml:{policy.project}:policy",
        records=checked_records(project, verdict),
        deep=deep,
        time_verified=time_verified or utc_now(),
    )
