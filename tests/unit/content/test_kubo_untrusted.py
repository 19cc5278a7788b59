"""The Kubo RPC store never trusts the node: a fake node (httpx.MockTransport) that lies.

Each test wires a handler in place of the node and checks that a wrong CID, a bad block, an
odd answer or a refusal is noticed (a warning naming the node while storing, the project's own
error while reading or pushing), that what proml stores stays in the local store and queued,
and that nothing the node made up lands in the local store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from proml_cli.content import hash_path
from proml_cli.content._car import write_car
from proml_cli.content._kubo import KuboStore
from proml_cli.content._unixfs import Cid, b58encode, raw_cid
from proml_cli.errors import BackendUnavailable, ContentError, ExitCode

NODE = "http://127.0.0.1:5001"

Handler = Callable[[httpx.Request], httpx.Response]


class FakeNode:
    """Answers per endpoint (``add``, ``pin/ls``, ...); records which endpoints were called."""

    def __init__(self, **answers: Handler) -> None:
        self.answers = {name.replace("_", "/"): answer for name, answer in answers.items()}
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.removeprefix("/api/v0/")
        self.calls.append(endpoint)
        if endpoint not in self.answers:
            return httpx.Response(404, json={"Message": f"no fake answer for {endpoint}"})
        return self.answers[endpoint](request)


def _store(root: Path, node: FakeNode) -> KuboStore:
    store = KuboStore(root, NODE)
    store.close()  # the real client is never used
    store._client = httpx.Client(base_url=NODE, transport=httpx.MockTransport(node))
    return store


def _not_pinned(_: httpx.Request) -> httpx.Response:
    # What kubo and js-ipfs answer for content they do not pin.
    return httpx.Response(500, json={"Message": "path is not pinned", "Code": 0, "Type": "error"})


def _pinned(cid: str) -> Handler:
    return lambda _: httpx.Response(200, json={"Keys": {cid: {"Type": "recursive"}}})


def _added(cid: str) -> Handler:
    return lambda _: httpx.Response(200, text=json.dumps({"Name": "x", "Hash": cid}) + "\n")


def _base58(cid: str) -> str:
    """A CIDv1 in base58btc, as js-ipfs prints it (proml prints base32)."""
    return "z" + b58encode(Cid.parse(cid).to_bytes())


def _block_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blocks").rglob("*") if p.is_file())


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(b"x,y\n1,0\n2,1\n")
    return path


# ----------------------------------------------------------------------------- add


@pytest.mark.parametrize("what", ["file", "directory", "record"])
def test_an_add_answering_another_cid_keeps_the_content_local_and_names_both(
    tmp_path: Path, source: Path, what: str
) -> None:
    lie = _base58(str(raw_cid(b"something else entirely")))
    node = FakeNode(pin_ls=_not_pinned, add=_added(lie))
    store = _store(tmp_path / "store", node)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a\n")
    record = b'{"record": 1}'

    put, ours = {
        "file": (lambda: store.put_path(source).cid, hash_path(source).cid),
        "directory": (lambda: store.put_path(folder).cid, hash_path(folder).cid),
        "record": (lambda: store.put_bytes(record), str(raw_cid(record))),
    }[what]

    assert put() == ours
    [problem] = store.problems
    assert lie in problem
    assert ours in problem
    assert NODE in problem
    assert node.calls.count("add") == 1
    # Ours is durable locally and queued for a retry; nothing the node said is kept.
    assert store.local.has(ours)
    store.local.check(ours)
    assert store.unpushed() == [ours]
    assert not store.local.has(lie)


def test_an_add_answering_our_cid_in_another_base_is_accepted(tmp_path: Path, source: Path) -> None:
    ours = hash_path(source).cid
    store = _store(tmp_path / "store", FakeNode(pin_ls=_not_pinned, add=_added(_base58(ours))))

    assert store.put_path(source).cid == ours


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>a web page, not a node</body></html>",
        '["a", "list"]',
        '{"Name": "x"}',
        '{"Name": "x", "Hash": "not a cid"}',
        "",
    ],
)
def test_an_add_answering_nonsense_is_noticed_and_the_content_queued(
    tmp_path: Path, source: Path, body: str
) -> None:
    answer: Handler = lambda _: httpx.Response(200, text=body)  # noqa: E731
    store = _store(tmp_path / "store", FakeNode(pin_ls=_not_pinned, add=answer))

    stored = store.put_path(source)

    assert store.unpushed() == [stored.cid]
    assert store.local.has(stored.cid)
    assert len(store.problems) == 1


def test_an_add_the_node_refuses_is_noticed_and_the_content_queued(
    tmp_path: Path, source: Path
) -> None:
    refuse: Handler = lambda _: httpx.Response(500, json={"Message": "disk full"})  # noqa: E731
    store = _store(tmp_path / "store", FakeNode(pin_ls=_not_pinned, add=refuse))

    stored = store.put_path(source)

    assert store.unpushed() == [stored.cid]
    [problem] = store.problems
    assert "disk full" in problem
    assert NODE in problem


# ----------------------------------------------------------------------------- pin/ls


def test_pin_ls_answering_500_means_not_pinned_and_the_content_is_uploaded(
    tmp_path: Path, source: Path
) -> None:
    ours = hash_path(source).cid
    node = FakeNode(pin_ls=_not_pinned, add=_added(ours))
    store = _store(tmp_path / "store", node)

    assert store.is_pinned(ours) is False
    assert store.has(ours) is False
    store.put_path(source)
    assert node.calls.count("add") == 1


def test_pin_ls_listing_other_content_means_not_pinned(tmp_path: Path, source: Path) -> None:
    ours = hash_path(source).cid
    other = str(raw_cid(b"other"))
    store = _store(tmp_path / "store", FakeNode(pin_ls=_pinned(other)))

    assert store.is_pinned(ours) is False


def test_content_the_node_pins_and_returns_is_not_uploaded_again(
    tmp_path: Path, source: Path
) -> None:
    ours = hash_path(source).cid
    block: Handler = lambda _: httpx.Response(200, content=source.read_bytes())  # noqa: E731
    node = FakeNode(pin_ls=_pinned(_base58(ours)), block_get=block)
    store = _store(tmp_path / "store", node)

    assert store.put_path(source).cid == ours
    assert "add" not in node.calls
    assert store.problems == []
    assert store.unpushed() == []


@pytest.mark.parametrize(
    "block",
    [
        lambda _: httpx.Response(500, json={"Message": "block not found"}),
        lambda _: httpx.Response(200, content=b"some other block"),
    ],
)
def test_a_pin_the_node_cannot_back_is_not_believed_and_the_content_is_uploaded(
    tmp_path: Path, source: Path, block: Handler
) -> None:
    ours = hash_path(source).cid
    pinned_everything: Handler = lambda request: httpx.Response(  # noqa: E731
        200, json={"Keys": {request.url.params["arg"]: {"Type": "recursive"}}}
    )
    node = FakeNode(pin_ls=pinned_everything, block_get=block, add=_added(ours))
    store = _store(tmp_path / "store", node)

    assert store.put_path(source).cid == ours
    assert node.calls.count("add") == 1
    [problem] = store.problems
    assert NODE in problem
    assert "does not return its root block" in problem


def test_pin_ls_answering_nonsense_is_a_content_error(tmp_path: Path, source: Path) -> None:
    page: Handler = lambda _: httpx.Response(200, text="<html>gateway</html>")  # noqa: E731
    store = _store(tmp_path / "store", FakeNode(pin_ls=page))

    with pytest.raises(ContentError):
        store.is_pinned(hash_path(source).cid)


# ----------------------------------------------------------------------------- dag/export


def _car_bytes(tmp_path: Path, root: Cid, blocks: list[tuple[Cid, bytes]]) -> bytes:
    path = tmp_path / "answer.car"
    write_car(path, [root], blocks)
    return path.read_bytes()


def test_a_car_with_a_block_that_does_not_hash_to_its_cid_is_refused(tmp_path: Path) -> None:
    genuine = b"the bytes the ledger anchors\n"
    cid = raw_cid(genuine)
    forged = b"the bytes the node would like you to have\n"
    harmless = b"an honest block the node also sends\n"
    # The node sends a valid block first (it may be kept: it hashes to its CID), then the forged
    # one under the genuine CID.
    car = _car_bytes(tmp_path, cid, [(raw_cid(harmless), harmless), (cid, forged)])
    export: Handler = lambda _: httpx.Response(200, content=car)  # noqa: E731
    root = tmp_path / "store"
    store = _store(root, FakeNode(dag_export=export))
    dest = tmp_path / "out.txt"

    with pytest.raises(ContentError, match="does not hash"):
        store.get(str(cid), dest)

    assert not dest.exists()
    assert not store.local.has(str(cid))
    for block in _block_files(root):
        assert block.read_bytes() != forged, f"the forged block landed in {block}"
    with pytest.raises(ContentError):
        store.cat(str(cid))


def test_a_car_holding_another_dag_is_refused(tmp_path: Path) -> None:
    cid = raw_cid(b"what was asked for\n")
    other = b"what the node sends instead\n"
    car = _car_bytes(tmp_path, raw_cid(other), [(raw_cid(other), other)])
    export: Handler = lambda _: httpx.Response(200, content=car)  # noqa: E731
    store = _store(tmp_path / "store", FakeNode(dag_export=export))
    dest = tmp_path / "out.txt"

    with pytest.raises(ContentError):
        store.get(str(cid), dest)
    assert not dest.exists()
    assert not store.local.has(str(cid))


def test_a_truncated_car_is_refused(tmp_path: Path) -> None:
    data = b"some content\n"
    cid = raw_cid(data)
    car = _car_bytes(tmp_path, cid, [(cid, data)])[:-5]
    export: Handler = lambda _: httpx.Response(200, content=car)  # noqa: E731
    store = _store(tmp_path / "store", FakeNode(dag_export=export))

    with pytest.raises(ContentError):
        store.get(str(cid), tmp_path / "out.txt")
    assert not store.local.has(str(cid))


def test_an_honest_car_is_fetched_and_checked(tmp_path: Path) -> None:
    data = b"some content\n"
    cid = raw_cid(data)
    car = _car_bytes(tmp_path, cid, [(cid, data)])
    export: Handler = lambda _: httpx.Response(200, content=car)  # noqa: E731
    store = _store(tmp_path / "store", FakeNode(dag_export=export))

    store.get(str(cid), tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_bytes() == data


# ----------------------------------------------------------------------------- dag/import (push)


@pytest.mark.parametrize(
    "root",
    [
        {"Cid": {"/": str(raw_cid(b"not what was pushed"))}, "PinErrorMsg": ""},
        {"Cid": {"/": "SOMETHING"}, "PinErrorMsg": "pinning failed"},
        {"Cid": "no link"},
    ],
)
def test_a_push_the_node_does_not_confirm_is_a_content_error(
    tmp_path: Path, source: Path, root: dict[str, object]
) -> None:
    answer: Handler = lambda _: httpx.Response(200, json={"Root": root})  # noqa: E731
    store = _store(tmp_path / "store", FakeNode(pin_ls=_not_pinned, dag_import=answer))
    cid = store.local.put_path(source).cid

    with pytest.raises(ContentError):
        store.push(cid)


def test_an_import_the_node_acknowledges_but_cannot_back_is_a_content_error(
    tmp_path: Path, source: Path
) -> None:
    cid = hash_path(source).cid
    answer: Handler = lambda _: httpx.Response(  # noqa: E731
        200, json={"Root": {"Cid": {"/": cid}, "PinErrorMsg": ""}}
    )
    missing: Handler = lambda _: httpx.Response(500, json={"Message": "not found"})  # noqa: E731
    node = FakeNode(pin_ls=_not_pinned, dag_import=answer, block_get=missing, add=_added("x"))
    store = _store(tmp_path / "store", node)
    store.put_path(source)  # add answers nonsense: queued
    assert store.unpushed() == [cid]

    with pytest.raises(ContentError) as caught:
        store.flush()

    assert NODE in caught.value.diagnosis
    assert "does not return its root block" in caught.value.diagnosis
    assert store.unpushed() == [cid], "the content left the queue although the node lied"
    assert store.local.has(cid)


# ----------------------------------------------------------------------------- transport


def test_a_transport_error_is_backend_unavailable(tmp_path: Path, source: Path) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    node = FakeNode(pin_ls=unreachable, add=unreachable, dag_export=unreachable)
    store = _store(tmp_path / "store", node)

    stored = store.put_path(source)  # kept locally, upload deferred
    assert store.unpushed() == [stored.cid]
    with pytest.raises(BackendUnavailable) as caught:
        store.flush()
    assert caught.value.exit_code == ExitCode.BACKEND_UNAVAILABLE
    assert NODE in caught.value.diagnosis
    assert store.unpushed() == [stored.cid]  # still queued
    with pytest.raises(BackendUnavailable):
        store.get(str(raw_cid(b"elsewhere")), tmp_path / "out")
