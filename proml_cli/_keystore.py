"""Decrypting Web3 Secret Storage (V3) keystores without eth-keyfile's import chain.

eth-keyfile imports py_ecc's BLS12-381 code at import time (for its V4 keystores), which cost
about 0.4 s of every command that opened a keystore (measured with ``python -X importtime``).
A V3 keystore needs none of it: scrypt or PBKDF2 from :mod:`hashlib` (OpenSSL), a Keccak-256
MAC and AES-128-CTR from pycryptodome, which eth-keyfile already brings. The test suite checks
this module against eth-account on keystores eth-account wrote.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

__all__ = ["KeystoreError", "WrongPasswordError", "decrypt"]

#: The scrypt parameters a keystore may ask for before it is refused as unreasonable: a file
#: found on disk must not make proml allocate gigabytes (2**20 * 8 * 128 bytes = 1 GiB).
MAX_SCRYPT_MEMORY = 1 << 30


class KeystoreError(ValueError):
    """The keystore is not one this module can read (malformed, or not version 3)."""


class WrongPasswordError(KeystoreError):
    """The MAC does not match: the password is wrong (or the keystore was altered)."""


def decrypt(keystore: Mapping[str, Any], password: str | bytes) -> bytes:
    """The 32-byte private key held in a V3 keystore.

    Args:
        keystore: the parsed JSON document (keys are matched case-insensitively, as
            eth-keyfile does).
        password: text (encoded as UTF-8, as eth-account does) or bytes.

    Returns:
        The private key bytes, exactly as ``eth_account.Account.decrypt`` returns them.

    Raises:
        WrongPasswordError: the MAC check failed.
        KeystoreError: malformed keystore, unsupported version, KDF or cipher.
    """
    secret = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    data = _lower(keystore)
    try:
        version = int(data["version"])
        crypto = data["crypto"]
        kdf = str(crypto["kdf"])
        params = crypto["kdfparams"]
        ciphertext = bytes.fromhex(_hex(crypto["ciphertext"]))
        mac = bytes.fromhex(_hex(crypto["mac"]))
        cipher = str(crypto.get("cipher", "aes-128-ctr"))
        iv = bytes.fromhex(_hex(crypto["cipherparams"]["iv"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KeystoreError(f"not a V3 keystore ({type(exc).__name__}: {exc})") from None
    if version != 3:
        raise KeystoreError(f"keystore version {version} is not supported (only 3)")
    if cipher != "aes-128-ctr":
        raise KeystoreError(f"keystore cipher {cipher!r} is not supported (only aes-128-ctr)")
    derived = _derive(kdf, params, secret)
    from Crypto.Hash import keccak

    expected = keccak.new(digest_bits=256, data=derived[16:32] + ciphertext).digest()
    if not hmac.compare_digest(expected, mac):
        raise WrongPasswordError("MAC mismatch")
    from Crypto.Cipher import AES
    from Crypto.Util import Counter

    counter = Counter.new(128, initial_value=int.from_bytes(iv, "big"), allow_wraparound=True)
    return bytes(AES.new(derived[:16], AES.MODE_CTR, counter=counter).decrypt(ciphertext))


def _derive(kdf: str, params: Mapping[str, Any], secret: bytes) -> bytes:
    """The key-derivation step (scrypt or PBKDF2-HMAC), with the keystore's own parameters."""
    try:
        salt = bytes.fromhex(_hex(params["salt"]))
        dklen = int(params["dklen"])
        if kdf == "scrypt":
            n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
            # OpenSSL's scrypt needs about 128 * r * (n + p + 2) bytes; its default cap is 32 MiB.
            memory = 128 * r * (n + p + 2)
            if memory > MAX_SCRYPT_MEMORY:
                raise KeystoreError(f"keystore scrypt parameters need {memory} bytes of memory")
            return hashlib.scrypt(
                secret, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=memory + (1 << 20)
            )
        if kdf == "pbkdf2":
            prf = str(params["prf"])
            if not prf.startswith("hmac-"):
                raise KeystoreError(f"keystore PBKDF2 PRF {prf!r} is not supported")
            return hashlib.pbkdf2_hmac(prf[5:], secret, salt, int(params["c"]), dklen)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, KeystoreError):
            raise
        raise KeystoreError(f"bad {kdf} parameters ({type(exc).__name__}: {exc})") from None
    raise KeystoreError(f"keystore KDF {kdf!r} is not supported (scrypt or pbkdf2)")


def _hex(value: Any) -> str:
    return str(value).removeprefix("0x")


def _lower(value: Any) -> Any:
    """Keys lower-cased at every level, as eth-keyfile normalises them."""
    if isinstance(value, Mapping):
        return {(k.lower() if isinstance(k, str) else k): _lower(v) for k, v in value.items()}
    return value
