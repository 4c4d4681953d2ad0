"""The keyed hashes the log stores instead of identifiers: subjects in the subject index, filter values in plans.

One place derives both keys, so the accounting of disclosures (which hashes the id a compliance officer asks about)
and every release (which hashes the ids it sends) cannot drift apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from keys import KeyRing
from transforms import HmacSha256

__all__ = ["ORDER_KEY_BYTES", "LogKeys", "SubjectOrder", "release_order"]

_OWNER = "log:subject-index"


@dataclass(frozen=True, slots=True)
class LogKeys:
    """The two log hashing keys of a keyring. ``subject``: 16-byte HMAC-SHA-256 of a subject key (the subject
    index); ``filter_value``: 32 hex characters of HMAC-SHA-256 of a filter value on a direct identifier."""

    _subjects: HmacSha256 = field(repr=False)
    _filters: HmacSha256 = field(repr=False)

    @classmethod
    def of(cls, keyring: KeyRing) -> LogKeys:
        # HmacSha256 absorbs the pads once: ~2x cheaper per subject than hmac.new on the hot path.
        return cls(
            HmacSha256(keyring.derive(_OWNER, "subjects").reveal()),
            HmacSha256(keyring.derive(_OWNER, "filter-values").reveal()),
        )

    def subject(self, subject_key: object) -> bytes:
        return self._subjects.digest(str(subject_key).encode())[:16]

    def subjects(self, subject_keys: list[object]) -> list[bytes]:
        digest = self._subjects.digest
        return [digest(str(s).encode())[:16] for s in subject_keys]

    def filter_value(self, value: object) -> str:
        return self._filters.digest(str(value).encode()).hex()[:32]


#: bytes of the order key kept per row (96 bits: no collision among a registry's subjects to worry about)
ORDER_KEY_BYTES = 12
SubjectOrder = Callable[[bytes], bytes]


def release_order(agreement_id: str) -> SubjectOrder:
    """The order of subjects in a release under ``agreement_id`` and in its subject-set commitment: by
    SHA-256(agreement id, subject-index hash). A requester cannot compute it (the subject-index hash is keyed with
    the log's secret), two agreements' orders are unrelated, and ``gateway log verify`` can recompute it from the
    subject index alone, without any key."""
    prefix = b"dxg-release-order\x00" + agreement_id.encode("utf-8") + b"\x00"
    sha = hashlib.sha256

    def key(subject_hash: bytes) -> bytes:
        return sha(prefix + subject_hash).digest()[:ORDER_KEY_BYTES]

    return key
