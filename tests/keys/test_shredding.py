"""Crypto-shredding (destroy + tombstone) and master key rotation in the pure keys package."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from keys import (
    KeyDestroyedError,
    KeyRing,
    KeyStore,
    KeyUnwrapError,
    MasterKey,
    MasterKeyError,
    MemoryKeyStore,
    create_master_key_file,
    load_master_key,
    rewrap,
)
from keys.rotation import rotate_master_key_file
from tests.keys.conftest import assert_no_leak


def test_memory_store_still_implements_the_protocol(store: MemoryKeyStore) -> None:
    assert isinstance(store, KeyStore)


def test_destroy_deletes_every_version_and_keeps_a_tombstone(ring: KeyRing, store: MemoryKeyStore) -> None:
    ring.current("agreement:a")
    ring.rotate("agreement:a")
    ring.current("agreement:b")
    assert ring.destroy("agreement:a") == 2
    assert store.versions("agreement:a") == [] and store.latest("agreement:a") is None
    assert store.is_destroyed("agreement:a") and not store.is_destroyed("agreement:b")
    assert store.versions("agreement:b") == [1]  # other owners untouched


@pytest.mark.parametrize(
    "use",
    [
        lambda r: r.current("agreement:a"),
        lambda r: r.get("agreement:a", 1),
        lambda r: r.derive("agreement:a", "tokenize"),
        lambda r: r.derive("agreement:a", "tokenize", version=1),
        lambda r: r.rotate("agreement:a"),
    ],
    ids=["current", "get", "derive", "derive-version", "rotate"],
)
def test_a_destroyed_owner_raises_instead_of_getting_a_new_key(
    master: MasterKey, store: MemoryKeyStore, use: object
) -> None:
    ring = KeyRing(master, store)
    ring.derive("agreement:a", "tokenize")
    ring.destroy("agreement:a")
    with pytest.raises(KeyDestroyedError, match="destroyed"):
        use(ring)  # type: ignore[operator]
    # A ring in another process (fresh, same store and master) refuses too: the tombstone is in the store.
    with pytest.raises(KeyDestroyedError):
        use(KeyRing(master, store))  # type: ignore[operator]
    assert store.versions("agreement:a") == []


def test_another_ring_forgets_its_cached_key_when_told(master: MasterKey, store: MemoryKeyStore) -> None:
    here, there = KeyRing(master, store), KeyRing(master, store)
    there.derive("agreement:a", "tokenize")
    here.destroy("agreement:a")
    there.forget("agreement:a")
    with pytest.raises(KeyDestroyedError):
        there.derive("agreement:a", "tokenize")


def test_another_ring_notices_at_its_next_store_read(master: MasterKey, store: MemoryKeyStore) -> None:
    there = KeyRing(master, store)  # latest_ttl 0: the current version is read from the store on every call
    there.current("agreement:a")
    KeyRing(master, store).destroy("agreement:a")
    with pytest.raises(KeyDestroyedError):
        there.current("agreement:a")


def test_destroying_an_owner_that_never_had_a_key_still_blocks_it(ring: KeyRing) -> None:
    assert ring.destroy("domain:never-used") == 0
    with pytest.raises(KeyDestroyedError):
        ring.current("domain:never-used")


def test_errors_and_reprs_carry_no_key_material(ring: KeyRing) -> None:
    key = ring.current("agreement:a")[1].reveal()
    ring.destroy("agreement:a")
    with pytest.raises(KeyDestroyedError) as info:
        ring.current("agreement:a")
    assert_no_leak(str(info.value) + repr(ring), key)


# -- master key rotation ---------------------------------------------------------------------------------------


def _rewrap_store(store: MemoryKeyStore) -> object:
    def rewrap_all(old: MasterKey, new: MasterKey) -> int:
        count = 0
        for owner in store.owners():
            for version in store.versions(owner):
                record = store.get(owner, version)
                assert record is not None
                if record.master_key_id == new.key_id:
                    continue
                store._records[owner][version] = rewrap(old, new, record)  # test double: rewrite in place
                count += 1
        return count

    return rewrap_all


def test_rotate_master_rewraps_everything_and_keeps_the_old_file(tmp_path: Path, store: MemoryKeyStore) -> None:
    path = tmp_path / "master.key"
    old = create_master_key_file(path)
    ring = KeyRing(old, store)
    before = {o: ring.derive(o, "tokenize").reveal() for o in ("agreement:a", "domain:d", "log:signing")}
    done = rotate_master_key_file(path, _rewrap_store(store), today=dt.date(2026, 11, 28))  # type: ignore[arg-type]
    new = load_master_key(path)
    assert done.old_key_id == old.key_id and done.new_key_id == new.key_id != old.key_id
    assert done.rewrapped == 3 and not done.resumed
    assert done.backup == tmp_path / "master.key.old-2026-11-28"
    assert load_master_key(done.backup) == old
    assert stat.S_IMODE(os.stat(done.backup).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not (tmp_path / "master.key.new").exists()
    # Same keys under the new master (same tokens), unreadable under the old one.
    fresh = KeyRing(new, store)
    assert {o: fresh.derive(o, "tokenize").reveal() for o in before} == before
    with pytest.raises(KeyUnwrapError):
        KeyRing(old, store).derive("agreement:a", "tokenize")
    second = rotate_master_key_file(path, _rewrap_store(store), today=dt.date(2026, 11, 28))  # type: ignore[arg-type]
    assert second.backup.name == "master.key.old-2026-11-28-2"


def test_an_interrupted_rotation_is_resumed_with_the_same_new_key(tmp_path: Path, store: MemoryKeyStore) -> None:
    path = tmp_path / "master.key"
    old = create_master_key_file(path)
    KeyRing(old, store).derive("agreement:a", "tokenize")

    def crash(old_key: MasterKey, new_key: MasterKey) -> int:
        _rewrap_store(store)(old_key, new_key)  # type: ignore[operator]
        raise RuntimeError("power cut after the database commit")

    with pytest.raises(RuntimeError):
        rotate_master_key_file(path, crash)
    assert load_master_key(path) == old  # the file was not swapped yet
    pending = load_master_key(tmp_path / "master.key.new")
    done = rotate_master_key_file(path, _rewrap_store(store))  # type: ignore[arg-type]
    assert done.resumed and done.rewrapped == 0  # already re-wrapped: nothing to do twice
    assert load_master_key(path) == pending


def test_a_pending_file_with_the_current_key_is_refused(tmp_path: Path, store: MemoryKeyStore) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    os.link(path, tmp_path / "master.key.new")
    with pytest.raises(MasterKeyError, match="current master key"):
        rotate_master_key_file(path, _rewrap_store(store))  # type: ignore[arg-type]
