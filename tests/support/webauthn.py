"""A software WebAuthn authenticator, built on ``cryptography``, for passkey tests.

It makes real P-256 credentials and signs real ``none`` attestations and assertions, so every
check of py_webauthn runs against it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = "https://example.com"


def b64(data: bytes) -> str:
    """Base64url without padding, as WebAuthn's JSON uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """The bytes of unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_UP, _UV, _BE, _BS, _AT = 0x01, 0x04, 0x08, 0x10, 0x40


class SoftAuthenticator:
    """A platform authenticator in software: one discoverable P-256 credential."""

    def __init__(self, *, verifies_user: bool = True, counts: bool = True):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.user_handle = b""
        self.verifies_user = verifies_user
        self.counter = 0
        self.counts = counts

    def _flags(self, *, attested: bool) -> bytes:
        flags = _UP | _BE | _BS | (_UV if self.verifies_user else 0) | (_AT if attested else 0)
        return bytes([flags])

    def _client_data(self, kind: str, options: dict[str, Any], origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": options["challenge"], "origin": origin}
        ).encode()

    def create(self, options_json: str, origin: str = ORIGIN) -> dict[str, Any]:
        """The browser's answer to navigator.credentials.create(options)."""
        options = json.loads(options_json)
        self.user_handle = unb64(options["user"]["id"])
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        auth_data = (
            hashlib.sha256(options["rp"]["id"].encode()).digest()
            + self._flags(attested=True)
            + self.counter.to_bytes(4, "big")
            + bytes(16)
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + cose
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(self._client_data("webauthn.create", options, origin)),
                "attestationObject": b64(attestation),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options_json: str, origin: str = ORIGIN) -> dict[str, Any]:
        """The browser's answer to navigator.credentials.get(options), counting a signature."""
        options = json.loads(options_json)
        if self.counts:
            self.counter += 1
        client_data = self._client_data("webauthn.get", options, origin)
        auth_data = (
            # A registration's options name the RP as rp.id: for the misdirection test.
            hashlib.sha256((options.get("rpId") or options["rp"]["id"]).encode()).digest()
            + self._flags(attested=False)
            + self.counter.to_bytes(4, "big")
        )
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_handle),
            },
            "clientExtensionResults": {},
        }
