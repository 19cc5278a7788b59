"""proml's own V3 keystore decryption gives eth-account's answer, and keeps BLS code out."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from eth_account import Account

from proml_cli import _keystore

KEY = bytes(range(1, 33))


@pytest.mark.parametrize(
    ("kdf", "iterations"),
    [("scrypt", 2**10), ("scrypt", 2**15), ("pbkdf2", 1000), ("pbkdf2", None)],
)
@pytest.mark.parametrize("password", ["", "correct horse", "pässwörd ✓"])
def test_decrypts_what_eth_account_encrypts(
    kdf: str, iterations: int | None, password: str
) -> None:
    keystore = Account.encrypt(KEY, password, kdf=kdf, iterations=iterations)
    ours = _keystore.decrypt(keystore, password)
    assert ours == bytes(Account.decrypt(keystore, password)) == KEY


def test_random_keys_round_trip() -> None:
    for _ in range(5):
        account = Account.create()
        keystore = Account.encrypt(account.key, "pw", kdf="scrypt", iterations=2**10)
        assert _keystore.decrypt(json.loads(json.dumps(keystore)), "pw") == bytes(account.key)


def test_keys_are_matched_case_insensitively_and_bytes_passwords_work() -> None:
    keystore = Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=1000)
    shouting = {k.upper(): v for k, v in keystore.items()}
    shouting["CRYPTO"] = {k.upper(): v for k, v in keystore["crypto"].items()}
    assert _keystore.decrypt(shouting, b"pw") == KEY


def test_wrong_password_is_refused_like_eth_account() -> None:
    keystore = Account.encrypt(KEY, "right", kdf="scrypt", iterations=2**10)
    with pytest.raises(ValueError, match="MAC mismatch"):
        Account.decrypt(keystore, "wrong")
    with pytest.raises(_keystore.WrongPasswordError):
        _keystore.decrypt(keystore, "wrong")


def test_tampered_ciphertext_is_refused() -> None:
    keystore = Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=1000)
    text = keystore["crypto"]["ciphertext"]
    keystore["crypto"]["ciphertext"] = ("0" if text[0] != "0" else "1") + text[1:]
    with pytest.raises(_keystore.WrongPasswordError):
        _keystore.decrypt(keystore, "pw")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda k: k.update(version=4), "version 4"),
        (lambda k: k["crypto"].update(kdf="argon2"), "argon2"),
        (lambda k: k["crypto"].update(cipher="aes-256-gcm"), "cipher"),
        (lambda k: k["crypto"].pop("mac"), "not a V3 keystore"),
        (lambda k: k["crypto"]["kdfparams"].update(n=2**30), "memory"),
        (lambda k: k["crypto"]["kdfparams"].pop("salt"), "bad scrypt parameters"),
    ],
)
def test_malformed_keystores_are_refused(change: object, message: str) -> None:
    keystore = Account.encrypt(KEY, "pw", kdf="scrypt", iterations=2**10)
    change(keystore)  # type: ignore[operator]
    with pytest.raises(_keystore.KeystoreError, match=message):
        _keystore.decrypt(keystore, "pw")


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_stand_ins_keep_bls_code_out_and_still_work(tmp_path: Path) -> None:
    """After install(): eth-account signs and keystores round-trip, py_ecc BLS never loads."""
    script = """
        import sys
        from proml_cli import _deferred
        _deferred.install()
        from eth_account import Account
        from web3 import Web3
        import eth.precompiles
        account = Account.create()
        signed = account.sign_transaction({"to": account.address, "value": 1, "gas": 21000,
            "gasPrice": 1, "nonce": 0, "chainId": 1})
        assert Account.recover_transaction(signed.raw_transaction) == account.address
        assert not [m for m in sys.modules if m.startswith(("py_ecc.bls", "py_ecc.optimized_bls"))]
        keystore = Account.encrypt(account.key, "pw", kdf="scrypt", iterations=1024)
        assert Account.decrypt(keystore, "pw") == account.key
        import eth_keyfile
        from eth_keyfile.keyfile import get_default_work_factor_for_kdf
        assert get_default_work_factor_for_kdf("pbkdf2") > 0
        assert eth_keyfile.__version__
        assert eth_keyfile.extract_key_from_keyfile is not None
        print("ok")
    """
    result = _run(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_bls_precompile_runs_through_its_stand_in() -> None:
    """A BLS12-381 precompile called through the stand-in gives py-evm's own answer."""
    script = """
        import sys
        from proml_cli import _deferred
        _deferred.install()
        import eth.precompiles as precompiles
        assert "eth.precompiles.bls12_381.bls12_381_g1" not in sys.modules

        class Computation:
            def __init__(self, data):
                self.msg = type("Msg", (), {"data": data})()
                self.output = b""
                self.gas = 0
            def consume_gas(self, amount, reason):
                self.gas += amount

        # G1 generator + point at infinity = the generator (EIP-2537 test vector shape).
        from py_ecc.optimized_bls12_381 import G1, normalize
        x, y = normalize(G1)
        point = int(x).to_bytes(64, "big") + int(y).to_bytes(64, "big")
        computation = Computation(point + bytes(128))
        precompiles.bls12_g1_add(computation)
        assert computation.output == point, computation.output.hex()
        assert computation.gas > 0
        from eth.precompiles.bls12_381.bls12_381_g1 import bls12_g1_add
        assert bls12_g1_add is not precompiles.bls12_g1_add
        print("ok")
    """
    result = _run(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
