"""Read-only answers about a project: status of its files, one version resolved, role holders.

Each function takes what it reads (policy, checked history, ledger reader, store) and returns
plain typed values; the CLI and the public API render or return them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from proml_cli.digest import prefixed
from proml_cli.errors import InputError

if TYPE_CHECKING:
    from proml_cli.content import ContentStore
    from proml_cli.history import History, RecordDetail, VersionDetail
    from proml_cli.ledger import LedgerReader
    from proml_cli.policy import Policy

#: What ``status`` says of an artefact's current file.
FileStatus = Literal["unchanged", "modified", "older-version", "new", "missing"]


@dataclass(frozen=True)
class ArtefactStatus:
    """One artefact's file against its last recorded version.

    Attributes:
        artefact: the artefact's name in the policy.
        path: its path as the policy declares it (relative to the project).
        status: ``unchanged`` (the file is the last recorded version), ``older-version`` (an
            earlier recorded one), ``modified`` (never recorded bytes), ``new`` (no version
            recorded yet) or ``missing`` (no file).
        sha256: the file's digest (``sha256:<hex>``), None when missing.
        recorded_cid: the last recorded version's content CID, None without one.
        recorded_state: the last recorded version's state, None without one.
        versions: how many versions of the artefact are recorded.
    """

    artefact: str
    path: str
    status: FileStatus
    sha256: str | None
    recorded_cid: str | None
    recorded_state: str | None
    versions: int

    def to_json(self) -> dict[str, Any]:
        """The documented ``status --json`` row."""
        return {
            "artefact": self.artefact,
            "path": self.path,
            "recorded_cid": self.recorded_cid,
            "recorded_state": self.recorded_state,
            "versions": self.versions,
            "status": self.status,
            "sha256": self.sha256,
        }


def artefact_status(policy: Policy, history: History) -> list[ArtefactStatus]:
    """Each artefact of the policy, its file classified against the checked history."""
    from proml_cli.content import hash_path

    rows = []
    for name, declared in policy.artefacts.items():
        path = policy.artefact_path(name)
        last = history.latest(name)
        digest: str | None = None
        status: FileStatus
        if not path.exists():
            status = "missing"
        else:
            digest = hash_path(path, cid_version=policy.storage.cid_version).sha256
            if last is None:
                status = "new"
            elif digest == last.digest:
                status = "unchanged"
            elif history.get(name, digest) is not None:
                status = "older-version"
            else:
                status = "modified"
        rows.append(
            ArtefactStatus(
                artefact=name,
                path=declared.path,
                status=status,
                sha256=prefixed(digest) if digest is not None else None,
                recorded_cid=last.cid if last else None,
                recorded_state=last.state if last else None,
                versions=history.count(name),
            )
        )
    return rows


def describe_ref(
    policy: Policy, history: History, store: ContentStore, ref: str
) -> VersionDetail | RecordDetail:
    """``ref`` (an artefact's name: its latest version; a content CID; a record CID) in full.

    A version gives :func:`proml_cli.history.describe`'s :class:`VersionDetail`; a record CID
    a :class:`RecordDetail`. Only the versions ``ref`` names (and their inputs and users) are
    read and checked.

    Raises:
        InputError: nothing matches ``ref``, or the artefact has no recorded version yet.
    """
    from proml_cli import history as _history
    from proml_cli.record import parse_record

    version = None
    if ref in policy.artefacts or history.count(ref):
        version = history.latest(ref)
        if version is None:
            raise InputError(
                f"artefact '{ref}' has no recorded version yet",
                hint="record one with `proml run -- ...` (the step that produces it)",
            )
    else:
        version = history.by_cid(ref)
    if version is not None:
        return _history.describe(history, version, store)
    if history.by_record(ref):
        return _history.RecordDetail(ref, parse_record(store.cat(ref), cid=ref))
    from proml_cli.suggest import did_you_mean

    raise InputError(
        f"'{ref}' is neither an artefact nor a recorded CID{did_you_mean(ref, policy.artefacts)}",
        hint="`proml log` lists every recorded version and record",
    )


@dataclass(frozen=True)
class RoleHolders:
    """Who holds which role now, as contract storage says.

    Attributes:
        admin: the ledger's admin address.
        roles: each role the ledger defines to the sorted addresses holding it.
    """

    admin: str
    roles: dict[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        """The documented ``roles list --json`` shape."""
        return {"admin": self.admin, "roles": dict(sorted(self.roles.items()))}


def role_holders(ledger: LedgerReader, history: History) -> RoleHolders:
    """Current holders of every role.

    The events say which accounts ever held a role; what each holds now is storage's answer,
    so a grant row added to a local index never shows up here.
    """
    accounts = {
        str(e.args["account"]) for e in history.events if e.name in ("RoleGranted", "RoleRevoked")
    }
    holders: dict[str, set[str]] = {role: set() for role in ledger.role_names()}
    for account in sorted(accounts):
        for role in ledger.roles_of(account):
            holders.setdefault(role, set()).add(account)
    return RoleHolders(ledger.admin(), {r: sorted(m) for r, m in holders.items()})


def which_artefact(policy: Policy, path: Path, named: str | None) -> str:
    """The artefact PATH is checked as: ``named``, else the one whose declared path it is.

    Never a guess from the bytes: a recorded version of another artefact copied to PATH must
    not pass as this one.

    Raises:
        InputError: an unknown ``named`` artefact, or no artefact declares PATH.
    """
    names = ", ".join(policy.artefacts) or "(none declared)"
    if named is not None:
        if named not in policy.artefacts:
            raise InputError(
                f"unknown artefact '{named}' in {policy.source}", hint=f"artefacts: {names}"
            )
        return named
    target = path.resolve()
    for name in policy.artefacts:
        if policy.artefact_path(name).resolve() == target:
            return name
    raise InputError(
        f"{path} is not the path of an artefact in {policy.source}: which artefact should it be?",
        hint=f"name it: proml verify {path} --artefact NAME (artefacts: {names})",
    )
