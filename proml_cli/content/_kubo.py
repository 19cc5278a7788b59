"""The network content store: any IPFS node speaking the Kubo RPC API, never trusted.

Every byte proml stores goes first into the local embedded store (which computes the CID
itself, in the same read pass as the sha256) and then to the node:

* files and directories are uploaded with ``/api/v0/add`` (multipart, streamed from disk) with
  the configured CID version; the node computes its own CID, which must equal proml's — a node
  that answers anything else is an error, never a fact;
* content the node already pins is not uploaded again, but a pin is believed only when the node
  also returns the root block and it rehashes to the CID (``/api/v0/pin/ls`` + ``block/get``);
  a ``dag/import`` is believed the same way;
* reads fetch the DAG with ``/api/v0/dag/export`` (a CAR stream) into the local store, and every
  block is checked against its CID before it is kept; reads then come from the local store.

The node is never trusted for presence: what proml writes is durable in the local store first.
When the node is unreachable, or lies (a wrong CID, a pin it cannot back, a refused upload), the
content stays local, its CID is queued in ``unpushed`` and a warning names the node; ``proml
sync`` retries. Nothing is lost, and nothing the node said is kept.

The HTTP client is httpx: ipfshttpclient (last release 2021) refuses every current daemon.
"""

from __future__ import annotations

import logging
import os
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from proml_cli.content import DEFAULT_CAT_LIMIT, ProgressCallback, StoredContent
from proml_cli.content._car import CarReader
from proml_cli.content._local import EmbeddedStore
from proml_cli.content._unixfs import Cid
from proml_cli.errors import BackendUnavailable, ContentError, ContentNotFoundError, InputError

logger = logging.getLogger(__name__)

#: Seconds to wait for a node's answer (``storage.timeout``); an upload streams within it per read.
DEFAULT_TIMEOUT = 20.0
#: Seconds to wait for a TCP connection: a reachable node accepts at once.
CONNECT_TIMEOUT = 5.0
#: Seconds a node that does not pin a CID gets to find it (in its cache or from its peers)
#: before ``fetch`` says it does not have it; kubo would otherwise search its peers for minutes.
MISSING_TIMEOUT = 10.0


class KuboStore:
    """A :class:`proml_cli.content.ContentStore` over a Kubo RPC API node plus a local cache."""

    def __init__(self, root: Path, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.local = EmbeddedStore(root)
        #: CIDs this store kept only locally because the node was unreachable or misbehaved.
        self.deferred: list[str] = []
        #: What the node got wrong in this process, one line each, naming the node.
        self.problems: list[str] = []
        self.url = url.rstrip("/")
        self.timeout = timeout
        # Set once the node failed to answer: every later call fails at once, so one command
        # waits for a hung node once (storage.timeout), not once per file it stores.
        self._down: BackendUnavailable | None = None
        self._client = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        )
        # Callers hold a store for as long as they need it and drop it (the ContentStore
        # protocol has no close): close the pooled connections when the store goes, so no
        # socket is left to the garbage collector (a ResourceWarning, an error in the tests).
        self._closer = weakref.finalize(self, self._client.close)

    def close(self) -> None:
        """Close the connections to the node; the store is unusable afterwards."""
        self._closer()

    def __enter__(self) -> KuboStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _unreachable(self, endpoint: str, exc: httpx.TransportError) -> BackendUnavailable:
        """Remember that the node is down and say so (exit 3)."""
        why = "no answer" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
        waited = f" within {self.timeout:g} s" if isinstance(exc, httpx.ReadTimeout) else ""
        self._down = BackendUnavailable(
            f"cannot reach the IPFS node at {self.url} ({endpoint}: {why}{waited})",
            hint="check storage.ipfs / PROML_IPFS_URL (storage.timeout bounds the wait); "
            "content stays in the local store until `proml push`",
        )
        return self._down

    def _check_up(self) -> None:
        if self._down is not None:
            raise BackendUnavailable(self._down.diagnosis, hint=self._down.hint)

    def _post(self, endpoint: str, **kwargs: Any) -> httpx.Response:
        self._check_up()
        try:
            reply = self._client.post(f"/api/v0/{endpoint}", **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(endpoint, exc) from exc
        if reply.status_code >= 400:
            raise ContentError(f"the IPFS node at {self.url} refused {endpoint}: {_message(reply)}")
        return reply

    @contextmanager
    def _stream(
        self, endpoint: str, params: dict[str, str], *, timeout: float | None = None
    ) -> Iterator[httpx.Response]:
        self._check_up()
        wait = self.timeout if timeout is None else timeout
        limits = httpx.Timeout(wait, connect=min(CONNECT_TIMEOUT, wait))
        try:
            with self._client.stream(
                "POST", f"/api/v0/{endpoint}", params=params, timeout=limits
            ) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    raise ContentError(
                        f"the IPFS node at {self.url} refused {endpoint}: {_message(reply)}"
                    )
                yield reply
        except httpx.TransportError as exc:
            raise self._unreachable(endpoint, exc) from exc

    # ------------------------------------------------------------------ node queries

    def is_pinned(self, cid: str) -> bool:
        """Whether the node pins ``cid`` and proves it holds it (its root block rehashes).

        ``pin/ls`` alone is a claim: a node answering "pinned" for everything would make proml
        skip every upload. The claim counts only when ``block/get`` returns the root block and
        it hashes to the CID.
        """
        self._check_up()
        try:
            reply = self._client.post("/api/v0/pin/ls", params={"arg": cid})
        except httpx.TransportError as exc:
            raise self._unreachable("pin/ls", exc) from exc
        if reply.status_code >= 400:
            return False  # kubo answers 500 "not pinned"
        keys = _objects(reply.text, "pin/ls")[-1].get("Keys") or {}
        if not isinstance(keys, dict):
            raise ContentError(f"unexpected answer from the IPFS node to pin/ls: {keys!r:.200}")
        wanted = Cid.parse(cid)
        if not any(_same(k, wanted) for k in keys):
            return False
        if self._holds_root(cid):
            return True
        self._note(
            f"the IPFS node at {self.url} says it pins {cid} but does not return its root "
            "block: its pin list is not believed"
        )
        return False

    def _holds_root(self, cid: str) -> bool:
        """Whether the node returns the root block of ``cid``, rehashing to it."""
        try:
            reply = self._client.post("/api/v0/block/get", params={"arg": cid})
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach the IPFS node at {self.url}") from exc
        return reply.status_code < 400 and Cid.parse(cid).matches(reply.content)

    def _note(self, problem: str) -> None:
        logger.warning("%s", problem)
        self.problems.append(problem)

    def _check_returned(self, returned: str, expected: str) -> None:
        if not _same(returned, Cid.parse(expected)):
            raise ContentError(
                f"the IPFS node at {self.url} returned CID {returned} for content whose CID "
                f"is {expected}: the node is misconfigured or lying; nothing was trusted"
            )

    # ------------------------------------------------------------------ writing

    def put_path(
        self,
        path: Path,
        *,
        cid_version: int = 1,
        allow_symlinks: bool = False,
        progress: ProgressCallback | None = None,
    ) -> StoredContent:
        """Store locally (one read pass), then add to the node and compare its CID with ours."""
        stored = self.local.put_path(
            path, cid_version=cid_version, allow_symlinks=allow_symlinks, progress=progress
        )
        try:
            if not self.is_pinned(stored.cid):
                self._check_returned(self._add(path, cid_version), stored.cid)
        except (BackendUnavailable, ContentError) as exc:
            # Stored locally already: an unreachable or lying node costs a retry, not the data.
            self._defer(stored.cid, exc)
        return stored

    def put_bytes(self, data: bytes) -> str:
        """Store a record locally, then on the node; the node's CID must equal ours.

        The node's failures never raise: the record is in the local store and queued for
        ``flush`` (see :meth:`_defer`).
        """
        cid = self.local.put_bytes(data)
        try:
            self._add_bytes(cid, data)
        except (BackendUnavailable, ContentError) as exc:
            self._defer(cid, exc)
        return cid

    def _add_bytes(self, cid: str, data: bytes) -> None:
        if not self.is_pinned(cid):
            reply = self._post(
                "add",
                params={"cid-version": "1", "raw-leaves": "true", "pin": "true"},
                files={"file": ("record.json", data, "application/octet-stream")},
            )
            self._check_returned(_last_hash(reply.text), cid)

    # ------------------------------------------------------------------ deferred uploads

    @property
    def _queue(self) -> Path:
        return self.local.root / "unpushed"

    def _defer(self, cid: str, exc: BackendUnavailable | ContentError) -> None:
        """The node is down or misbehaved: the bytes are safe locally; push them later."""
        if isinstance(exc, ContentError):
            self.problems.append(exc.diagnosis)
        logger.warning("%s; %s kept in the local store until `proml sync`", exc.diagnosis, cid)
        self._queue.parent.mkdir(parents=True, exist_ok=True)
        with self._queue.open("a") as handle:
            handle.write(cid + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.deferred.append(cid)

    def unpushed(self) -> list[str]:
        """CIDs stored locally while the node was unreachable, oldest first."""
        if not self._queue.exists():
            return []
        return list(
            dict.fromkeys(
                line.strip() for line in self._queue.read_text().splitlines() if line.strip()
            )
        )

    def flush(self) -> list[str]:
        """Push every deferred CID to the node; return those pushed.

        Content the node mishandles (a wrong root, an import it cannot back) stays queued and
        is reported once every other item was tried.

        Raises:
            BackendUnavailable: the node is unreachable (what was not pushed stays queued).
            ContentError: the node misbehaved for some items (they stay queued).
        """
        done: list[str] = []
        failed: list[str] = []
        reasons: list[str] = []
        pending = self.unpushed()
        try:
            for cid in pending:
                try:
                    self.push(cid)
                except ContentError as exc:
                    failed.append(cid)
                    reasons.append(exc.diagnosis)
                    continue
                done.append(cid)
        finally:
            left = [cid for cid in pending if cid not in done]
            if left:
                tmp = self._queue.with_suffix(".tmp")
                tmp.write_text("".join(cid + "\n" for cid in left))
                os.replace(tmp, self._queue)
            else:
                self._queue.unlink(missing_ok=True)
        if reasons:
            raise ContentError(
                f"{len(failed)} item(s) were not taken by the IPFS node at {self.url} and stay "
                f"in the local store, queued: {reasons[0]}",
                hint="run `proml sync` again once the node is fixed; nothing was lost",
            )
        return done

    def _add(self, path: Path, cid_version: int) -> str:
        params = {"cid-version": str(cid_version), "pin": "true", "quieter": "false"}
        if cid_version == 1:
            params["raw-leaves"] = "true"
        with ExitStack() as stack:
            files: list[tuple[str, tuple[str, IO[bytes] | bytes, str]]] = []
            if path.is_dir():
                base = path.name
                files.append(("file", (base, b"", "application/x-directory")))
                for current, dirs, names in os.walk(path):
                    dirs.sort()
                    rel = Path(current).relative_to(path.parent).as_posix()
                    for d in dirs:
                        files.append(
                            ("file", (quote(f"{rel}/{d}"), b"", "application/x-directory"))
                        )
                    for name in sorted(names):
                        handle = stack.enter_context((Path(current) / name).open("rb"))
                        files.append(
                            ("file", (quote(f"{rel}/{name}"), handle, "application/octet-stream"))
                        )
            else:
                handle = stack.enter_context(path.open("rb"))
                files.append(("file", (quote(path.name), handle, "application/octet-stream")))
            # httpx streams file objects part by part: a multi-GB file is never held in memory.
            reply = self._post("add", params=params, files=files)
        return _last_hash(reply.text)

    def push(self, cid: str) -> bool:
        """Send locally stored content to the node as a CAR (same CIDs); False if it was pinned."""
        if self.is_pinned(cid):
            return False
        with tempfile.TemporaryDirectory(prefix="proml-push-") as tmp:
            car = Path(tmp) / "content.car"
            self.local.export_car(cid, car)
            with car.open("rb") as handle:
                reply = self._post(
                    "dag/import",
                    params={"pin-roots": "true"},
                    files={"file": ("content.car", handle, "application/octet-stream")},
                )
        root = _import_root(reply.text)
        self._check_returned(root, cid)
        if not self._holds_root(cid):
            raise ContentError(
                f"the IPFS node at {self.url} acknowledged dag/import of {cid} but does not "
                "return its root block: nothing it said was trusted"
            )
        return True

    # ------------------------------------------------------------------ reading

    def fetch(self, cid: str) -> None:
        """Copy the DAG under ``cid`` into the local store, checking every block's hash."""
        is_repair = False
        if self.local.has(cid):
            try:
                self.local.check(cid)
                return
            except ContentError:
                logger.warning("local copy of %s is damaged: fetching it again", cid)
                is_repair = True
        # A node that does not pin the CID may still hold it in its cache or find it on its
        # peers, but only a short, bounded search is worth waiting for: no answer in time, a
        # refusal or an incomplete DAG then means it does not have it. A block that does not
        # hash to its CID stays what it is: a lying node.
        is_pinned = self.is_pinned(cid)
        params = {"arg": cid}
        if not is_pinned:
            params["timeout"] = f"{MISSING_TIMEOUT:g}s"  # the node's own search deadline
        with tempfile.TemporaryDirectory(prefix="proml-fetch-") as tmp:
            car = Path(tmp) / "fetch.car"
            try:
                self._download(params, None if is_pinned else MISSING_TIMEOUT + 2, car)
            except (BackendUnavailable, ContentError) as exc:
                if is_pinned:
                    raise
                raise self._not_found(cid) from exc
            self._keep(car, is_repair=is_repair)
        if not is_pinned:
            try:
                self.local.check(cid)
            except ContentError as exc:
                raise self._not_found(cid) from exc
        self.local.check(cid)

    def _not_found(self, cid: str) -> ContentNotFoundError:
        self._down = None  # it answered pin/ls: the node is up, the content is not there
        return ContentNotFoundError(
            f"the IPFS node at {self.url} does not have {cid} (not pinned there, not found "
            f"within {MISSING_TIMEOUT:g} s)"
        )

    def _download(self, params: dict[str, str], timeout: float | None, car: Path) -> None:
        """Write the node's CAR export of ``params["arg"]`` to ``car``."""
        with (
            self._stream("dag/export", params, timeout=timeout) as reply,
            car.open("wb") as out,
        ):
            for chunk in reply.iter_bytes():
                out.write(chunk)

    def _keep(self, car: Path, *, is_repair: bool) -> None:
        """Keep every block of ``car`` that hashes to its CID; refuse the CAR at the first other."""
        with CarReader(car) as reader:
            for block_cid, block in reader:
                if not block_cid.matches(block):
                    raise ContentError(
                        f"the IPFS node at {self.url} sent a block that does not hash to its "
                        f"CID {block_cid}"
                    )
                self.local.write_block(block_cid.digest, [block], len(block), is_repair=is_repair)

    def cat(self, cid: str, *, limit: int = DEFAULT_CAT_LIMIT) -> bytes:
        """Return a small file's bytes (fetched and verified block by block)."""
        self.fetch(cid)
        return self.local.cat(cid, limit=limit)

    def get(self, cid: str, dest: Path) -> None:
        """Write content to ``dest`` (fetched and verified, then assembled locally)."""
        self.fetch(cid)
        self.local.get(cid, dest)

    def has(self, cid: str) -> bool:
        """Whether the content is available: locally, or pinned by the node."""
        return self.local.has(cid) or self.is_pinned(cid)

    def check(self, cid: str) -> None:
        """Rehash every block of ``cid``; a local copy that no longer hashes is reported.

        Reads heal a damaged local copy from the node silently, but a check must expose it:
        a block rewritten in someone's store is tampering, even when the node's copy is fine.

        Raises:
            ContentError: the local copy was altered, or the node's copy is bad.
        """
        if self.local.has(cid):
            try:
                self.local.check(cid)
            except ContentError as exc:
                raise ContentError(
                    f"the local copy of {cid} was altered ({exc.diagnosis}); "
                    f"the IPFS node's copy is the one the ledger anchors"
                ) from exc
            return
        self.fetch(cid)

    def export_car(self, cid: str, dest: Path) -> None:
        """Export ``cid`` as a CAR v1 file."""
        self.fetch(cid)
        self.local.export_car(cid, dest)


def _same(text: str, cid: Cid) -> bool:
    """CIDs are equal as values: js-ipfs prints CIDv1 in base58btc where kubo prints base32."""
    try:
        return Cid.parse(text) == cid
    except InputError:
        return False


def _message(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:300]
    return str(body.get("Message", reply.text) if isinstance(body, dict) else body)[:300]


def _objects(body: str, endpoint: str) -> list[dict[str, Any]]:
    """The JSON objects of a (newline-delimited) answer; anything else is no Kubo RPC answer.

    Whatever listens at the URL is untrusted: an HTML page or a JSON list is a ContentError,
    never a crash.
    """
    import json

    try:
        objects = [json.loads(line) for line in body.splitlines() if line.strip()]
    except ValueError:
        objects = []
    if not objects or not all(isinstance(o, dict) for o in objects):
        raise ContentError(f"unexpected answer from the IPFS node to {endpoint}: {body[:200]}")
    return objects


def _last_hash(body: str) -> str:
    """The root's CID from ``add``'s newline-delimited JSON (the root is the last object)."""
    last = _objects(body, "add")[-1]
    if "Hash" not in last:
        raise ContentError(f"unexpected answer from the IPFS node to add: {body[:200]}")
    return str(last["Hash"])


def _import_root(body: str) -> str:
    for data in _objects(body, "dag/import"):
        root = data.get("Root")
        if isinstance(root, dict) and root:
            if root.get("PinErrorMsg"):
                raise ContentError(f"the IPFS node could not pin: {root['PinErrorMsg']}")
            cid = root.get("Cid")
            if isinstance(cid, dict) and "/" in cid:
                return str(cid["/"])
    raise ContentError(f"unexpected answer from the IPFS node to dag/import: {body[:200]}")


def open_kubo(root: Path, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> KuboStore:
    """Open the network store at ``url`` with its local cache in ``root``."""
    return KuboStore(root, url, timeout=timeout)
