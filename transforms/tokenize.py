"""Keyed pseudonyms: ``base64url(HMAC-SHA-256(key, normalized value))`` cut to a fixed length.

The same value under the same key always gives the same token (linkable within a key's scope); under another key it
gives an unrelated token. 22 characters carry 132 bits, more than enough to make collisions between distinct ids
negligible. The key arrives as bytes from the caller (``keys``); only the HMAC state derived from it is kept.

Speed. HMAC is computed with the RFC 2104 construction over SHA-256 objects whose inner and outer pads were
absorbed once per key: a call then copies two hash states and finalizes two blocks. With OpenSSL 3, the one-shot
``hmac.digest`` re-fetches the algorithm on every call and measured ~1.5 µs; the precomputed form ~0.95 µs with
CPython's built-in SHA-256 (cheaper state copies than OpenSSL's), checked at import against ``hmac.new`` so the output
is provably the standard HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import unicodedata
from binascii import b2a_base64
from collections.abc import Callable
from typing import Any, ClassVar

from .operators import ValueOperator

__all__ = ["MIN_KEY_BYTES", "TOKEN_ALPHABET", "HmacSha256", "TokenizeOp", "normalize_identifier", "token"]

#: Shortest key accepted (128 bits). Keys come from the key store and are 32 bytes there.
MIN_KEY_BYTES = 16
#: Every character a token can hold: the base64url alphabet (RFC 4648 section 5) without padding. The CSV writer
#: relies on it: a value drawn from it alone cannot call a spreadsheet function (no parenthesis, quote, ``|`` or
#: ``!``), and the value is an HMAC output nobody chooses, so a token is written as it is, even with a leading ``-``.
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # noqa: S105 - an alphabet, no secret

_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_MOBILE_SEPARATORS = str.maketrans("", "", " -()\u00a0")
_CARD_SEPARATORS = str.maketrans("", "", " -\u00a0")


def _sha256_constructor() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 when present (``_sha2`` from 3.12, ``_sha256`` before), else hashlib's.

    Whichever is chosen must reproduce ``hmac.new`` on a fixed vector, or hashlib's is used.
    """
    candidates: list[Callable[[bytes], Any]] = []
    for module in ("_sha2", "_sha256"):
        try:
            candidates.append(importlib.import_module(module).sha256)
        except (ImportError, AttributeError):
            continue
    key, msg = b"\x0b" * 20, b"Hi There"  # RFC 4231 test case 1
    expected = hmac.new(key, msg, hashlib.sha256).digest()
    for new in candidates:
        if _hmac_with(new, key, msg) == expected:
            return new
    return hashlib.sha256


def _pads(new: Callable[[bytes], Any], key: bytes) -> tuple[Any, Any]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return new(padded.translate(_IPAD)), new(padded.translate(_OPAD))


def _hmac_with(new: Callable[[bytes], Any], key: bytes, msg: bytes) -> bytes:
    inner, outer = _pads(new, key)
    inner.update(msg)
    outer.update(inner.digest())
    digest: bytes = outer.digest()
    return digest


_new_sha256 = _sha256_constructor()


class HmacSha256:
    """HMAC-SHA-256 under one key, with the key pads absorbed once. Holds no raw key; its repr shows none."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError("an HMAC key is bytes")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"an HMAC key has at least {MIN_KEY_BYTES} bytes")
        self._inner, self._outer = _pads(_new_sha256, bytes(key))

    def digest(self, msg: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        out: bytes = outer.digest()
        return out

    def copiers(self) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """The bound ``copy`` methods of the inner and outer states, for hot loops that inline ``digest``."""
        return self._inner.copy, self._outer.copy

    def __repr__(self) -> str:
        return "HmacSha256(<key hidden>)"

    def __reduce__(self) -> Any:  # pickling would carry the key-derived state out of the process
        raise TypeError("HmacSha256 objects cannot be pickled")


def normalize_identifier(value: Any, fmt: str | None = None) -> str:
    """The text that is tokenized for ``value``, so that one person always gets one token.

    Always: ``str(value).strip()``. By column format:
      * ``resident_id``: full-width characters folded (NFKC) and upper-cased (a trailing ``x`` is ``X``);
      * ``mobile``: NFKC, spaces/dashes/parentheses removed, a ``+86``/``0086``/``86`` country prefix removed;
      * ``bank_card``: NFKC, spaces and dashes removed;
      * ``email``: lower-cased.
    """
    s = (value if value.__class__ is str else str(value)).strip()
    if fmt is None:
        return s
    if fmt == "resident_id":
        if not s.isascii():
            s = unicodedata.normalize("NFKC", s)
        return s.upper()
    if fmt == "mobile":
        if not s.isascii():
            s = unicodedata.normalize("NFKC", s)
        s = s.translate(_MOBILE_SEPARATORS)
        if s.startswith("+86"):
            return s[3:]
        if s.startswith("0086"):
            return s[4:]
        if len(s) == 13 and s.startswith("86"):
            return s[2:]
        return s
    if fmt == "bank_card":
        if not s.isascii():
            s = unicodedata.normalize("NFKC", s)
        return s.translate(_CARD_SEPARATORS)
    if fmt == "email":
        return s.lower()
    return s


def token(mac: HmacSha256, value: Any, *, length: int = 22, fmt: str | None = None) -> str:
    """One token, outside a compiled plan (tests, single lookups). Same result as ``TokenizeOp``."""
    if not 16 <= length <= 43:
        raise ValueError("token length is between 16 and 43 characters")
    digest = mac.digest(normalize_identifier(value, fmt).encode("utf-8"))
    return b2a_base64(digest, newline=False)[:length].translate(_URLSAFE).decode("ascii")


class TokenizeOp(ValueOperator):
    """``tokenize``: a fixed-length token over ``[A-Za-z0-9_-]``."""

    opaque_output: ClassVar[bool] = True

    __slots__ = ("format", "length")
    name = "tokenize"

    def __init__(self, mac: HmacSha256, *, length: int = 22, fmt: str | None = None) -> None:
        if not 16 <= length <= 43:
            raise ValueError("token length is between 16 and 43 characters")
        self.length = length
        self.format = fmt
        icopy, ocopy = mac.copiers()
        # b2a_base64 of 32 bytes is 43 characters, one "=" and a newline: any length <= 43 cuts both off.

        if fmt is None:
            # The common case, inlined: no normalization call, one type test.
            def fn(value: Any) -> Any:
                if value is None:
                    return None
                if value.__class__ is not str:
                    value = str(value)
                inner = icopy()
                inner.update(value.strip().encode())
                outer = ocopy()
                outer.update(inner.digest())
                return b2a_base64(outer.digest())[:length].translate(_URLSAFE).decode()

        elif fmt == "resident_id":

            def fn(value: Any) -> Any:
                if value is None:
                    return None
                if value.__class__ is not str:
                    value = str(value)
                value = value.strip()
                if not value.isascii():
                    value = unicodedata.normalize("NFKC", value)
                inner = icopy()
                inner.update(value.upper().encode())
                outer = ocopy()
                outer.update(inner.digest())
                return b2a_base64(outer.digest())[:length].translate(_URLSAFE).decode()

        else:

            def fn(value: Any) -> Any:
                if value is None:
                    return None
                inner = icopy()
                inner.update(normalize_identifier(value, fmt).encode("utf-8"))
                outer = ocopy()
                outer.update(inner.digest())
                return b2a_base64(outer.digest())[:length].translate(_URLSAFE).decode()

        self.fn = fn

    def params(self) -> dict[str, object]:
        return {"length": self.length, "format": self.format}
