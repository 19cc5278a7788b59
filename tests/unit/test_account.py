"""Local signing accounts: encrypted keystores, imports, and secrets that never leak.

No chain is involved: the CLI commands used here (``account``, and ``transition`` up to the
point where it opens the keystore) fail or finish before any ledger is opened.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner

from proml_cli import account
from proml_cli._cli.app import app
from proml_cli.account import (
    AccountInfo,
    SignerChoice,
    import_keystore,
    keys_dir,
    list_accounts,
    parse_private_key,
)
from proml_cli.errors import ExitCode, InputError
from proml_cli.settings import Settings


# The tests set PROML_* variables as a user would; these read them as the CLI's boundary does
# (the library itself never reads the environment).
def create_account(state_dir: Path, name: str, **kwargs: Any) -> AccountInfo:
    password = Settings.from_environ().keystore_password
    return account.create_account(state_dir, name, password=password, **kwargs)


def load_signer(state_dir: Path, name: str | None = None) -> Any:
    return account.load_signer(state_dir, name, settings=Settings.from_environ())


def select_signer(state_dir: Path, name: str | None = None) -> SignerChoice:
    return account.select_signer(state_dir, name, settings=Settings.from_environ())


PASSWORD = "correct horse battery staple"

POLICY = """\
version: 1
project: keys
roles: [curator]
kinds:
  table:
    states: [raw, ok]
    initial: raw
    register: [curator]
    consumable: [ok]
    transitions:
      accept: {from: [raw], to: ok, roles: [curator]}
artefacts:
  data: {kind: table, path: data.csv}
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's shell may carry keys or passwords: none of them may reach these tests.
    for name in list(os.environ):
        if name.startswith("PROML_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROML_KEYSTORE_PASSWORD", PASSWORD)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".proml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with a policy (no ledger): the working directory of the CLI tests."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "proml.yaml").write_text(POLICY)
    (root / "data.csv").write_text("x\n1\n")
    monkeypatch.chdir(root)
    return root


def _cli(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _error_chain(exc: BaseException) -> str:
    """The text of an exception and of everything chained to it (what a traceback would show)."""
    parts = []
    current: BaseException | None = exc
    while current is not None:
        parts += [str(current), repr(current), str(getattr(current, "hint", ""))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ----------------------------------------------------------------------------- creating


def test_a_new_account_is_an_encrypted_v3_keystore_only_its_owner_can_read(state: Path) -> None:
    info = create_account(state, "alice")

    assert info.path == keys_dir(state) / "alice.json"
    assert _mode(info.path) == 0o600
    assert _mode(keys_dir(state)) == 0o700
    keystore = json.loads(info.path.read_text())
    assert keystore["version"] == 3
    assert {"cipher", "ciphertext", "kdf", "kdfparams", "mac"} <= set(keystore["crypto"])
    assert "0x" + keystore["address"].lower() == info.address.lower()
    key = Account.decrypt(keystore, PASSWORD)
    assert Account.from_key(key).address == info.address
    text = info.path.read_text()
    assert key.hex() not in text
    assert PASSWORD not in text


def test_an_imported_private_key_is_kept_only_encrypted(state: Path) -> None:
    key = secrets.token_bytes(32)

    info = create_account(state, "bob", private_key=key)

    assert info.address == Account.from_key(key).address
    data = info.path.read_bytes()
    assert key.hex().encode() not in data.lower()
    assert key not in data
    assert load_signer(state, "bob").address == info.address


def test_accounts_are_listed_by_name_with_their_addresses(state: Path) -> None:
    assert list_accounts(state) == []
    zed = create_account(state, "zed")
    amy = create_account(state, "amy")

    listed = list_accounts(state)

    assert [(a.name, a.address) for a in listed] == [
        ("amy", amy.address),
        ("zed", zed.address),
    ]


@pytest.mark.parametrize("name", ["", "Alice", "../escape", "a/b", "-dash", "x" * 33, "a b"])
def test_an_invalid_name_is_refused(state: Path, name: str) -> None:
    with pytest.raises(InputError) as caught:
        create_account(state, name)
    assert caught.value.exit_code == ExitCode.USAGE
    assert not keys_dir(state).exists() or not list(keys_dir(state).iterdir())


def test_an_existing_account_is_never_overwritten(state: Path) -> None:
    first = create_account(state, "alice")
    before = first.path.read_bytes()

    with pytest.raises(InputError, match="exists already"):
        create_account(state, "alice")
    assert first.path.read_bytes() == before


# ----------------------------------------------------------------------------- opening


def test_a_wrong_password_is_an_input_error_that_echoes_nothing(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = create_account(state, "alice")
    key = Account.decrypt(json.loads(info.path.read_text()), PASSWORD).hex()
    wrong = "not the password at all"
    monkeypatch.setenv("PROML_KEYSTORE_PASSWORD", wrong)

    with pytest.raises(InputError) as caught:
        load_signer(state, "alice")

    assert caught.value.exit_code == ExitCode.USAGE
    assert "wrong password" in caught.value.diagnosis
    text = _error_chain(caught.value)
    for secret in (PASSWORD, wrong, key):
        assert secret not in text


def test_a_wrong_password_through_the_cli_is_one_line_and_exit_2(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = create_account(project / ".proml", "default")
    key = Account.decrypt(json.loads(info.path.read_text()), PASSWORD).hex()
    wrong = "guessing-the-password"
    monkeypatch.setenv("PROML_KEYSTORE_PASSWORD", wrong)

    code, stdout, stderr = _cli("transition", "data", "accept")

    assert code == ExitCode.USAGE
    assert stdout == ""
    lines = stderr.splitlines()
    assert lines[0] == "proml: error: cannot open keystore default.json: wrong password"
    assert all(line.startswith("hint: ") for line in lines[1:])
    for secret in (PASSWORD, wrong, key):
        assert secret not in stderr


def test_a_missing_account_is_an_input_error(state: Path) -> None:
    with pytest.raises(InputError, match="no local account 'nobody'"):
        load_signer(state, "nobody")


# ----------------------------------------------------------------------------- PROML_PRIVATE_KEY


@pytest.mark.parametrize("form", ["0x{}", "{}", "0x{}\n", "  {}  "])
def test_a_key_from_the_environment_signs_and_is_never_written(
    state: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    key = secrets.token_bytes(32)
    create_account(state, "default")  # a keystore exists, but the environment wins
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    monkeypatch.setenv("PROML_PRIVATE_KEY", form.format(key.hex()))

    signer = load_signer(state)

    assert signer.address == Account.from_key(key).address
    after = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    assert after == before, "loading a key from the environment wrote a file"
    for data in after.values():
        assert key.hex().encode() not in data.lower()


@pytest.mark.parametrize(
    "value",
    [
        "0x1234",
        "zz" * 32,
        "ab" * 33,
        "0x" + "ab" * 31,
        "0x" + "ff" * 32,  # 32 bytes, but beyond the curve's order
        "0x" + "00" * 32,  # the zero key
    ],
)
def test_an_invalid_key_in_the_environment_is_refused_without_echoing_it(
    state: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PROML_PRIVATE_KEY", value)

    with pytest.raises(InputError) as caught:
        load_signer(state)

    assert caught.value.exit_code == ExitCode.USAGE
    assert "PROML_PRIVATE_KEY" in caught.value.diagnosis
    text = _error_chain(caught.value)
    assert value.removeprefix("0x") not in text
    assert not state.exists()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        "0x1234",
        "not hex at all, but a sentence someone pasted",
        "ab" * 31,
        "ab" * 33,
        "0x" + "ab" * 31 + "zz",
    ],
)
def test_parse_private_key_errors_never_contain_the_input(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_private_key(text)

    assert caught.value.exit_code == ExitCode.USAGE
    chain = _error_chain(caught.value)
    for needle in (text.strip(), text.strip().removeprefix("0x")):
        if len(needle) >= 4:  # shorter ones ("0x") occur in any sentence
            assert needle not in chain


def test_parse_private_key_accepts_the_usual_spellings() -> None:
    key = secrets.token_bytes(32)

    for text in (key.hex(), "0x" + key.hex(), key.hex().upper(), f"  0x{key.hex()}\n"):
        assert parse_private_key(text) == key


# ----------------------------------------------------------------------------- the CLI


def test_account_new_prints_the_name_and_address_only(project: Path) -> None:
    code, stdout, stderr = _cli("account", "new", "carol")

    assert code == 0, stderr
    name, address = stdout.split()
    assert name == "carol"
    [info] = list_accounts(project / ".proml")
    assert info.address == address
    assert _mode(info.path) == 0o600


def _v3_keystore(path: Path, key: bytes, password: str) -> dict[str, object]:
    # A small scrypt work factor keeps the test fast; the import copies whatever it is given.
    keystore = Account.encrypt(key, password, kdf="scrypt", iterations=2**10)
    path.write_text(json.dumps(keystore))
    return dict(keystore)


@pytest.mark.parametrize("prefixed", [False, True])
def test_account_import_keystore_copies_a_v3_file(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefixed: bool
) -> None:
    key = secrets.token_bytes(32)
    source = tmp_path / "UTC--exported.json"
    keystore = _v3_keystore(source, key, "their password")
    if prefixed:  # some tools write the address with 0x
        keystore["address"] = "0x" + str(keystore["address"])
        source.write_text(json.dumps(keystore))
    source.chmod(0o644)

    code, stdout, stderr = _cli(
        "account", "import", "imported", "--keystore", str(source), "--json"
    )

    assert code == 0, stderr
    address = Account.from_key(key).address
    assert json.loads(stdout) == {"schema_version": 1, "name": "imported", "address": address}
    copied = keys_dir(project / ".proml") / "imported.json"
    assert json.loads(copied.read_text()) == keystore
    assert _mode(copied) == 0o600
    code, stdout, stderr = _cli("account", "list", "--json")
    assert code == 0, stderr
    assert {"name": "imported", "address": address} in json.loads(stdout)["accounts"]
    monkeypatch.setenv("PROML_KEYSTORE_PASSWORD", "their password")
    assert load_signer(project / ".proml", "imported").address == address


@pytest.mark.parametrize(
    "content",
    [
        "this is not JSON, and holds a-secret-token",
        json.dumps({"version": 1, "address": "00" * 20, "secret": "a-secret-token"}),
        json.dumps({"version": 3, "address": "00" * 20, "note": "a-secret-token"}),
        json.dumps({"version": 3, "crypto": {}, "address": "not an address a-secret-token"}),
    ],
)
def test_account_import_refuses_a_file_that_is_not_a_v3_keystore(
    project: Path, tmp_path: Path, content: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_text(content)

    code, stdout, stderr = _cli("account", "import", "imported", "--keystore", str(source))

    assert code == ExitCode.USAGE
    assert stdout == ""
    assert "not a V3 Ethereum keystore" in stderr
    assert "a-secret-token" not in stderr
    assert not (keys_dir(project / ".proml") / "imported.json").exists()


def test_import_keystore_refuses_a_taken_name(state: Path, tmp_path: Path) -> None:
    create_account(state, "taken")
    source = tmp_path / "ks.json"
    _v3_keystore(source, secrets.token_bytes(32), "pw")

    with pytest.raises(InputError, match="exists already"):
        import_keystore(state, "taken", source)


def test_account_import_reads_a_key_from_stdin_and_never_prints_it(project: Path) -> None:
    key = secrets.token_bytes(32)

    code, stdout, stderr = _cli("account", "import", "piped", stdin=f"0x{key.hex()}\n")

    assert code == 0, stderr
    assert stdout.split() == ["piped", Account.from_key(key).address]
    assert key.hex() not in stdout + stderr
    stored = (keys_dir(project / ".proml") / "piped.json").read_bytes()
    assert key.hex().encode() not in stored.lower()


def test_account_import_of_a_bad_key_echoes_nothing(project: Path) -> None:
    text = "0x" + "c0ffee" * 10  # 30 bytes: almost a key

    code, stdout, stderr = _cli("account", "import", "piped", stdin=text + "\n")

    assert code == ExitCode.USAGE
    assert stdout == ""
    assert "c0ffee" not in stderr
    assert not (keys_dir(project / ".proml") / "piped.json").exists()


# ----------------------------------------------------------------------------- who signs


def test_a_named_account_with_another_key_in_the_environment_is_refused(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    intern = create_account(state, "intern")
    other = Account.create()
    monkeypatch.setenv("PROML_PRIVATE_KEY", other.key.hex())

    with pytest.raises(InputError) as caught:
        select_signer(state, "intern")

    assert caught.value.exit_code == ExitCode.USAGE
    assert intern.address in caught.value.diagnosis
    assert other.address in caught.value.diagnosis
    assert other.key.hex().removeprefix("0x") not in _error_chain(caught.value)


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_named_account_signs_as_itself(
    state: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    intern = create_account(state, "intern")
    if how == "environment":
        monkeypatch.setenv("PROML_ACCOUNT", "intern")

    choice = select_signer(state, "intern" if how == "flag" else None)

    assert choice.address == intern.address
    assert choice.describe() == f"signing as {intern.address} (account 'intern')"


def test_the_named_accounts_own_key_from_the_environment_signs(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.token_bytes(32)
    intern = create_account(state, "intern", private_key=key)
    monkeypatch.setenv("PROML_PRIVATE_KEY", key.hex())
    monkeypatch.setenv("PROML_KEYSTORE_PASSWORD", "not the password")  # never needed

    choice = select_signer(state, "intern")

    assert choice.address == intern.address
    assert "PROML_PRIVATE_KEY" in choice.source


def test_the_environment_key_signs_when_no_account_is_named(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Account.create()
    monkeypatch.setenv("PROML_PRIVATE_KEY", other.key.hex())

    choice = select_signer(state)

    assert choice.address == other.address
    assert choice.describe() == f"signing as {other.address} (PROML_PRIVATE_KEY)"
