"""Shared fixtures and helpers for the keys tests."""

from __future__ import annotations

import base64

import pytest

from keys import KeyRing, MasterKey, MemoryKeyStore, SecretBytes


def leak_forms(secret: bytes) -> list[str]:
    """Textual forms in which key bytes could leak: hex (both cases), base64, urlsafe base64, repr of bytes."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode("ascii"),
        base64.urlsafe_b64encode(secret).decode("ascii"),
        base64.b64encode(secret).decode("ascii").rstrip("="),
        repr(secret)[2:-1],
    ]


def assert_no_leak(text: str, *secrets: bytes) -> None:
    for secret in secrets:
        for form in leak_forms(secret):
            assert form not in text, f"key material leaked into {text!r}"


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(SecretBytes(bytes(range(32))))


@pytest.fixture
def other_master() -> MasterKey:
    return MasterKey(SecretBytes(bytes(range(100, 132))))


@pytest.fixture
def store() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def ring(master: MasterKey, store: MemoryKeyStore) -> KeyRing:
    return KeyRing(master, store)
