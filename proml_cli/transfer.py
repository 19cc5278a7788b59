"""Moving recorded content between the local store and an IPFS node: ``push`` and ``pull``."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from proml_cli.digest import bare
from proml_cli.errors import (
    ContentError,
    ContentNotFoundError,
    DamagedStoreError,
    InputError,
    VerificationFailed,
)

if TYPE_CHECKING:
    from proml_cli.content import RemoteStore
    from proml_cli.history import History, VersionHistory
    from proml_cli.project import Project


def _network_store(project: Project) -> RemoteStore:
    from proml_cli.content import is_remote

    store = project.store()
    if not is_remote(store):
        raise InputError(
            "no IPFS node is configured",
            hint="set storage.backend: ipfs and storage.ipfs in the policy, or PROML_IPFS_URL",
        )
    return cast("RemoteStore", store)


def recorded_cids(history: History) -> list[str]:
    """Every CID the ledger anchors: version contents and provenance records, in chain order."""
    seen: dict[str, None] = {}
    for version in history.versions.values():
        seen.setdefault(version.cid, None)
        for step in version.steps:
            seen.setdefault(step.record_cid, None)
    return list(seen)


def push(project: Project, history: History | None = None) -> dict[str, list[str]]:
    """Send every recorded CID held locally to the node (same CIDs); skip what it pins.

    ``history`` defaults to the project's, read (and checked) from its ledger.
    """
    if history is None:
        from proml_cli.history import load

        history = load(project)
    store = _network_store(project)
    result: dict[str, list[str]] = {"pushed": [], "already_pinned": [], "not_local": []}
    for cid in recorded_cids(history):
        if not store.local.has(cid):
            result["not_local"].append(cid)
        elif store.push(cid):
            result["pushed"].append(cid)
        else:
            result["already_pinned"].append(cid)
    return result


@dataclass(frozen=True)
class Pulled:
    """A version written out by ``pull``."""

    artefact: str
    path: Path
    cid: str
    sha256: str
    state: str


def resolve_version(history: History, spec: str) -> VersionHistory:
    """``ARTEFACT`` (latest version) or ``ARTEFACT@CID`` / ``ARTEFACT@SHA256-PREFIX``.

    Raises:
        InputError: no such artefact or version.
    """
    artefact, _, wanted = spec.partition("@")
    versions = history.of_artefact(artefact)
    if not versions:
        from proml_cli.suggest import did_you_mean

        known = {v.artefact for v in history.versions.values()}
        hint = did_you_mean(artefact, known) if artefact not in known else ""
        raise InputError(f"artefact '{artefact}' has no recorded version{hint}")
    if not wanted:
        return versions[-1]
    wanted = bare(wanted)
    matches = [v for v in versions if v.cid == wanted or v.digest.startswith(wanted.lower())]
    if len(matches) != 1:
        which = "no" if not matches else "more than one"
        raise InputError(f"{which} version of '{artefact}' matches '{wanted}'")
    return matches[0]


def pull(
    project: Project, spec: str, out: Path | None, *, history: History | None = None
) -> Pulled:
    """Fetch a recorded version, check its bytes against the ledger, then write it to ``out``.

    ``history`` defaults to the project's, read (and checked) from its ledger.

    Raises:
        InputError: bad spec, ``out`` exists, or it resolves outside the project.
        VerificationFailed: the fetched bytes are not the recorded version.
    """
    from proml_cli.capture import contained
    from proml_cli.content import hash_path

    if history is None:
        from proml_cli.history import load

        history = load(project)
    version = resolve_version(history, spec)
    target = out or project.policy.artefact_path(version.artefact)
    # Resolved before anything is written: a symlinked parent must not lead the write outside.
    contained(project, target, "pull target")
    if target.exists():
        raise InputError(f"{target} already exists", hint="move it away or pass -o NEW_PATH")
    store = project.store()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.proml-pull-{os.getpid()}"
    try:
        try:
            store.get(version.cid, staging)
        except DamagedStoreError:
            raise  # local state to repair (exit 2), not an answer about the version
        except ContentNotFoundError as exc:
            who = version.registered.actor
            raise ContentNotFoundError(
                f"{exc.diagnosis}: '{version.artefact}' was registered by {who}",
                hint=f"ask {who} (or anyone holding the bytes) to run `proml push`",
            ) from exc
        except ContentError as exc:
            raise VerificationFailed(exc.diagnosis, [exc.diagnosis]) from exc
        cid_version = 0 if version.cid.startswith("Qm") else 1
        hashed = hash_path(staging, cid_version=cid_version)
        reasons = []
        if hashed.cid != version.cid:
            reasons.append(f"fetched content has CID {hashed.cid}, the ledger says {version.cid}")
        if hashed.sha256 != version.digest:
            reasons.append(
                f"fetched content has sha256 {hashed.sha256}, the ledger says {version.digest}"
            )
        if reasons:
            raise VerificationFailed("pulled content does not match the ledger", reasons)
        os.replace(staging, target)
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        elif staging.exists():
            staging.unlink()
    return Pulled(version.artefact, target, version.cid, version.digest, version.state)
