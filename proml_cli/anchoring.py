"""Journal, anchor and sync: how a built record reaches the ledger, exactly once.

A record is journaled (``.proml/journal/pending``) before its one transaction is submitted,
and marked done (or refused) after; ``sync`` anchors whatever a failed submission left
pending. Anchoring is idempotent by record CID: a record already anchored is never submitted
twice. Each function takes the ledger its command opened (once per command): none opens one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proml_cli.errors import (
    BackendUnavailable,
    ContentError,
    InputError,
    JournalError,
    LedgerError,
    ProMLError,
)
from proml_cli.journal import DONE, REFUSED, Entry, Journal
from proml_cli.record import canonical_bytes, utc_now

if TYPE_CHECKING:
    from proml_cli.capture import RunOutcome
    from proml_cli.content import ContentStore
    from proml_cli.ledger import Ledger, Move, Receipt, Registration
    from proml_cli.project import Project

logger = logging.getLogger(__name__)


def anchor(
    ledger: Ledger,
    entry: Entry,
    journal: Journal,
    store: ContentStore,
) -> Receipt | None:
    """Submit a journaled entry once on ``ledger``; mark it done (or refused).

    Idempotent by record CID. ``ledger`` signs as the command's signer.

    Returns:
        The receipt of the transaction anchoring the record (the earlier one if it was anchored
        already), or None when nothing was left to anchor: every product was registered by
        then and the entry fires no transition (the entry is marked done without one).

    Raises:
        LedgerError: the contract refused (the entry moves to ``refused/``).
        BackendUnavailable: the chain is unreachable (the entry stays pending).
    """
    # The record is made durable in the local store before anything else, always: a node's
    # "I have it" (pin/ls) is a claim, and believing it once lost a record for good. Storing
    # bytes the local store holds already costs one lookup. It is also
    # what keeps an IPFS outage from holding a record off a reachable chain.
    stored = store.put_bytes(entry.record_bytes)
    if stored != entry.record_cid:
        raise ContentError(f"journaled record {entry.record_cid} re-stored as {stored}")
    done = _find_anchor(ledger, entry.record_cid)
    if done is not None:
        journal.mark(entry.record_cid, DONE, tx_hash=done.tx_hash)
        return done
    # An entry journaled while the chain was unreachable lists every product; one that has
    # been registered since (an identical run) would revert the whole batch as a duplicate.
    registrations = [r for r in entry.registrations if ledger.version(r.version) is None]
    if not registrations and not entry.moves:
        journal.mark(entry.record_cid, DONE)
        return None
    try:
        receipt = ledger.submit(entry.record_cid, registrations, entry.moves)
    except LedgerError as exc:
        journal.mark(entry.record_cid, REFUSED)
        raise _name_allowed_roles(exc, ledger, registrations, entry.moves) from exc
    journal.mark(entry.record_cid, DONE, tx_hash=receipt.tx_hash)
    return receipt


def _name_allowed_roles(
    exc: LedgerError, ledger: Ledger, registrations: Sequence[Registration], moves: Sequence[Move]
) -> LedgerError:
    """Add to a missing-role refusal the roles the chain allows and those the signer holds.

    The contract's ``MissingRole`` error names the account, the kind and the action only; the
    user's next step (ask the admin for a role) needs the role's name.
    """
    if exc.contract_error != "MissingRole":
        return exc
    operations = [(r.version.artefact, "register") for r in registrations]
    operations += [(m.version.artefact, m.transition) for m in moves]
    for artefact, action in operations:
        kind_name = ledger.artefact_kind(artefact)
        kind = ledger.kind(kind_name) if kind_name else None
        if kind is None or f"'{action}' on kind '{kind.name}'" not in exc.diagnosis:
            continue
        if action == "register":
            allowed = kind.register
        else:
            rule = kind.transitions.get(action)
            allowed = rule.roles if rule is not None else ()
        held = ledger.roles_of(ledger.account)
        return LedgerError(
            f"{exc.diagnosis} (allowed: {', '.join(allowed) or 'none'}; "
            f"it holds: {', '.join(held) or 'no role'})",
            hint=exc.hint
            or (
                f"the project's admin can run `proml roles grant {allowed[0]} {ledger.account}`,"
                " or sign with an account that holds the role (--as NAME)"
                if allowed
                else None
            ),
            contract_error="MissingRole",
        )
    return exc


def _find_anchor(ledger: Ledger, record_cid: str) -> Receipt | None:
    """The transaction that anchored ``record_cid`` already, if any.

    Only steps of versions whose events match the contract count: a row added to a local
    event index must not mark a pending record as anchored.
    """
    from proml_cli.history import view
    from proml_cli.ledger import Receipt

    # An index lookup by record CID: only the versions anchored with it are read and checked.
    found = [
        step.event
        for version in view(ledger, strict=False).by_record(record_cid)
        if not version.problem
        for step in version.steps
        if step.record_cid == record_cid
    ]
    if not found:
        return None
    event = min(found, key=lambda e: (e.block, e.log_index))
    return Receipt(event.tx_hash, event.block, event.timestamp, 0)


def journal_and_anchor(
    project: Project,
    ledger: Ledger | None,
    store: ContentStore,
    record: dict[str, Any],
    registrations: Sequence[Registration],
    moves: Sequence[Move],
    outcome: RunOutcome,
    *,
    chain_down: BackendUnavailable | None = None,
) -> RunOutcome:
    """Journal the record, then anchor it on ``ledger`` (opened, signing, by the command).

    ``ledger`` is None exactly when ``chain_down`` is set: the outage this command already
    waited for. Asking again would only double the wait, so the record stays in the journal
    for ``proml sync``.
    """
    from proml_cli.content import bytes_cid

    # The CID is computed here, not by the store: the journal must hold the record even when
    # the store is unreachable.
    record_cid = bytes_cid(canonical_bytes(record))
    entry = Entry(record_cid, record, tuple(registrations), tuple(moves), utc_now())
    outcome.record_cid = record_cid
    _anchor_entry(project, ledger, store, entry, outcome, chain_down=chain_down)
    outcome.deferred = store.unpushed()
    if outcome.deferred:
        outcome.messages.append(
            f"{len(outcome.deferred)} item(s) are only in the local store: the IPFS node was "
            "unreachable or misbehaved: run `proml push` (or `proml sync`) once it is back"
        )
    return outcome


def _anchor_entry(
    project: Project,
    ledger: Ledger | None,
    store: ContentStore,
    entry: Entry,
    outcome: RunOutcome,
    *,
    chain_down: BackendUnavailable | None = None,
) -> None:
    """Journal ``entry`` and anchor it, noting in ``outcome`` what happened."""
    if not entry.registrations and not entry.moves:
        store.put_bytes(entry.record_bytes)
        outcome.messages.append("nothing new to anchor on the ledger")
        return
    journal = Journal(project.state_dir / "journal")
    try:
        journal.write(entry)
    except OSError as exc:
        raise JournalError(f"cannot write the journal: {exc}") from exc
    outcome.journaled = True
    if ledger is None or chain_down is not None:
        chain_down = chain_down or BackendUnavailable("the chain was not reached")
        # Keep the bytes of the record too (locally at least), so sync has all it needs.
        store.put_bytes(entry.record_bytes)
        outcome.unreachable = chain_down.diagnosis
        outcome.messages.append(
            f"{chain_down.diagnosis}; the record is kept in the journal: run `proml sync`"
        )
        return
    try:
        receipt = anchor(ledger, entry, journal, store)
    except BackendUnavailable as exc:
        outcome.unreachable = exc.diagnosis
        outcome.messages.append(
            f"{exc.diagnosis}; the record is kept in the journal: run `proml sync`"
        )
        return
    outcome.journaled = False
    if receipt is None:
        outcome.messages.append("nothing new to anchor on the ledger")
        return
    outcome.recorded = True
    outcome.tx_hash = receipt.tx_hash
    outcome.block = receipt.block
    outcome.gas_used = receipt.gas_used


def sync(project: Project, *, account: str | None = None) -> list[dict[str, Any]]:
    """Anchor every pending journal entry, each exactly once; return what happened to each."""
    journal = Journal(project.state_dir / "journal")
    pending = journal.pending()
    # An unreadable entry was set aside; it never stops the others from being anchored.
    results: list[dict[str, Any]] = [
        {
            "record_cid": q.path.stem,
            "status": "quarantined",
            "reason": q.describe(project.root),
            "path": str(q.moved_to),
        }
        for q in journal.quarantined
    ]
    if not pending:
        return results
    signer = project.signer(account)
    store = project.store()
    try:
        with project.ledger(signer) as ledger:
            return _anchor_pending(ledger, journal, pending, store, results)
    except BackendUnavailable as exc:
        if not journal.quarantined:
            raise
        # The entry set aside must not go unreported because the chain is away.
        raise BackendUnavailable(
            f"{exc.diagnosis}; also, {journal.quarantined[0].describe(project.root)}",
            hint=exc.hint,
        ) from exc


def _anchor_pending(
    ledger: Ledger,
    journal: Journal,
    pending: Sequence[Entry],
    store: ContentStore,
    results: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Anchor each pending entry on the one open ledger; add what happened to ``results``."""
    for entry in pending:
        try:
            receipt = anchor(ledger, entry, journal, store)
        except LedgerError as exc:
            results.append(
                {"record_cid": entry.record_cid, "status": "refused", "reason": exc.diagnosis}
            )
            continue
        if receipt is None:
            results.append(
                {
                    "record_cid": entry.record_cid,
                    "status": "done",
                    "reason": "nothing left to anchor: its versions were registered since",
                }
            )
            continue
        results.append(
            {
                "record_cid": entry.record_cid,
                "status": "anchored",
                "tx_hash": receipt.tx_hash,
                "block": receipt.block,
            }
        )
    return results


@dataclass
class SyncReport:
    """What ``proml sync`` did: each journal entry's fate and the content sent to the node.

    Attributes:
        entries: one result per journal entry (``anchored``, ``done``, ``refused`` or
            ``quarantined``), as :func:`sync` returns them.
        pushed: CIDs the IPFS node took from the local queue.
        problem: why the queue could not be sent (the node unreachable or misbehaving).
    """

    entries: list[dict[str, Any]]
    pushed: list[str] = field(default_factory=list)
    problem: ContentError | BackendUnavailable | None = None

    @property
    def set_aside(self) -> list[dict[str, Any]]:
        """The entries that could not be read and were quarantined."""
        return [e for e in self.entries if e["status"] == "quarantined"]

    @property
    def refused(self) -> bool:
        """Whether the contract refused an entry."""
        return any(e["status"] == "refused" for e in self.entries)

    def error(self) -> ProMLError | None:
        """The error the command ends with: a quarantined entry first, then the node's problem."""
        set_aside = self.set_aside
        if set_aside:
            more = f" (and {len(set_aside) - 1} more)" if len(set_aside) > 1 else ""
            return InputError(f"{set_aside[0]['reason']}{more}", hint="proml fsck")
        return self.problem


def sync_all(project: Project, *, account: str | None = None) -> SyncReport:
    """Anchor the journal (each entry once), then send the content queued for the IPFS node.

    The journal goes first: anchoring needs only the chain, so an unreachable or misbehaving
    IPFS node does not hold the ledger back; content the node did not take stays queued.

    Raises:
        BackendUnavailable: the chain is unreachable (the journal is left as it was).
    """
    entries = sync(project, account=account)
    try:
        pushed = project.store().flush()
    except (ContentError, BackendUnavailable) as exc:
        return SyncReport(entries, [], exc)
    return SyncReport(entries, pushed)
