"""Adapters between the key package's Ed25519 keys and the checkpoint code's Signer / Verifier protocols."""

from __future__ import annotations

import hashlib

from keys import SigningKey, VerifyKey
from tlog import ed25519_key_hash

__all__ = ["LogSigner", "LogVerifier"]


class LogSigner:
    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "LogSigner(<private key redacted>)"

    @property
    def public_key(self) -> VerifyKey:
        return self._key.public_key

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def key_hash(self, name: str) -> bytes:
        return ed25519_key_hash(name, self._key.public_key.raw)


class LogVerifier:
    def __init__(self, key: VerifyKey) -> None:
        self._key = key

    @classmethod
    def from_pem(cls, pem: str) -> LogVerifier:
        return cls(VerifyKey.from_pem(pem))

    def verify(self, message: bytes, signature: bytes) -> None:
        self._key.verify(message, signature)

    def key_hash(self, name: str) -> bytes:
        return ed25519_key_hash(name, self._key.raw)

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the raw Ed25519 public key: what a person compares with the key they were given
        (the deployment's ``log.pub``), independent of the PEM wrapping and of the log's origin line."""
        return "sha256:" + hashlib.sha256(self._key.raw).hexdigest()
