"""Master key rotation: a new master key file, every wrapped key re-wrapped under it, the old file kept aside.

Procedure (``gateway keys rotate-master``; stop every gateway process first, since a running one still holds the old
master key and would wrap any key it creates under it):

1. The new key is written to ``<master>.new`` (mode 0600, never overwritten). If that file already exists, a previous
   rotation stopped half-way and is resumed with the same new key.
2. ``rewrap_all(old, new)`` re-wraps every record in the key store in one transaction (records already under the new
   key are skipped, which makes a resumed rotation idempotent; a record under any third key aborts everything).
3. The old file is hard-linked to ``<master>.old-<YYYY-MM-DD>`` (same inode, so still 0600), then ``<master>.new``
   atomically replaces ``<master>``. At no moment is there no master key file.

Keep the ``.old-`` file until a backup of the database taken *after* the rotation exists: backups taken before it
can only be read with the old key. Key material stays in memory and in 0600 files; nothing is printed or exported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keys.errors import MasterKeyError
from keys.master import MasterKey, create_master_key_file, load_master_key

__all__ = ["MasterRotation", "rotate_master_key_file"]


@dataclass(frozen=True, slots=True)
class MasterRotation:
    old_key_id: str
    new_key_id: str
    rewrapped: int
    backup: Path
    resumed: bool


def _backup_path(path: Path, today: dt.date) -> Path:
    base = path.with_name(f"{path.name}.old-{today.isoformat()}")
    candidate, n = base, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def rotate_master_key_file(
    path: Path, rewrap_all: Callable[[MasterKey, MasterKey], int], *, today: dt.date | None = None
) -> MasterRotation:
    """Rotate the master key at ``path``; ``rewrap_all(old, new)`` re-wraps the store and returns how many records."""
    path = Path(path)
    old = load_master_key(path)
    pending = path.with_name(path.name + ".new")
    resumed = os.path.lexists(pending)
    new = load_master_key(pending) if resumed else create_master_key_file(pending)
    if new == old:
        raise MasterKeyError(f"{pending}: holds the current master key; remove it and run the rotation again")
    rewrapped = rewrap_all(old, new)
    backup = _backup_path(path, today or dt.datetime.now(dt.UTC).date())
    try:
        os.link(path, backup)
        os.replace(pending, path)
    except OSError as exc:
        raise MasterKeyError(
            f"{path}: the keys were re-wrapped under {pending.name} but the files could not be swapped "
            f"({exc.strerror}); run the rotation again to finish it"
        ) from None
    _fsync_dir(path.parent)
    return MasterRotation(old.key_id, new.key_id, rewrapped, backup, resumed)
