"""The ledger over JSON-RPC against a real anvil: deploy, read, chain identity, outages, nonces,
confirmations and on-chain roles.

Most tests share one project deployed on the session's anvil (built once per module); tests that
need their own chain behaviour (a relay that cuts the chain off, interval mining) build their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _network import CUT_SCRIPT, Relay, dead_url, files_under, rpc_config, rpc_policy
from _project import (
    fork,
    journal_files,
    log_entries,
    ok,
    one_error_line,
    proml,
    write_project,
)
from services import ANVIL_KEY, anvil, rpc

from proml_cli.content import bytes_cid
from proml_cli.ledger import (
    Kind,
    Move,
    Registration,
    Transition,
    VersionRef,
    open_ledger,
)

pytestmark = pytest.mark.integration

DEV_CHAIN_ID = 31337
KIND = Kind.of(
    name="blob",
    states=("made", "checked"),
    initial="made",
    register=("maker",),
    transitions=(Transition("check", ("made",), "checked", ("maker",)),),
)


@pytest.fixture(scope="module", autouse=True)
def _private_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # proml keeps its nonce locks in the user's cache directory: keep this module's out of
    # $HOME (module scope, so the shared project's set-up is covered too).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="module")
def project(anvil_project: Path) -> Path:
    """The module's project on the session's anvil (see conftest)."""
    return anvil_project


def _receipt(url: str, tx_hash: str) -> dict[str, Any]:
    receipt = rpc(url, "eth_getTransactionReceipt", [tx_hash])
    assert isinstance(receipt, dict), tx_hash
    return receipt


def _state(root: Path) -> dict[str, Any]:
    state = json.loads((root / ".proml" / "project.json").read_text())
    assert isinstance(state, dict)
    return state


# ----------------------------------------------------------------------------- deploy and read


def test_init_deploys_the_ledger_on_the_chain(project: Path, anvil_url: str) -> None:
    state = _state(project)

    assert (state["backend"], state["chain_id"]) == ("rpc", DEV_CHAIN_ID)
    code = rpc(anvil_url, "eth_getCode", [state["ledger"], "latest"])
    assert isinstance(code, str)
    assert len(code) > 2, "no contract code at the recorded ledger address"
    # Running init again changes nothing: the same ledger, nothing deployed or defined.
    again = ok(proml(project, "init", "--json")).json()
    assert again["ledger"] == state["ledger"]
    assert not [a for a in again["actions"] if a.startswith(("deployed", "defined"))]


def test_log_reads_the_history_from_the_chain(project: Path, anvil_url: str) -> None:
    entries = log_entries(project)

    assert [(e["artefact"], e["action"], e["to"]) for e in entries] == [
        ("dataset", "validate", "validated"),
        ("dataset", "register", "raw"),
    ]
    for entry in entries:
        receipt = _receipt(anvil_url, entry["tx_hash"])
        assert int(receipt["status"], 16) == 1
        assert int(receipt["blockNumber"], 16) == entry["block"]
        assert receipt["to"].lower() == _state(project)["ledger"].lower()


# ----------------------------------------------------------------------------- the chain's identity


def test_a_project_opened_on_a_chain_with_another_id_is_refused(
    project: Path, tmp_path: Path
) -> None:
    other = fork(project, tmp_path / "other")
    state = _state(other)
    state["chain_id"] = 4242
    (other / ".proml" / "project.json").write_text(json.dumps(state))

    for args in (("log",), ("run", "--", "python", "train.py")):
        result = proml(other, *args)
        assert result.code == 2, str(result)
        assert result.stdout == ""
        line = one_error_line(result.stderr)
        assert "4242" in line
        assert str(DEV_CHAIN_ID) in line
    assert not (other / "train.started").exists(), "the command ran on the wrong chain"


# ----------------------------------------------------------------------------- outages


def test_an_unreachable_chain_exits_3_naming_the_url(project: Path, tmp_path: Path) -> None:
    work = fork(project, tmp_path / "work")
    url = dead_url()
    down = {"PROML_CHAIN_URL": url}

    for args in (
        ("log",),
        ("roles", "list"),
        ("transition", "dataset", "deprecate"),
        ("run", "--", "python", "train.py"),
    ):
        result = proml(work, *args, env=down)
        assert result.code == 3, str(result)
        assert result.stdout == ""
        assert url in one_error_line(result.stderr)
    # The inputs could not be checked, so the command never started; only the decision (the
    # transition) is journaled, for `proml sync`.
    assert not (work / "train.started").exists()
    assert len(journal_files(work)["pending"]) == 1


def test_sync_anchors_what_was_journaled_when_the_chain_went_away(
    anvil_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    flag = root / "chain.down"
    with Relay(anvil_url, flag) as relay:
        write_project(root, rpc_policy(relay.url))
        (root / "cut.py").write_text(CUT_SCRIPT)
        ok(proml(root, "init"))

        # The chain answers the check before the command; the command cuts the relay as its
        # last act, so proml meets a dead chain only after the work is done: it must journal it.
        result = proml(root, "run", "--", "python", "cut.py")
        assert relay.is_cut
        assert result.code == 0, str(result)
        assert relay.url in result.stderr
        assert "proml sync" in result.stderr
        assert (root / "out" / "report.txt").is_file()
        pending = journal_files(root)["pending"]
        assert len(pending) == 1

        still_down = proml(root, "sync")
        assert still_down.code == 3, str(still_down)
        assert relay.url in one_error_line(still_down.stderr)
        assert journal_files(root)["pending"] == pending

        flag.unlink()
        synced = ok(proml(root, "sync", "--json")).json()["entries"]
        assert [(e["record_cid"], e["status"]) for e in synced] == [
            (pending[0].removesuffix(".json"), "anchored")
        ]
        assert journal_files(root) == {"pending": [], "done": pending, "refused": []}
        anchored = [e for e in log_entries(root) if e["artefact"] == "report"]
        assert [(e["action"], e["record_cid"], e["tx_hash"]) for e in anchored] == [
            ("register", synced[0]["record_cid"], synced[0]["tx_hash"])
        ]
        # Exactly once: a second sync finds nothing to do.
        assert ok(proml(root, "sync", "--json")).json()["entries"] == []
        assert len(log_entries(root)) == 1


# ----------------------------------------------------------------------------- keys and nonces


def test_a_private_key_from_the_environment_signs_and_is_never_written(
    anvil_url: str, tmp_path: Path
) -> None:
    from eth_account import Account

    root = write_project(tmp_path / "project", rpc_policy(anvil_url))
    env = {"PROML_PRIVATE_KEY": ANVIL_KEY}
    summary = ok(proml(root, "init", "--json", env=env)).json()
    ok(proml(root, "run", "--", "python", "prepare.py", env=env))

    address = Account.from_key(ANVIL_KEY).address
    assert summary["admin"] == summary["account"] == address
    assert not list((root / ".proml").glob("keys/*.json")), "a keystore was written"
    key_hex = ANVIL_KEY.removeprefix("0x")
    for path in files_under(root):
        data = path.read_bytes()
        assert key_hex.encode() not in data.lower(), f"the private key is in {path}"
        assert bytes.fromhex(key_hex) not in data, f"the private key is in {path}"


# A process that opens the ledger, says it is ready, waits for the common start signal, then
# registers COUNT versions as fast as it can, printing one JSON line per receipt.
WORKER = """\
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from eth_account import Account

from proml_cli.ledger import ChainConfig, Registration, VersionRef, open_ledger

url, address, state_dir, ready, go, salt, cid, count = sys.argv[1:]
config = ChainConfig(
    backend="rpc", url=url, state_dir=Path(state_dir), cache_dir=Path(os.environ["XDG_CACHE_HOME"])
)
signer = Account.from_key(os.environ["PROML_PRIVATE_KEY"])
with open_ledger(config, signer=signer, address=address) as ledger:
    Path(ready).write_text("ready")
    deadline = time.monotonic() + 60
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    for i in range(int(count)):
        digest = hashlib.sha256(f"{salt}-{i}".encode()).hexdigest()
        receipt = ledger.submit(cid, [Registration(VersionRef("blob", digest), cid)], [])
        print(json.dumps({"digest": digest, "tx_hash": receipt.tx_hash}), flush=True)
"""


def _deploy_blob_ledger(url: str, signer: Any, state_dir: Path) -> str:
    """Deploy a ledger with one kind and artefact ('blob'); ``signer`` holds the 'maker' role."""
    config = rpc_config(url, state_dir=state_dir)
    with open_ledger(config, signer=signer) as ledger:
        ledger.define_roles(["maker"])
        ledger.define_kind(KIND)
        ledger.define_artefacts({"blob": "blob"})
        ledger.grant_role("maker", signer.address)
        return ledger.address


@pytest.mark.parametrize("layout", ["one project", "two projects"])
def test_processes_signing_with_one_account_never_reuse_a_nonce(
    anvil_url: str, tmp_path: Path, layout: str
) -> None:
    from eth_account import Account

    count = 5
    address = _deploy_blob_ledger(anvil_url, Account.from_key(ANVIL_KEY), tmp_path / "admin")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cid = bytes_cid(secrets.token_bytes(32))
    go = tmp_path / "go"
    if layout == "one project":
        state_dirs = [tmp_path / "shared", tmp_path / "shared"]
    else:
        state_dirs = [tmp_path / "first", tmp_path / "second"]
    ready = [tmp_path / "ready-a", tmp_path / "ready-b"]
    env = {**os.environ, "PROML_PRIVATE_KEY": ANVIL_KEY}

    def start(salt: str, state_dir: Path, flag: Path) -> subprocess.Popen[str]:
        argv = [sys.executable, str(script), anvil_url, address, str(state_dir), str(flag)]
        argv += [str(go), f"{tmp_path.name}-{salt}", cid, str(count)]
        pipe = subprocess.PIPE
        return subprocess.Popen(argv, env=env, stdout=pipe, stderr=pipe, text=True)

    workers = [start(*args) for args in zip("ab", state_dirs, ready, strict=True)]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready):
            assert time.monotonic() < deadline, "the workers did not start"
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.02)
        go.write_text("go")  # both submit at once from here on
        outputs = [w.communicate(timeout=120) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    sent = [json.loads(line) for stdout, _ in outputs for line in stdout.splitlines()]
    assert len(sent) == 2 * count
    nonces = set()
    for item in sent:
        assert int(_receipt(anvil_url, item["tx_hash"])["status"], 16) == 1
        tx = rpc(anvil_url, "eth_getTransactionByHash", [item["tx_hash"]])
        assert isinstance(tx, dict)
        nonces.add(int(tx["nonce"], 16))
    assert len(nonces) == 2 * count
    config = rpc_config(anvil_url)
    with open_ledger(config, signer=None, address=address) as ledger:
        for item in sent:
            assert ledger.version(VersionRef("blob", item["digest"])) is not None


# ----------------------------------------------------------------------------- confirmations


@pytest.fixture
def interval_anvil(tmp_path: Path) -> Iterator[str]:
    """A private anvil that mines a block every second (the session's one mines per tx)."""
    workdir = tmp_path / "anvil"
    workdir.mkdir()
    with anvil(workdir, block_time=1) as url:
        yield url


def _head(url: str) -> int:
    return int(str(rpc(url, "eth_blockNumber", [])), 16)


def _registered(ledger: Any) -> set[str]:
    return {str(e.args["digest"]) for e in ledger.history() if e.name == "Registered"}


def test_confirmations_delay_receipts_and_hide_the_newest_block(
    interval_anvil: str, tmp_path: Path
) -> None:
    from eth_account import Account

    url = interval_anvil
    signer = Account.create()  # empty: proml funds it itself on a development chain
    # Set-up on instant mining (evm_setAutomine also stops interval mining): the chain moves
    # only when a transaction arrives or a test mines a block, so the head is known exactly.
    rpc(url, "evm_setAutomine", [True])
    once = rpc_config(url, confirmations=1, state_dir=tmp_path / "one")
    twice = rpc_config(url, confirmations=2, state_dir=tmp_path / "two")
    first = hashlib.sha256(b"first version").hexdigest()
    second = hashlib.sha256(b"second version").hexdigest()
    record = bytes_cid(b"a record")
    address = _deploy_blob_ledger(url, signer, tmp_path / "admin")
    with open_ledger(once, signer=signer, address=address) as ledger:
        ledger.submit(record, [Registration(VersionRef("blob", first), record)], [])
        newest = ledger.submit(record, [Registration(VersionRef("blob", second), record)], [])
        assert _head(url) == newest.block
        assert second in _registered(ledger)  # one confirmation: the head block counts

    with open_ledger(twice, signer=signer, address=address) as ledger:
        # Two confirmations: the head block is not confirmed yet, so history leaves it out.
        assert _registered(ledger) == {first}
        rpc(url, "evm_mine", [])
        assert _registered(ledger) == {first, second}

        rpc(url, "evm_setIntervalMining", [1])
        receipt = ledger.submit(record, [], [Move(VersionRef("blob", first), "check")])
        head = _head(url)
        assert receipt.block + 1 <= head, (receipt.block, head)
        state = ledger.version(VersionRef("blob", first))
        assert state is not None
        assert state.state == "checked"


def test_a_deep_confirmation_is_waited_for_with_few_calls(
    interval_anvil: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six confirmations on 1 s blocks: the wait sleeps through blocks instead of polling."""
    from eth_account import Account

    url = interval_anvil
    signer = Account.create()
    address = _deploy_blob_ledger(url, signer, tmp_path / "admin")
    calls = _count_calls(monkeypatch)
    deep = rpc_config(url, confirmations=6, state_dir=tmp_path / "deep")
    record = bytes_cid(b"a deep record")
    with open_ledger(deep, signer=signer, address=address) as ledger:
        calls.clear()
        started = time.monotonic()
        receipt = ledger.submit(
            record,
            [Registration(VersionRef("blob", hashlib.sha256(b"deep").hexdigest()), record)],
            [],
        )
        waited = time.monotonic() - started
    assert _head(url) >= receipt.block + 5
    assert waited < 6 + 1.5  # at most the inclusion block and five more, plus slack
    # Polling every 0.25 s would ask for the head ~20 times over five blocks; the first and
    # the last block are still polled (~4 calls each), the ones between are slept through.
    assert calls.count("eth_blockNumber") <= 12, calls


# ----------------------------------------------------------------------------- roles


def test_the_admin_grants_lists_and_revokes_roles(project: Path) -> None:
    from eth_account import Account

    member = Account.create().address

    ok(proml(project, "roles", "grant", "verifier", member))
    roles = ok(proml(project, "roles", "list", "--json")).json()
    assert member in roles["roles"]["verifier"]
    ok(proml(project, "roles", "revoke", "verifier", member))
    roles = ok(proml(project, "roles", "list", "--json")).json()
    assert member not in roles["roles"]["verifier"]
    assert roles["admin"] == _state(project)["admin"]


def test_a_non_admin_cannot_grant_or_revoke(project: Path) -> None:
    accounts = ok(proml(project, "account", "list", "--json")).json()["accounts"]
    if "intruder" not in {a["name"] for a in accounts}:
        ok(proml(project, "account", "new", "intruder"))
    before = ok(proml(project, "roles", "list", "--json")).json()

    for verb in ("grant", "revoke"):
        result = proml(project, "roles", verb, "curator", "intruder", "--as", "intruder")
        assert result.code == 1, str(result)
        assert result.stdout == ""
        assert "not the project's admin" in one_error_line(result.stderr)
    assert ok(proml(project, "roles", "list", "--json")).json() == before


def test_block_times_are_fetched_once_and_kept(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second read of the history fetches no block time; the transaction count stays bounded.

    Each read asks for the newest block, which (or whose parent) is the history index's tip
    when nothing or one block was added: one header read whatever the history's length.
    """
    from eth_account import Account

    from proml_cli.ledger import _rpc

    calls: list[str] = []
    single, batch = _rpc._Provider.make_request, _rpc._Provider.make_batch_request

    def counting(self: Any, method: Any, params: Any) -> Any:
        calls.append(str(method))
        return single(self, method, params)

    def counting_batch(self: Any, requests: Any) -> Any:
        calls.extend(str(method) for method, _ in requests)
        return batch(self, requests)

    monkeypatch.setattr(_rpc._Provider, "make_request", counting)
    monkeypatch.setattr(_rpc._Provider, "make_batch_request", counting_batch)
    signer = Account.from_key(ANVIL_KEY)
    config = rpc_config(anvil_url, state_dir=tmp_path / "chain")
    with open_ledger(config, signer=signer) as ledger:
        address = ledger.address
        ledger.define_roles(["maker"])
        ledger.define_kind(KIND)
        ledger.define_artefacts({"thing": "blob"})
        ledger.grant_role("maker", signer.address)
    first = None
    for round_ in range(2):
        calls.clear()
        with open_ledger(config, signer=None, address=address) as ledger:
            events = ledger.history()
        fetched = calls.count("eth_getBlockByNumber")
        if round_ == 0:
            first = [(e.block, e.timestamp) for e in events]
            assert fetched <= 2  # the head; the writes above kept their blocks' times already
        else:
            assert fetched == 1  # the head (the index's tip): no block time
            assert [(e.block, e.timestamp) for e in events] == first
    (tmp_path / "chain" / _rpc.CACHE_NAME).unlink()
    (tmp_path / "chain" / _rpc.INDEX_NAME).unlink()
    calls.clear()
    with open_ledger(config, signer=None, address=address) as ledger:
        assert [(e.block, e.timestamp) for e in ledger.history()] == first
    # Without the caches every block is fetched again, in one batch, and gives the same times.
    assert calls.count("eth_getBlockByNumber") == len({b for b, _ in first or []}) + 1


def test_a_write_after_a_read_asks_for_no_header(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head just read for the history index gives the fees; the receipt gives the time.

    A header older than ``HEADER_REUSE`` is read again, and the receipt's time is the block's.
    """
    from eth_account import Account
    from web3 import Web3

    from proml_cli.ledger import _rpc

    calls = _count_calls(monkeypatch)
    signer = Account.from_key(ANVIL_KEY)
    config = rpc_config(anvil_url, state_dir=tmp_path / "chain")
    with open_ledger(config, signer=signer) as ledger:
        ledger.define_roles(["maker"])
        ledger.history_index()
        calls.clear()
        receipt = ledger.grant_role("maker", signer.address)
        assert "eth_getBlockByNumber" not in calls
        block = Web3(Web3.HTTPProvider(anvil_url)).eth.get_block(receipt.block)
        assert receipt.timestamp == int(block["timestamp"])
        ledger.history_index()
        monkeypatch.setattr(_rpc, "HEADER_REUSE", -1.0)  # as if read long ago
        calls.clear()
        ledger.revoke_role("maker", signer.address)
        assert calls.count("eth_getBlockByNumber") == 1  # the fees' header, read anew


def test_a_tampered_history_index_on_a_network_chain_is_rebuilt(
    anvil_url: str, tmp_path: Path
) -> None:
    """history.sqlite with a tip that is not the chain's block, or another ledger's: rebuilt."""
    import sqlite3

    from eth_account import Account

    from proml_cli.ledger import _rpc

    signer = Account.from_key(ANVIL_KEY)
    config = rpc_config(anvil_url, state_dir=tmp_path / "chain")
    record = bytes_cid(b"a record")
    with open_ledger(config, signer=signer) as ledger:
        address = ledger.address
        ledger.define_roles(["maker"])
        ledger.define_kind(KIND)
        ledger.define_artefacts({"blob": "blob"})
        ledger.grant_role("maker", signer.address)
        digest = hashlib.sha256(b"one").hexdigest()
        ledger.submit(record, [Registration(VersionRef("blob", digest), record)], [])
        ledger.submit(record, [], [Move(VersionRef("blob", digest), "check")])
        before = ledger.history()
    assert [e.name for e in before][-2:] == ["Registered", "Transitioned"]

    def tamper(*statements: tuple[str, tuple[object, ...]]) -> None:
        db = sqlite3.connect(tmp_path / "chain" / _rpc.INDEX_NAME)
        for sql, args in statements:
            db.execute(sql, args)
        db.commit()
        db.close()

    # The trigger that would report the edit is gone: only the tip's hash gives it away.
    tamper(
        ("DROP TRIGGER hist_other_u", ()),
        ("UPDATE hist_other SET args = '{}'", ()),
        ("UPDATE hist_meta SET value = ? WHERE key = 'tip_hash'", ("0x" + "ab" * 32,)),
    )
    with open_ledger(config, signer=None, address=address) as ledger:
        assert ledger.history() == before
    # Another ledger's index, its edits passed off as its own: the ledger it names gives it away.
    tamper(
        ("UPDATE hist_steps SET roles = '0'", ()),
        (
            "UPDATE hist_meta SET value = (SELECT value FROM hist_meta WHERE key = 'edits') "
            "WHERE key = 'edits_seen'",
            (),
        ),
        ("UPDATE hist_meta SET value = '1:0x' || hex(randomblob(20)) WHERE key = 'ledger'", ()),
    )
    with open_ledger(config, signer=None, address=address) as ledger:
        assert ledger.history() == before


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The JSON-RPC methods the ledger sends one at a time from now on, in order."""
    from proml_cli.ledger import _rpc

    calls: list[str] = []
    single = _rpc._Provider.make_request

    def counting(self: Any, method: Any, params: Any) -> Any:
        calls.append(str(method))
        return single(self, method, params)

    monkeypatch.setattr(_rpc._Provider, "make_request", counting)
    return calls
