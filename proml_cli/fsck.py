"""``proml fsck``: check everything under ``.proml/`` and say what is wrong and what to do.

What is checked, area by area:

* ``project``: ``project.json`` reads back as ``init`` wrote it.
* ``keys``: every keystore is a V3 keystore, readable by its owner only.
* ``journal``: every entry in ``pending/``, ``done/`` and ``refused/`` reads back (shape, name,
  record CID); unreadable ones can be moved to ``quarantine/`` like ``sync`` does.
* ``content``: every block file hashes to its name; every pack index entry lies inside its pack
  and its bytes hash to its digest; packs whose blocks nothing references (left by an import
  that was killed) can be reclaimed; temporary files can be removed.
* ``chain`` (embedded backend): SQLite's ``integrity_check``, the tables, the genesis entry, the
  head block and its state; every block against its header (hash, parent, transactions and
  receipts roots); the event index (table ``logs``) against the logs in those receipts, and the
  history index (tables ``hist_*``) against a fresh decode of the event index.

Repairs are the safe ones only: quarantine (never delete) a bad journal entry, remove temporary
files and orphan packs (never a pack an import holds open, nor one changed within
``grace`` seconds), tighten a keystore's mode, and rebuild the two indexes from the chain's
blocks (then check them again). Everything else needs a person (a backup): damage to the
blocks themselves is reported, never "repaired".
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_cli.errors import ProMLError
from proml_cli.settings import LOCK_TIMEOUT

if TYPE_CHECKING:
    import sqlite3

    from proml_cli.content._local import EmbeddedStore
    from proml_cli.project import Project

logger = logging.getLogger(__name__)

#: Temporary files and packs changed this recently may belong to a proml process still at
#: work (between storing a product and journaling its record): never removed (seconds).
GRACE = 600.0

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Finding:
    """One thing wrong under ``.proml/``.

    Attributes:
        area: ``project``, ``keys``, ``journal``, ``content`` or ``chain``.
        path: the file concerned, relative to the project's directory.
        problem: what is wrong with it.
        repair: what ``--repair`` does about it, or None when it needs a person.
        repaired: whether ``--repair`` did it in this run.
    """

    area: str
    path: str
    problem: str
    repair: str | None = None
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        """The finding as JSON."""
        return {
            "area": self.area,
            "path": self.path,
            "problem": self.problem,
            "repair": self.repair,
            "repaired": self.repaired,
        }


@dataclass
class Report:
    """What ``fsck`` found: findings, and how many items of each area it checked."""

    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        """True when nothing is left wrong (everything found was repaired, or nothing was)."""
        return all(f.repaired for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "clean": self.is_clean,
            "findings": [f.to_json() for f in self.findings],
            "checked": self.checked,
            "notes": self.notes,
        }


class _Checker:
    """One fsck run over one project directory."""

    def __init__(
        self,
        root: Path,
        project: Project | None,
        *,
        repair: bool,
        grace: float,
        now: float,
        lock_timeout: float,
    ) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self.state = root / ".proml"
        self.project = project
        self.is_repair = repair
        self.grace = grace
        self.now = now
        self.report = Report()

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def find(self, area: str, path: Path, problem: str, repair: str | None = None) -> Finding:
        finding = Finding(area, self.rel(path), problem, repair)
        self.report.findings.append(finding)
        return finding

    def count(self, area: str, n: int = 1) -> None:
        self.report.checked[area] = self.report.checked.get(area, 0) + n

    def is_recent(self, path: Path) -> bool:
        try:
            return self.now - path.lstat().st_mtime < self.grace
        except FileNotFoundError:
            return False

    def remove_temp(self, area: str, path: Path, what: str) -> None:
        if self.is_recent(path):
            self.report.notes.append(f"{self.rel(path)}: {what} changed recently, left alone")
            return
        finding = self.find(area, path, what, "remove it")
        if self.is_repair:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            finding.repaired = True

    # ------------------------------------------------------------------ project.json, keys

    def check_project(self) -> None:
        from proml_cli.project import PROJECT_FILE, read_state

        for tmp in sorted(self.state.glob("*.tmp")):
            self.remove_temp("project", tmp, "temporary file of an interrupted write")
        path = self.state / PROJECT_FILE
        self.count("project")
        if not path.exists() and not path.is_symlink():
            self.find("project", path, "missing: the project was never initialised (proml init)")
            return
        try:
            read_state(path)
        except ProMLError as exc:
            self.find("project", path, _strip(exc.diagnosis, self.rel(path)))

    def check_keys(self) -> None:
        from proml_cli.account import keys_dir, read_keystore

        directory = keys_dir(self.state)
        if not directory.is_dir():
            return
        for path in sorted(directory.iterdir()):
            if path.name.endswith(".tmp"):
                self.remove_temp("keys", path, "temporary file")
                continue
            if path.suffix != ".json":
                continue
            self.count("keys")
            try:
                read_keystore(path)
            except ProMLError as exc:
                self.find("keys", path, _strip(exc.diagnosis, self.rel(path)))
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                finding = self.find(
                    "keys", path, f"readable by others (mode {mode:04o})", "chmod 0600"
                )
                if self.is_repair:
                    path.chmod(0o600)
                    finding.repaired = True

    # ------------------------------------------------------------------ journal

    def check_journal(self) -> None:
        from proml_cli.journal import QUARANTINE, STATES, Journal, read_entry

        journal_dir = self.state / "journal"
        journal = Journal(journal_dir)
        for state in STATES:
            directory = journal_dir / state
            if directory.exists() and not directory.is_dir():
                self.find("journal", directory, "is not a directory")
                continue
            for path in sorted(directory.iterdir()) if directory.is_dir() else []:
                if path.name.endswith(".tmp"):
                    self.remove_temp("journal", path, "temporary file of an interrupted write")
                    continue
                if path.suffix != ".json":
                    continue
                self.count("journal")
                try:
                    read_entry(path)
                except ValueError as exc:
                    finding = self.find(
                        "journal", path, str(exc), f"move it to journal/{QUARANTINE}/"
                    )
                    if self.is_repair:
                        journal.quarantine(path, str(exc))
                        finding.repaired = True
        set_aside = journal_dir / QUARANTINE
        if set_aside.is_dir():
            kept = list(set_aside.glob("*.json"))
            if kept:
                self.report.notes.append(
                    f"{len(kept)} journal entr{'y' if len(kept) == 1 else 'ies'} set aside in "
                    f"{self.rel(set_aside)} (see the .why files)"
                )

    # ------------------------------------------------------------------ content store

    def check_content(self) -> None:
        from proml_cli.content._local import EmbeddedStore

        content = self.state / "content"
        if not content.exists():
            return
        if not content.is_dir():
            self.find("content", content, "is not a directory")
            return
        store = EmbeddedStore(content)
        self._check_blocks(content / "blocks")
        tmp = content / "tmp"
        if tmp.is_dir():
            for path in sorted(tmp.iterdir()):
                self.remove_temp("content", path, "temporary file of an interrupted write")
        packs = self._check_packs(content / "packs")
        if packs:
            self._reclaim_orphans(store, packs)

    def _check_blocks(self, blocks: Path) -> None:
        if not blocks.exists():
            return
        if not blocks.is_dir():
            self.find("content", blocks, "is not a directory")
            return
        for shard in sorted(blocks.iterdir()):
            if not shard.is_dir() or not re.fullmatch(r"[0-9a-f]{2}", shard.name):
                self.find("content", shard, "is not a block shard directory")
                continue
            for path in sorted(shard.iterdir()):
                self.count("blocks")
                if not _HEX64.match(path.name) or path.name[:2] != shard.name:
                    self.find("content", path, "is not named as a block is")
                    continue
                if not path.is_file() or path.is_symlink():
                    self.find("content", path, "is not a regular file")
                    continue
                if _sha256_file(path) != path.name:
                    self.find(
                        "content",
                        path,
                        "does not hash to its name (the block was altered or torn)",
                    )

    def _check_packs(self, packs: Path) -> dict[Path, list[bytes]]:
        """Check each pack and its index; return each usable pack's indexed digests."""
        from proml_cli.content._local import _INDEX_ENTRY, _MAX_BLOCK

        found: dict[Path, list[bytes]] = {}
        if not packs.exists():
            return found
        if not packs.is_dir():
            self.find("content", packs, "is not a directory")
            return found
        names = {p.name for p in packs.iterdir()}
        for name in sorted(names):
            path = packs / name
            if name.endswith(".pack") and name.removesuffix(".pack") + ".idx" not in names:
                self._pack_finding(path, "has no index (nothing can find its blocks)")
            if not name.endswith(".idx"):
                continue
            pack = path.with_suffix(".pack")
            self.count("packs")
            if pack.name not in names:
                self.find("content", path, f"indexes {pack.name}, which is missing")
                continue
            raw = path.read_bytes()
            size = pack.stat().st_size
            if len(raw) % _INDEX_ENTRY.size:
                self.find(
                    "content",
                    path,
                    f"ends in a torn entry ({len(raw) % _INDEX_ENTRY.size} stray bytes; "
                    "ignored when read)",
                )
            usable = len(raw) - len(raw) % _INDEX_ENTRY.size
            digests = []
            bad = 0
            with pack.open("rb") as handle:
                for digest, offset, length in _INDEX_ENTRY.iter_unpack(raw[:usable]):
                    digests.append(digest)
                    if length > _MAX_BLOCK or offset + length > size:
                        bad += 1
                        continue
                    handle.seek(offset)
                    if hashlib.sha256(handle.read(length)).digest() != digest:
                        bad += 1
            if bad:
                self.find(
                    "content",
                    pack,
                    f"{bad} of its {len(digests)} block(s) are damaged (cut short, or bytes that "
                    "do not hash to their digest)",
                )
            found[pack] = digests
        return found

    def _pack_finding(self, pack: Path, problem: str) -> None:
        if self.is_recent(pack):
            self.report.notes.append(f"{self.rel(pack)}: {problem}; changed recently, left alone")
            return
        finding = self.find("content", pack, problem, "remove it")
        if self.is_repair and not _in_use(pack):
            pack.unlink(missing_ok=True)
            finding.repaired = True

    def _reclaim_orphans(self, store: EmbeddedStore, packs: dict[Path, list[bytes]]) -> None:
        """Find (and with --repair remove) packs none of whose blocks anything references."""
        roots, why_not = self._roots()
        if why_not is not None:
            self.report.notes.append(f"orphan packs not looked for: {why_not}")
            return
        live = _reachable(store, roots)
        for pack, digests in packs.items():
            if any(d in live for d in digests):
                continue
            size = pack.stat().st_size
            problem = (
                f"an orphan pack ({_size(size)}): no recorded or journaled content uses its "
                f"{len(digests)} block(s) (an import that was interrupted)"
            )
            if _in_use(pack) or self.is_recent(pack):
                self.report.notes.append(f"{self.rel(pack)}: {problem}; in use, left alone")
                continue
            finding = self.find("content", pack, problem, "remove it and its index")
            if self.is_repair:
                pack.with_suffix(".idx").unlink(missing_ok=True)
                pack.unlink(missing_ok=True)
                finding.repaired = True

    def _roots(self) -> tuple[set[str], str | None]:
        """Every CID the project references: journal entries, their records, the ledger's."""
        from proml_cli.journal import STATES, read_entry

        roots: set[str] = set()
        for state in STATES:
            directory = self.state / "journal" / state
            for path in directory.glob("*.json") if directory.is_dir() else []:
                try:
                    entry = read_entry(path)
                except ValueError:
                    continue
                roots.add(entry.record_cid)
                roots.update(r.cid for r in entry.registrations)
                roots.update(_cids_in(entry.record))
        if self.project is None:
            return roots, "the policy could not be loaded, so the ledger could not be read"
        if any(f.area == "chain" and not f.repaired for f in self.report.findings):
            # What the ledger would list could be wrong: a pack it misses is not an orphan.
            return roots, "the chain's database is damaged (see above)"
        from proml_cli.content import open_store
        from proml_cli.record import parse_record

        try:
            with self.project.ledger() as ledger:
                events = ledger.history()
        except ProMLError as exc:
            return roots, f"the ledger could not be read ({exc.diagnosis})"
        store = open_store("embedded", root=self.state / "content")
        for event in events:
            for key in ("cid", "recordCid"):
                value = event.args.get(key)
                if isinstance(value, str):
                    roots.add(value)
            record_cid = event.args.get("recordCid")
            if isinstance(record_cid, str):
                try:
                    roots.update(_cids_in(parse_record(store.cat(record_cid), cid=record_cid)))
                except ProMLError:
                    continue
        return roots, None

    # ------------------------------------------------------------------ chain

    def check_chain(self) -> None:
        chain_dir = self.state / "chain"
        if self.project is not None and self.project.chain_backend() != "embedded":
            return
        if not chain_dir.exists():
            if (self.state / "project.json").is_file():
                self.find(
                    "chain",
                    chain_dir / "chain.sqlite",
                    "missing, but project.json says the project was initialised: restore it "
                    "from a backup",
                )
            return
        if not chain_dir.is_dir():
            self.find("chain", chain_dir, "is not a directory")
            return
        from proml_cli.ledger._embedded import DB_NAME, LOCK_NAME

        lock = chain_dir / LOCK_NAME
        if lock.is_symlink() or (lock.exists() and not lock.is_file()):
            self.find("chain", lock, "is not a regular file (remove it while no proml runs)")
            return
        path = chain_dir / DB_NAME
        self.count("chain")
        if not path.exists():
            if (self.state / "project.json").is_file():
                self.find(
                    "chain",
                    path,
                    "missing, but project.json says the project was initialised: restore it "
                    "from a backup",
                )
            return
        problems = _chain_problems(chain_dir, path, self.lock_timeout)
        for problem in problems:
            self.find("chain", path, problem)
        if problems or not self._check_indexes(chain_dir, path):
            return
        # Its blocks are intact: each is executed again, so a state no transaction produced
        # (a block of someone's making, every trie node hashing right) is found too.
        for problem in _replay_problems(chain_dir, path, self.lock_timeout):
            self.find("chain", path, problem)

    def _check_indexes(self, chain_dir: Path, path: Path) -> bool:
        """The event and history indexes against the chain's blocks; rebuilt with --repair.

        Returns whether the chain's blocks are intact (their headers, transactions, receipts).
        """
        from proml_cli.project import PROJECT_FILE, read_state

        try:
            address: str | None = read_state(self.state / PROJECT_FILE).ledger
        except ProMLError:
            address = None
            self.report.notes.append(
                "the history index was not checked: project.json does not name the ledger"
            )
        repair = "rebuild it from the chain's blocks"
        try:
            found = _index_problems(chain_dir, path, address, self.lock_timeout, repair=False)
        except ProMLError as exc:
            # The chain's own blocks are damaged: no index can be rebuilt from them.
            self.find("chain", path, _after_path(exc.diagnosis))
            return False
        findings = [self.find("chain", path, problem, repair) for problem in found]
        if not (found and self.is_repair):
            return True
        try:
            left = _index_problems(chain_dir, path, address, self.lock_timeout, repair=True)
        except ProMLError as exc:
            self.find("chain", path, f"not repaired: {_after_path(exc.diagnosis)}")
            return False
        for finding in findings:
            finding.repaired = not left
        for problem in left:
            self.find("chain", path, f"still after the rebuild: {problem}")
        return True


def check(
    root: Path,
    project: Project | None = None,
    *,
    repair: bool = False,
    grace: float = GRACE,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Report:
    """Check the ``.proml/`` directory of the project in ``root``; repair what is safe.

    Args:
        root: the project's directory (the one holding ``proml.yaml`` and ``.proml/``).
        project: the loaded project, when its policy is valid (needed to read the ledger:
            without it, orphan packs are not looked for).
        repair: quarantine bad journal entries, remove temporary files and orphan packs,
            tighten keystore modes, rebuild the chain's event and history indexes.
        grace: temporary files and packs changed within this many seconds are left alone.
        lock_timeout: seconds to wait for the embedded chain's lock held by another process.

    Returns:
        The report; :attr:`Report.is_clean` is False while something is left wrong.
    """
    checker = _Checker(
        root, project, repair=repair, grace=grace, now=time.time(), lock_timeout=lock_timeout
    )
    checker.check_project()
    checker.check_keys()
    checker.check_journal()
    checker.check_chain()
    checker.check_content()
    return checker.report


# ---------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _locked_chain(chain_dir: Path, path: Path, lock_timeout: float) -> Iterator[sqlite3.Connection]:
    """The chain database, connected under the chain's lock; closed and released afterwards."""
    from proml_cli.ledger._embedded import _connect, _lock

    lock = _lock(chain_dir, lock_timeout)
    try:
        conn = _connect(path, must_exist=True)
        try:
            yield conn
        finally:
            conn.close()
    finally:
        lock.release()


def _chain_problems(chain_dir: Path, path: Path, lock_timeout: float) -> list[str]:
    """What is wrong with the embedded chain's database (under its lock)."""
    from proml_cli.errors import InputError
    from proml_cli.ledger._embedded import _open_tester

    try:
        with _locked_chain(chain_dir, path, lock_timeout) as conn:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
            if rows != ["ok"]:
                return [f"SQLite integrity check: {'; '.join(rows[:3])}"]
            # Opening checks the genesis entry, the head block and its state.
            _open_tester(conn, path, must_exist=True)
    except InputError as exc:
        return [_after_path(exc.diagnosis)]
    return []


def _replay_problems(chain_dir: Path, path: Path, lock_timeout: float) -> list[str]:
    """Blocks that do not follow from executing the chain again (under its lock)."""
    from proml_cli.ledger._embedded import _open_tester, replay_problems

    with _locked_chain(chain_dir, path, lock_timeout) as conn:
        return replay_problems(_open_tester(conn, path, must_exist=True).backend.chain)


def _index_problems(
    chain_dir: Path, path: Path, address: str | None, lock_timeout: float, *, repair: bool
) -> list[str]:
    """What is wrong with the chain's indexes (after rebuilding them, with ``repair``).

    With the ledger's address, the ledger checks both indexes; without it, only the event
    index (the history index is decoded with the contract's interface at that address).

    Raises:
        ChainDatabaseError: the chain's own block data is damaged.
    """
    from proml_cli.ledger import _embedded

    if address is not None:
        ledger = _embedded.open_embedded(
            chain_dir, signer=None, address=address, lock_timeout=lock_timeout
        )
        try:
            if repair:
                ledger.rebuild_index()
            return ledger.index_problems()
        finally:
            ledger.close()
    with _locked_chain(chain_dir, path, lock_timeout) as conn:
        chain = _embedded._open_tester(conn, path, must_exist=True).backend.chain
        if repair:
            conn.execute("BEGIN IMMEDIATE")
            _embedded.rebuild_log_index(conn, chain, path)
            conn.execute("COMMIT")
        return _embedded.log_index_problems(conn, chain, path)


def _reachable(store: EmbeddedStore, roots: Iterable[str]) -> set[bytes]:
    """The digests of every stored block reachable from ``roots``."""
    from proml_cli.content._unixfs import CODEC_DAG_PB, Cid, decode_pb_node

    live: set[bytes] = set()
    stack = []
    for text in roots:
        try:
            stack.append(Cid.parse(text))
        except ProMLError:
            continue
    while stack:
        cid = stack.pop()
        if cid.digest in live:
            continue
        live.add(cid.digest)
        if cid.codec != CODEC_DAG_PB:
            continue
        try:
            block = store.read_block(cid)
            links = decode_pb_node(block).links
        except ProMLError:
            continue  # missing or damaged: reported by the block and pack checks
        stack.extend(link.cid for link in links)
    return live


def _cids_in(document: object) -> Iterator[str]:
    """Every string under a ``cid`` key in a record, at any depth."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "cid" and isinstance(value, str):
                yield value
            else:
                yield from _cids_in(value)
    elif isinstance(document, list):
        for item in document:
            yield from _cids_in(item)


def _in_use(pack: Path) -> bool:
    from proml_cli.content._local import is_pack_in_use

    return is_pack_in_use(pack)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _strip(diagnosis: str, shown: str) -> str:
    """A diagnosis without the path it starts with (the finding names the path already)."""
    for prefix in (shown, f"keystore {shown}"):
        if diagnosis.startswith(prefix):
            return diagnosis[len(prefix) :].lstrip(": ") or diagnosis
    return diagnosis


def _after_path(diagnosis: str) -> str:
    """``the chain database X is damaged: why`` → ``damaged: why`` (the path is the finding's)."""
    marker = "chain.sqlite "
    return diagnosis.split(marker, 1)[1] if marker in diagnosis else diagnosis


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"
