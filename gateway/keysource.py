"""Bridge from the key ring to the transforms: per-agreement and per-domain operator keys, derived by purpose."""

from __future__ import annotations

import hashlib
import hmac

from keys import KeyRing

__all__ = ["AgreementKeySource", "agreement_owner", "dataset_owner", "domain_owner", "fingerprint_key"]


def agreement_owner(agreement_id: str) -> str:
    return f"agreement:{agreement_id}"


def domain_owner(domain: str) -> str:
    return f"domain:{domain}"


def dataset_owner(dataset: str) -> str:
    """Owner of keys that belong to a catalog dataset whatever agreement uses it (the cell-key record keys)."""
    return f"dataset:{dataset}"


class AgreementKeySource:
    """Keys for one agreement's operators. Tokens of a linkage domain use the domain's key, so two agreements that
    name the same domain produce linkable tokens and all others do not."""

    def __init__(self, ring: KeyRing, agreement_id: str) -> None:
        self._ring = ring
        self._agreement_id = agreement_id

    def __repr__(self) -> str:
        return f"AgreementKeySource({self._agreement_id!r})"

    def _owner(self, domain: str | None) -> str:
        return domain_owner(domain) if domain else agreement_owner(self._agreement_id)

    def tokenize_key(self, domain: str | None) -> bytes:
        return self._ring.derive(self._owner(domain), "tokenize").reveal()

    def date_shift_key(self, domain: str | None) -> bytes:
        return self._ring.derive(self._owner(domain), "date-shift").reveal()


def fingerprint_key(ring: KeyRing, agreement_id: str, disclosure_id: str, *, version: int | None = None) -> bytes:
    """The per-disclosure fingerprint key: derived from the agreement's key and the disclosure id, never stored
    (attribution derives it again from the log's disclosure id; shredding the agreement's key ends it too).

    ``HMAC-SHA-256(HKDF(agreement key, "fingerprint"), disclosure id)``: the ring caches the one per-agreement
    subkey; a purpose per disclosure would make its derived-key cache grow by one key per release."""
    base = ring.derive(agreement_owner(agreement_id), "fingerprint", version=version).reveal()
    return hmac.digest(base, b"dxg-fingerprint-disclosure-v1\x00" + disclosure_id.encode("utf-8"), hashlib.sha256)
