"""`SecretBytes`: a small immutable wrapper that keeps key material out of logs, reprs and pickles.

It does not (and in CPython cannot) guarantee the bytes are wiped from memory; what it guarantees is that the
value only leaves the wrapper through an explicit :meth:`SecretBytes.reveal` call, which is easy to grep for.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

from Crypto.Random import get_random_bytes

__all__ = ["SecretBytes"]


class SecretBytes:
    """Immutable, unhashable, unpicklable holder of secret bytes.

    * ``repr``/``str``/``format`` → ``SecretBytes(<redacted, 32 bytes>)``
    * ``==`` compares in constant time (``hmac.compare_digest``) and only with another ``SecretBytes``
    * ``hash()`` raises ``TypeError`` (do not use secrets as dict keys: lookups would not be constant-time)
    * ``pickle`` raises ``TypeError``; ``copy.copy``/``copy.deepcopy`` return the same (immutable) object
    """

    __slots__ = ("_value",)
    _value: bytes

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"SecretBytes needs bytes, not {type(value).__name__}")
        object.__setattr__(self, "_value", bytes(value))

    @classmethod
    def generate(cls, length: int = 32) -> SecretBytes:
        """``length`` bytes from the operating system's CSPRNG (``Crypto.Random.get_random_bytes``)."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError("length must be a positive integer")
        return cls(get_random_bytes(length))

    def reveal(self) -> bytes:
        """The secret bytes. Every call site is a place where key material leaves the wrapper."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes(<redacted, {len(self._value)} bytes>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    # Defining __eq__ without __hash__ already makes instances unhashable; spelled out for the reader.
    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("SecretBytes is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("SecretBytes is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __copy__(self) -> SecretBytes:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretBytes:
        return self
