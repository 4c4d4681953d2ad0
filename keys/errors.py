"""The one exception hierarchy of the ``keys`` package.

Every error raised on purpose by ``keys`` is a :class:`KeysError`. Messages name paths, owners, versions and
key ids (which are public identifiers), never key material, file content or partial decryptions.
"""

from __future__ import annotations

__all__ = [
    "KeyDestroyedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyUnwrapError",
    "KeysError",
    "MasterKeyError",
    "SignatureError",
]


class KeysError(Exception):
    """Base class of every error of the ``keys`` package (also raised for malformed input)."""


class MasterKeyError(KeysError):
    """The master key file is missing, unreadable, malformed or has unsafe permissions.

    The message names the path and the problem (and what to do), never the file's content.
    """


class KeyNotFoundError(KeysError):
    """No key is stored for the requested owner (and version)."""


class KeyExistsError(KeysError):
    """A key for this (owner, version) is already stored; stores never overwrite a key."""


class KeyUnwrapError(KeysError):
    """A wrapped key failed to authenticate (wrong master key, tampered record, changed owner or version).

    Deliberately carries no detail on *which* check failed beyond what the record itself says.
    """


class KeyDestroyedError(KeysError):
    """The key was destroyed (crypto-shredding); data protected by it can no longer be recovered."""


class SignatureError(KeysError):
    """An Ed25519 signature did not verify."""
