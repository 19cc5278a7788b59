"""DSSE envelopes signed by a proml account, and their offline check against an address.

The signature is an Ethereum personal-message signature (EIP-191, secp256k1, 65 bytes
``r || s || v``) over DSSE's pre-authentication encoding (PAE) of the payload, so anyone holding
only the envelope and the signer's address can check it, offline, with any Ethereum library:
recover the address from ``EIP191(PAE(payloadType, payload))`` and the signature, and compare.
The signature's ``keyid`` is the signer's checksummed address (a hint, never trusted: the check
recovers the address from the signature itself).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from proml_cli.errors import InputError, VerificationFailed

PAYLOAD_TYPE_IN_TOTO = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload`` with ``payload_type``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(
    payload: bytes, signer: Any, *, payload_type: str = PAYLOAD_TYPE_IN_TOTO
) -> dict[str, Any]:
    """The DSSE envelope of ``payload`` signed by ``signer`` (an eth-account ``LocalAccount``).

    The key never leaves ``signer``; only the address and the signature are written.
    """
    from proml_cli import _deferred

    _deferred.install()
    from eth_account.messages import encode_defunct

    signed = signer.sign_message(encode_defunct(primitive=pae(payload_type, payload)))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {
                "keyid": str(signer.address),
                "sig": base64.b64encode(bytes(signed.signature)).decode("ascii"),
            }
        ],
    }


def verify(envelope: Mapping[str, Any], address: str) -> bytes:
    """The payload of ``envelope`` if one of its signatures recovers to ``address``.

    Runs offline: nothing but the envelope and the address is needed.

    Raises:
        InputError: not a DSSE envelope, or ``address`` is not an Ethereum address.
        VerificationFailed: no signature was made by ``address``.
    """
    from proml_cli import _deferred

    _deferred.install()
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_utils.address import is_address, to_checksum_address

    if not is_address(address):
        raise InputError(f"'{address}' is not an Ethereum address")
    wanted = to_checksum_address(address)
    try:
        payload_type = str(envelope["payloadType"])
        payload = base64.b64decode(str(envelope["payload"]), validate=True)
        signatures = [
            base64.b64decode(str(s["sig"]), validate=True) for s in envelope["signatures"]
        ]
    except (KeyError, TypeError, binascii.Error) as exc:
        raise InputError(f"not a DSSE envelope: {exc}") from exc
    message = encode_defunct(primitive=pae(payload_type, payload))
    recovered = []
    for signature in signatures:
        try:
            recovered.append(Account.recover_message(message, signature=signature))
        except ValueError:
            # A malformed signature proves nothing: it is one more that is not the signer's.
            recovered.append("an invalid signature")
    if wanted not in recovered:
        raise VerificationFailed(
            f"the envelope is not signed by {wanted} (signed by: {', '.join(recovered) or 'none'})",
            [f"signature by {r}" for r in recovered],
        )
    return payload
