"""The decoded history index: each step event decoded once, kept in SQLite as blocks come.

Reading the history used to decode every event of the ledger in every process, so each read
and each write grew with the history. This index keeps each ``Registered`` / ``Transitioned``
event as one row (version key, artefact, digest, CIDs, action, states, actor, roles bitmap,
block time and the raw fields the step-chain head is recomputed from), indexed by version,
artefact, content CID and record CID; the few other events (kinds, roles, admin) are kept with
their decoded arguments. A command reads the rows it needs and no others.

It is a local file anyone with write access to ``.proml/`` can edit, exactly like the event
index it is built from, so nothing it holds is believed on its own: :mod:`proml_cli.history`
recomputes every served version's step-chain head from its rows and compares it with the
contract's storage, and rebuilds the index from the chain once when they differ. What keeps
the index in step with the chain:

* it names the ledger it was built for (chain id and contract address): another project's
  index is dropped;
* it remembers the newest block it holds and that block's hash: when the chain's block at that
  height has another hash (a reorganisation, a reset development chain) it is rebuilt;
* on the embedded chain, triggers count every change to the event-index table; a count that
  does not match the rows appended since means rows were edited, removed or inserted there,
  and the index is rebuilt from it (so such edits are found as they were before);
* triggers count every change to its own tables too; a change it did not make itself (a row
  edited, removed or added by hand) rebuilds it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from proml_cli.errors import ProMLError
from proml_cli.ledger import ChainEvent

if TYPE_CHECKING:
    from proml_cli.ledger._client import ContractLedger

logger = logging.getLogger(__name__)

#: Bumped whenever the rows' meaning changes: an index of another schema is rebuilt.
SCHEMA = "4"
#: Where ``_plain`` puts the names of a Registered event's fields.
STEP_EVENTS = ("Registered", "Transitioned")
#: The ``source`` of a registration step.
NO_STATE = 255


def edit_counter(table: str, meta: str, key: str, names: Sequence[str]) -> str:
    """SQL for triggers that add one to ``meta``'s ``key`` on each insert, update or delete.

    ``names``: the three triggers' names (insert, update, delete). A counter the code keeps in
    step with its own writes shows any edit made behind its back.
    """
    # Fixed names from this package, never user input.
    return "".join(
        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {op} ON {table} BEGIN\n"  # noqa: S608
        f"    UPDATE {meta} SET value = CAST(value AS INTEGER) + 1 WHERE key = '{key}';\nEND;\n"
        for name, op in zip(names, ("INSERT", "UPDATE", "DELETE"), strict=True)
    )


#: The index's tables of rows (``hist_meta`` beside them says what they cover).
_INDEX_TABLES = ("hist_steps", "hist_inputs", "hist_other", "hist_counts")

_TABLES = """
CREATE TABLE IF NOT EXISTS hist_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hist_steps (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL,
    time INTEGER NOT NULL, vkey BLOB NOT NULL, artefact TEXT NOT NULL, digest TEXT NOT NULL,
    cid TEXT, record_cid TEXT NOT NULL, action TEXT NOT NULL, source INTEGER NOT NULL,
    target INTEGER NOT NULL, actor TEXT NOT NULL, roles TEXT NOT NULL, action_raw BLOB NOT NULL,
    record_raw BLOB NOT NULL, cid_raw BLOB, input_keys BLOB,
    PRIMARY KEY (block, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hist_steps_vkey ON hist_steps (vkey);
CREATE INDEX IF NOT EXISTS hist_steps_artefact ON hist_steps (artefact, block, log_index);
CREATE INDEX IF NOT EXISTS hist_steps_cid ON hist_steps (cid_raw);
CREATE INDEX IF NOT EXISTS hist_steps_record ON hist_steps (record_raw);
CREATE INDEX IF NOT EXISTS hist_steps_digest ON hist_steps (digest);
CREATE TABLE IF NOT EXISTS hist_inputs (
    input_key BLOB NOT NULL, vkey BLOB NOT NULL, PRIMARY KEY (input_key, vkey)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hist_other (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL,
    time INTEGER NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL,
    PRIMARY KEY (block, log_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hist_counts (
    artefact TEXT PRIMARY KEY, registered INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO hist_meta VALUES ('edits', '0');
"""
_TABLES += "".join(
    edit_counter(t, "hist_meta", "edits", (f"{t}_i", f"{t}_u", f"{t}_d")) for t in _INDEX_TABLES
)

_COLUMNS = (
    "block, log_index, tx_hash, time, vkey, artefact, digest, cid, record_cid, action, source, "
    "target, actor, roles, action_raw, record_raw, cid_raw, input_keys"
)


class HistoryIndex:
    """The decoded step rows of one ledger in a SQLite connection (see the module docstring).

    The connection is the caller's: the embedded chain's own database, or a file beside the
    JSON-RPC block-time cache. ``commit`` is called after each change.
    """

    def __init__(self, conn: sqlite3.Connection, commit: Any) -> None:
        self._conn = conn
        self._commit = commit
        _create(conn)
        self.rebuilt = 0
        self._noted = False

    # ------------------------------------------------------------------ keeping up

    def _meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._conn.execute("SELECT key, value FROM hist_meta")}

    def _clear(self, ledger_id: str) -> None:
        for table in (*_INDEX_TABLES, "hist_meta"):
            self._conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        self._conn.executemany(
            "INSERT INTO hist_meta VALUES (?, ?)",
            [("schema", SCHEMA), ("ledger", ledger_id), ("edits", "0")],
        )

    def sync(
        self, ledger: ContractLedger, *, rebuild: bool = False, is_quiet: bool = False
    ) -> None:
        """Append the events of blocks newer than the index's; rebuild it when it is stale.

        ``rebuild``: the caller found that what the index served disagrees with the contract.
        A rebuild of an index that was built before is noted once on stderr (a warning of
        this module's logger) with its reason, unless ``is_quiet`` (the caller reports it).
        """
        ledger_id = f"{ledger.chain_id}:{ledger.address}"
        meta = self._meta()
        tip = int(meta.get("tip", "-1"))
        head, head_hash, parent_hash = ledger.head_block()
        changes = ledger._index_changes(tip)
        why = (
            "what it served disagreed with the contract"
            if rebuild
            else _stale(ledger, meta, ledger_id, (head, head_hash, parent_hash), changes)
        )
        stale = why is not None
        if why is not None:
            if "schema" in meta and not is_quiet and not self._noted:
                # Built before: a rebuild means something changed behind proml's back.
                self._noted = True
                logger.warning("history index rebuilt: %s", why)
            self._clear(ledger_id)
            self.rebuilt += 1
            tip = -1
        grown = changes is not None and changes[1] > int(meta.get("above", "0"))
        if not (head > tip or stale or grown):
            after = ledger._index_changes(tip)
            if after is None or (str(after[0]), str(after[1])) == (
                meta.get("changes"),
                meta.get("above"),
            ):
                return  # nothing new: a read writes nothing (no commit, no fsync)
        self._append(ledger.events_between(tip + 1, head))
        if head > tip:
            self._conn.executemany(
                "INSERT OR REPLACE INTO hist_meta VALUES (?, ?)",
                [("tip", str(head)), ("tip_hash", head_hash)],
            )
        after = ledger._index_changes(max(head, tip))
        if after is not None:
            self._conn.executemany(
                "INSERT OR REPLACE INTO hist_meta VALUES (?, ?)",
                [("changes", str(after[0])), ("above", str(after[1]))],
            )
        # The triggers counted this sync's own writes too: they are seen.
        self._conn.execute(
            "INSERT OR REPLACE INTO hist_meta SELECT 'edits_seen', value FROM hist_meta "
            "WHERE key = 'edits'"
        )
        self._commit()

    def problems(self, ledger: ContractLedger) -> list[str]:
        """What differs between the index and a fresh decode of the ledger's events (no writes).

        An index never built (the first read builds it) has none; a stale one has its reason;
        otherwise every row up to the indexed tip is compared. O(events): for ``fsck``.
        """
        meta = self._meta()
        if "schema" not in meta:
            return []
        tip = int(meta.get("tip", "-1"))
        why = _stale(
            ledger,
            meta,
            f"{ledger.chain_id}:{ledger.address}",
            ledger.head_block(),
            ledger._index_changes(tip),
        )
        if why is not None:
            return [f"the history index is stale: {why}"]
        fresh = HistoryIndex(sqlite3.connect(":memory:"), lambda: None)
        fresh._append([e for e in ledger.events_between(0, tip) if e.block <= tip])
        differ = []
        for table in _INDEX_TABLES:
            query = f"SELECT * FROM {table}"  # noqa: S608 - fixed names
            if set(self._conn.execute(query)) != set(fresh._conn.execute(query)):
                differ.append(table)
        fresh._conn.close()
        if not differ:
            return []
        return [
            f"the history index differs from the events it was built from (table "
            f"{', '.join(differ)}): rows were edited, removed or added outside proml"
        ]

    def _append(self, events: Sequence[ChainEvent]) -> None:
        steps: list[tuple[Any, ...]] = []
        inputs: list[tuple[bytes, bytes]] = []
        others: list[tuple[Any, ...]] = []
        registered: Counter[str] = Counter()
        for e in events:
            if e.name in STEP_EVENTS:
                row = _step_row(e)
                steps.append(row)
                if e.name == "Registered":
                    inputs.extend((bytes(k), row[4]) for k in e.raw["inputs"])  # type: ignore[attr-defined]
                    registered[row[5]] += 1
            else:
                others.append(
                    (e.block, e.log_index, e.tx_hash, e.timestamp, e.name, json.dumps(e.args))
                )
        self._conn.executemany(
            f"INSERT OR REPLACE INTO hist_steps VALUES ({','.join('?' * 18)})",  # noqa: S608
            steps,
        )
        self._conn.executemany("INSERT OR IGNORE INTO hist_inputs VALUES (?, ?)", inputs)
        # Registrations per artefact, kept as they are appended (sync appends only blocks
        # above the tip, each once): `status` shows the count without counting the rows.
        self._conn.executemany(
            "INSERT INTO hist_counts VALUES (?, ?) ON CONFLICT (artefact) "
            "DO UPDATE SET registered = registered + excluded.registered",
            registered.items(),
        )
        self._conn.executemany(
            "INSERT OR REPLACE INTO hist_other VALUES (?, ?, ?, ?, ?, ?)", others
        )

    # ------------------------------------------------------------------ queries

    def keys(
        self,
        *,
        artefact: str | None = None,
        cid: str | None = None,
        record_cid: str | None = None,
        digest: str | None = None,
        newest: int | None = None,
    ) -> list[tuple[str, str]]:
        """Version keys (artefact, digest) of registrations matching the filters, oldest first.

        ``newest``: only the newest N (by registration).
        """
        where = ["action = 'register'"] if record_cid is None else []
        args: list[object] = []
        try:
            cid_raw = _cid_bytes(cid)
            record_raw = _cid_bytes(record_cid)
        except ProMLError:
            return []  # not a CID: nothing was anchored with it
        for column, value in (
            ("artefact", artefact),
            ("cid_raw", cid_raw),
            ("record_raw", record_raw),
            ("digest", digest),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT DISTINCT artefact, digest, block, log_index FROM hist_steps"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY block DESC, log_index DESC"
        if newest is not None:
            sql += f" LIMIT {int(newest)}"
        found = dict.fromkeys(
            (str(a), str(d)) for a, d, _, _ in self._conn.execute(sql, args).fetchall()
        )
        return list(reversed(found))

    def count(self, artefact: str) -> int:
        """How many registrations of ``artefact`` the index holds."""
        row = self._conn.execute(
            "SELECT registered FROM hist_counts WHERE artefact = ?", (artefact,)
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def users(self, key: bytes) -> list[tuple[str, str]]:
        """Versions registered with version key ``key`` among their inputs."""
        rows = self._conn.execute(
            "SELECT DISTINCT s.artefact, s.digest FROM hist_inputs i JOIN hist_steps s "
            "ON s.vkey = i.vkey AND s.action = 'register' WHERE i.input_key = ? "
            "ORDER BY s.block, s.log_index",
            (key,),
        )
        return [(str(a), str(d)) for a, d in rows]

    def newest_steps(self, limit: int, artefact: str | None = None) -> list[tuple[str, str]]:
        """The versions of the newest ``limit`` steps (of ``artefact``), newest step first."""
        sql = "SELECT artefact, digest FROM hist_steps"
        args: list[object] = []
        if artefact is not None:
            sql += " WHERE artefact = ?"
            args.append(artefact)
        sql += " ORDER BY block DESC, log_index DESC LIMIT ?"
        args.append(int(limit))
        return [(str(a), str(d)) for a, d in self._conn.execute(sql, args)]

    def all_keys(self) -> list[tuple[str, str]]:
        """Every registered version, in registration order."""
        rows = self._conn.execute(
            "SELECT artefact, digest FROM hist_steps WHERE action = 'register' "
            "ORDER BY block, log_index"
        )
        return list(dict.fromkeys((str(a), str(d)) for a, d in rows))

    def events(self, keys: Iterable[bytes] | None = None) -> list[ChainEvent]:
        """The step events of the versions with these version keys, in chain order.

        ``keys`` None: every event, the other events too. A registration's inputs are resolved
        where the index holds their registration (else None, as the full decode gives).
        """
        if keys is None:
            from proml_cli.ledger._storage import remembered_last

            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM hist_steps ORDER BY block, log_index"  # noqa: S608
            ).fetchall()
            others = self._conn.execute(
                "SELECT block, log_index, tx_hash, time, name, args FROM hist_other"
            ).fetchall()
            # The events are a function of these rows alone (inputs resolve among them): a
            # process that keeps results reuses the last ones when every row is the same.
            return remembered_last(
                "history_events", (rows, others), lambda: self._events(rows, others)
            )
        wanted = list(dict.fromkeys(keys))
        rows = []
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows.extend(
                self._conn.execute(
                    f"SELECT {_COLUMNS} FROM hist_steps WHERE vkey IN ({marks})",  # noqa: S608
                    part,
                ).fetchall()
            )
        rows.sort(key=lambda r: (r[0], r[1]))
        return self._events(rows, None)

    def _events(self, rows: list[Any], others: list[Any] | None) -> list[ChainEvent]:
        """Rows as events, inputs resolved; ``others``: the other events' rows, merged in."""
        needed = {
            bytes(r[17][i : i + 32])
            for r in rows
            if r[9] == "register" and r[17]
            for i in range(0, len(r[17]), 32)
        }
        refs = self._refs(needed)
        from proml_cli.ledger._storage import remembered_pure

        found = (
            # A row without inputs is its event's only source: a process that keeps results
            # converts each such row (compared whole) once; inputs are resolved every time.
            _event(r, refs) if r[17] else remembered_pure(("index_row", r), partial(_event, r, {}))
            for r in rows
        )
        events = [e for e in found if e is not None]
        if others is not None:
            rest = [
                ChainEvent(str(n), int(b), int(t), str(h), int(i), json.loads(a))
                for b, i, h, t, n, a in others
            ]
            events = sorted([*events, *rest], key=lambda e: (e.block, e.log_index))
        return events

    def _refs(self, keys: set[bytes]) -> dict[bytes, dict[str, str]]:
        found: dict[bytes, dict[str, str]] = {}
        wanted = sorted(keys)
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._conn.execute(
                "SELECT vkey, artefact, digest FROM hist_steps WHERE action = 'register' "  # noqa: S608
                f"AND vkey IN ({marks}) ORDER BY block, log_index",
                part,
            )
            for vkey, artefact, digest in rows:
                if _matches(vkey, str(artefact), str(digest)):
                    found[bytes(vkey)] = {"artefact": str(artefact), "digest": str(digest)}
        return found


def _stale(
    ledger: ContractLedger,
    meta: dict[str, str],
    ledger_id: str,
    head: tuple[int, str, str],
    changes: tuple[int, int] | None,
) -> str | None:
    """Why an index with ``meta`` no longer matches the chain (None: it does)."""
    if meta.get("schema") != SCHEMA:
        return "it was never built" if "schema" not in meta else "its format changed"
    if meta.get("ledger") != ledger_id:
        return "it was built for another ledger"
    if meta.get("edits") != meta.get("edits_seen"):
        return "its tables (hist_*) were edited"
    tip = int(meta.get("tip", "-1"))
    number, head_hash, parent_hash = head
    if tip >= 0:
        # Is the indexed tip still the chain's block? The head (or its parent) says so
        # without another call when the index is one block behind or up to date.
        if number == tip:
            known = head_hash
        elif number == tip + 1:
            known = parent_hash
        else:
            known = ledger.block_hash(tip) or ""
        if known != meta.get("tip_hash"):
            return f"the chain changed at or below block {tip}"
    if changes is not None and "changes" in meta:
        # Appending n rows above the tip adds n to both; any other edit does not.
        counter, above = changes
        expected = int(meta.get("above", "0")) + counter - int(meta["changes"])
        if above != expected:
            return "the event index (table logs) was edited"
    return None


def _create(conn: sqlite3.Connection) -> None:
    """Run the schema one statement at a time (``executescript`` commits the caller's work)."""
    statement = ""
    for line in _TABLES.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


def version_key_of(artefact_raw: bytes, digest_raw: bytes) -> bytes:
    """The contract's version key from the event's raw artefact and digest words."""
    from proml_cli.ledger._storage import keccak

    return keccak(bytes(artefact_raw) + bytes(digest_raw))


def _raw(value: object) -> bytes:
    assert isinstance(value, bytes | bytearray)  # noqa: S101 - eth_abi decodes bytes as bytes
    return bytes(value)


def _step_row(e: ChainEvent) -> tuple[Any, ...]:
    a, r = e.args, e.raw
    vkey = version_key_of(_raw(r["artefact"]), _raw(r["digest"]))
    if e.name == "Registered":
        action, source, target = "register", NO_STATE, -1
        action_raw = b"register".ljust(32, b"\0")
        cid: str | None = str(a["cid"])
        cid_raw: bytes | None = _raw(r["cid"])
        input_keys: bytes | None = b"".join(bytes(k) for k in r["inputs"])  # type: ignore[attr-defined]
    else:
        action, source, target = str(a["transition"]), int(r["source"]), int(r["target"])  # type: ignore[call-overload]
        action_raw = _raw(r["transition"])
        cid = cid_raw = input_keys = None
    return (
        e.block,
        e.log_index,
        e.tx_hash,
        e.timestamp,
        vkey,
        str(a["artefact"]),
        str(a["digest"]),
        cid,
        str(a["recordCid"]),
        action,
        source,
        target,
        str(a["actor"]),
        str(int(r["roles"])),  # type: ignore[call-overload]
        action_raw,
        _raw(r["recordCid"]),
        cid_raw,
        input_keys,
    )


@lru_cache(maxsize=1 << 16)
def _cid_text(raw: bytes) -> str:
    """A binary CID's text (many rows share a record: each is converted once)."""
    from proml_cli.ledger._client import cid_text

    return cid_text(raw)


def _cid_bytes(cid: str | None) -> bytes | None:
    """A CID's binary form (what rows are looked up by: the text is never served)."""
    if cid is None:
        return None
    from proml_cli.content import cid_to_bytes

    return cid_to_bytes(cid)


def _matches(vkey: bytes, artefact: str, digest: str) -> bool:
    """Whether a row's artefact and digest are the ones its version key was made from."""
    return _key_of(artefact, digest) == bytes(vkey)


@lru_cache(maxsize=1 << 16)
def _key_of(artefact: str, digest: str) -> bytes | None:
    """The version key of an artefact's name and a digest (hex); None if not ones the chain holds.

    A version's registration and transitions share it: each is computed once.
    """
    from proml_cli.errors import InputError
    from proml_cli.ledger._client import digest32, name32

    try:
        return version_key_of(name32(artefact), digest32(digest))
    except InputError:
        return None


def _event(row: Sequence[Any], refs: dict[bytes, dict[str, str]]) -> ChainEvent | None:
    """A step row as the :class:`ChainEvent` a full decode gives (args and raw).

    What is shown is derived from the fields the step-chain head covers (CIDs from their
    binary form, a transition's name from its word); a row whose artefact and digest are not
    those of its version key is not served (None).
    """
    from proml_cli.ledger._client import text32

    (
        block,
        log_index,
        tx_hash,
        stamp,
        vkey,
        artefact,
        digest,
        _cid,
        _record_cid,
        action,
        source,
        target,
        actor,
        roles,
        action_raw,
        record_raw,
        cid_raw,
        input_keys,
    ) = row
    if not _matches(vkey, str(artefact), str(digest)):
        return None
    try:
        record_text = _cid_text(bytes(record_raw))
        cid_text_ = _cid_text(bytes(cid_raw)) if action == "register" else ""
    except ProMLError:
        return None  # not a CID: no event of the contract has it
    roles_int = int(roles)
    raw: dict[str, object] = {
        "actor": actor,
        "roles": roles_int,
        "recordCid": bytes(record_raw),
    }
    args: dict[str, object] = {
        "artefact": artefact,
        "digest": digest,
        "actor": actor,
        "roles": roles_int,
        "recordCid": record_text,
    }
    if action == "register":
        name = "Registered"
        keys = [bytes(input_keys[i : i + 32]) for i in range(0, len(input_keys or b""), 32)]
        raw.update(cid=bytes(cid_raw or b""), inputs=keys)
        args.update(cid=cid_text_, inputs=[refs.get(k) for k in keys])
    else:
        name = "Transitioned"
        raw.update(transition=bytes(action_raw), source=int(source), target=int(target))
        args.update(transition=text32(bytes(action_raw)), source=int(source), target=int(target))
    return ChainEvent(name, int(block), int(stamp), str(tx_hash), int(log_index), args, raw)
