"""The master key: one 32-byte AES-256 key in a file, used only to wrap (encrypt) the other keys.

File format (one text line, file mode 0600)::

    dxg-master-key-v1 <standard base64 of the 32 key bytes>\\n

The master key is identified by :attr:`MasterKey.key_id`, the first 16 hex digits of
``SHA-256(b"dxg-master-key-id\\x00" + key)``; the id is recorded with every wrapped key so that a wrong or
rotated master key is recognised, and it reveals nothing usable about the key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any, NoReturn

from keys.errors import MasterKeyError
from keys.secret import SecretBytes

__all__ = [
    "MASTER_KEY_FILE_HEADER",
    "MASTER_KEY_LENGTH",
    "MasterKey",
    "create_master_key_file",
    "ensure_master_key",
    "load_master_key",
    "master_key_id",
]

MASTER_KEY_FILE_HEADER = "dxg-master-key-v1"
MASTER_KEY_LENGTH = 32
_KEY_ID_PREFIX = b"dxg-master-key-id\x00"
_MAX_FILE_SIZE = 4096  # a valid file is 63 bytes; refuse to read anything large
_FILE_LINE_LENGTH = len(MASTER_KEY_FILE_HEADER) + 1 + 44 + 1
_RACE_WAIT_SECONDS = 2.0


def master_key_id(key: SecretBytes) -> str:
    """First 16 hex digits of SHA-256(b"dxg-master-key-id\\x00" + key)."""
    return hashlib.sha256(_KEY_ID_PREFIX + key.reveal()).hexdigest()[:16]


class MasterKey:
    """A 32-byte master key (key-encryption key) and its public identifier ``key_id``."""

    __slots__ = ("_key", "_key_id")

    _key: SecretBytes
    _key_id: str

    def __init__(self, key: SecretBytes) -> None:
        if not isinstance(key, SecretBytes):
            raise TypeError("MasterKey needs a SecretBytes")
        if len(key) != MASTER_KEY_LENGTH:
            raise MasterKeyError(f"a master key must be {MASTER_KEY_LENGTH} bytes, not {len(key)}")
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_key_id", master_key_id(key))

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random master key (in memory only; see :func:`create_master_key_file`)."""
        return cls(SecretBytes.generate(MASTER_KEY_LENGTH))

    @property
    def key(self) -> SecretBytes:
        return self._key

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self._key_id!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return self._key == other._key

    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("MasterKey is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("MasterKey is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("MasterKey cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("MasterKey cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("MasterKey cannot be pickled")


def _encode_file(key: SecretBytes) -> bytes:
    return f"{MASTER_KEY_FILE_HEADER} {base64.b64encode(key.reveal()).decode('ascii')}\n".encode("ascii")


def _fsync_dir(directory: Path) -> None:
    # Make the new directory entry durable; not every platform/filesystem allows opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create(path: Path) -> MasterKey:
    """Create the file; raises FileExistsError (untranslated) if it exists, for :func:`ensure_master_key`."""
    path = Path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise MasterKeyError(f"{path}: cannot create its directory ({exc.strerror})") from None
    master = MasterKey.generate()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        # Mode 0600 is applied by open(2) itself: the file never exists with wider permissions.
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise
    except OSError as exc:
        raise MasterKeyError(f"{path}: cannot create master key file ({exc.strerror})") from None
    try:
        data = _encode_file(master.key)
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise MasterKeyError(f"{path}: cannot write master key file ({exc.strerror})") from None
    os.close(fd)
    _fsync_dir(path.parent)
    return master


def create_master_key_file(path: Path) -> MasterKey:
    """Generate a master key and write it to a new file ``path`` (mode 0600, parents created, fsynced).

    Never overwrites: if ``path`` exists (even as a dangling symlink), raises :class:`MasterKeyError`.
    """
    try:
        return _create(Path(path))
    except FileExistsError:
        raise MasterKeyError(
            f"{path}: master key file already exists; refusing to overwrite it "
            "(the keys wrapped under it would become unreadable)"
        ) from None


def _parse(path: Path, data: bytes) -> SecretBytes:
    bad = f"{path}: not a dxg master key file"
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise MasterKeyError(f"{bad} (non-ASCII content)") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    parts = text.split(" ")
    if len(parts) != 2 or parts[0] != MASTER_KEY_FILE_HEADER:
        raise MasterKeyError(f"{bad} (expected one line '{MASTER_KEY_FILE_HEADER} <base64 key>')")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{bad} (the key is not valid base64)") from None
    if len(raw) != MASTER_KEY_LENGTH:
        raise MasterKeyError(f"{bad} (the key is {len(raw)} bytes, expected {MASTER_KEY_LENGTH})")
    return SecretBytes(raw)


def _read(path: Path, check_permissions: bool) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MasterKeyError(f"{path}: master key file not found (create one with create_master_key_file)") from None
    except OSError as exc:
        raise MasterKeyError(f"{path}: cannot open master key file ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MasterKeyError(f"{path}: master key path is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if check_permissions and mode & 0o077:
            what = "readable" if mode & 0o044 else "accessible"
            raise MasterKeyError(f"{path} is {what} by group/others (mode {mode:04o}); run chmod 600 {path}")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, _MAX_FILE_SIZE + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_FILE_SIZE:
                raise MasterKeyError(f"{path}: not a dxg master key file (over {_MAX_FILE_SIZE} bytes)")
    except OSError as exc:
        raise MasterKeyError(f"{path}: cannot read master key file ({exc.strerror})") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def load_master_key(path: Path, *, check_permissions: bool = True) -> MasterKey:
    """Read the master key from ``path``.

    With ``check_permissions`` (the default) the file must be a regular file with no group/other permission
    bits (``chmod 600``); the check is done on the opened file descriptor.
    """
    path = Path(path)
    return MasterKey(_parse(path, _read(path, check_permissions)))


def ensure_master_key(path: Path, *, check_permissions: bool = True) -> tuple[MasterKey, bool]:
    """Load the master key at ``path``, creating it first if it does not exist.

    Returns ``(master_key, created)``. Safe against a concurrent creator: exactly one process creates the file
    (``O_EXCL``), the others load it. A file that exists but is invalid is an error, never replaced.
    """
    path = Path(path)
    if not os.path.lexists(path):
        try:
            return _create(path), True
        except FileExistsError:
            pass
    # The file exists. Its creator (another process, or a thread that won the O_EXCL race) may still be
    # writing its one short line: while what we read is shorter than a full line and the file was modified
    # just now, retry briefly. An old short file is simply invalid.
    deadline = time.monotonic() + _RACE_WAIT_SECONDS
    while True:
        data = _read(path, check_permissions)
        if len(data) >= _FILE_LINE_LENGTH - 1 or time.monotonic() >= deadline or not _just_modified(path):
            return MasterKey(_parse(path, data)), False
        time.sleep(0.01)


def _just_modified(path: Path) -> bool:
    try:
        return abs(time.time() - os.stat(path).st_mtime) < _RACE_WAIT_SECONDS
    except OSError:
        return False
