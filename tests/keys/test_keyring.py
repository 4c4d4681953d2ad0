from __future__ import annotations

import hashlib
import hmac
import itertools
import pickle
import threading
import time

import pytest

from keys import (
    HKDF_SALT,
    KeyExistsError,
    KeyNotFoundError,
    KeyRing,
    KeysError,
    KeyUnwrapError,
    MasterKey,
    MemoryKeyStore,
    SecretBytes,
    WrappedKey,
    unwrap_key,
    wrap_key,
)
from keys.keyring import hkdf_sha256
from tests.keys.conftest import assert_no_leak

# -- HKDF known answers ----------------------------------------------------------------------------------------
# RFC 5869, Appendix A: A.1 (basic), A.2 (longer inputs/outputs), A.3 (zero-length salt and info).


def test_hkdf_rfc5869_a1() -> None:
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        42,
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
    )
    assert okm == bytes.fromhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def test_hkdf_rfc5869_a2() -> None:
    okm = hkdf_sha256(
        bytes(range(0x00, 0x50)),
        82,
        salt=bytes(range(0x60, 0xB0)),
        info=bytes(range(0xB0, 0x100)),
    )
    assert okm == bytes.fromhex(
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87"
    )


def test_hkdf_rfc5869_a3() -> None:
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), 42, salt=b"", info=b"")
    assert okm == bytes.fromhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")


@pytest.mark.parametrize("length", [0, -1, 255 * 32 + 1, True])
def test_hkdf_length_bounds(length: int) -> None:
    with pytest.raises(KeysError):
        hkdf_sha256(b"k" * 32, length, salt=b"", info=b"")


def reference_hkdf(ikm: bytes, length: int, salt: bytes, info: bytes) -> bytes:
    """RFC 5869 written out with the standard library, to check derive() independently of pycryptodome."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in itertools.count(1):
        if len(out) >= length:
            break
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def test_reference_hkdf_matches_rfc5869_a1() -> None:
    okm = reference_hkdf(
        bytes.fromhex("0b" * 22), 42, bytes.fromhex("000102030405060708090a0b0c"), bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    )
    assert okm.hex().startswith("3cb25f25faacd57a90434f64d0362f2a")


# -- create on demand ------------------------------------------------------------------------------------------


def test_current_creates_version_1_on_demand(ring: KeyRing, store: MemoryKeyStore, master: MasterKey) -> None:
    assert store.versions("agreement:a") == []
    version, key = ring.current("agreement:a")
    assert version == 1
    assert len(key) == 32
    assert store.versions("agreement:a") == [1]
    record = store.get("agreement:a", 1)
    assert record is not None
    assert record.master_key_id == master.key_id
    assert unwrap_key(master, record) == key


def test_current_is_idempotent(ring: KeyRing, store: MemoryKeyStore) -> None:
    first = ring.current("agreement:a")
    assert ring.current("agreement:a") == first
    assert store.versions("agreement:a") == [1]


def test_keys_are_random_per_owner(ring: KeyRing) -> None:
    assert ring.current("agreement:a")[1] != ring.current("agreement:b")[1]


def test_current_without_create(ring: KeyRing, store: MemoryKeyStore) -> None:
    with pytest.raises(KeyNotFoundError, match="agreement:a"):
        ring.current("agreement:a", create=False)
    assert store.versions("agreement:a") == []
    _, key = ring.current("agreement:a")
    assert ring.current("agreement:a", create=False) == (1, key)


def test_another_ring_on_the_same_store_sees_the_same_keys(master: MasterKey, store: MemoryKeyStore) -> None:
    a = KeyRing(master, store)
    b = KeyRing(master, store)
    assert a.current("domain:pku-study") == b.current("domain:pku-study")
    assert a.derive("domain:pku-study", "tokenize") == b.derive("domain:pku-study", "tokenize")


def test_a_ring_with_another_master_cannot_read_the_store(
    ring: KeyRing, store: MemoryKeyStore, other_master: MasterKey
) -> None:
    ring.current("agreement:a")
    with pytest.raises(KeyUnwrapError):
        KeyRing(other_master, store).current("agreement:a")


def test_get(ring: KeyRing) -> None:
    _, key = ring.current("agreement:a")
    assert ring.get("agreement:a", 1) == key
    with pytest.raises(KeyNotFoundError, match="version 2"):
        ring.get("agreement:a", 2)
    with pytest.raises(KeyNotFoundError):
        ring.get("agreement:unknown", 1)
    with pytest.raises(KeysError):
        ring.get("agreement:a", 0)
    with pytest.raises(KeysError):
        ring.get("bad\x00owner", 1)


# -- rotation --------------------------------------------------------------------------------------------------


def test_rotate_increments_and_keeps_old_versions(ring: KeyRing, store: MemoryKeyStore) -> None:
    _, k1 = ring.current("agreement:a")
    assert ring.rotate("agreement:a") == 2
    v, k2 = ring.current("agreement:a")
    assert v == 2
    assert k2 != k1
    assert ring.rotate("agreement:a") == 3
    assert ring.current("agreement:a")[0] == 3
    assert ring.get("agreement:a", 1) == k1
    assert ring.get("agreement:a", 2) == k2
    assert store.versions("agreement:a") == [1, 2, 3]
    assert ring.versions("agreement:a") == [1, 2, 3]
    # Old versions stay readable from a fresh ring too (not just from the cache).
    fresh = KeyRing(ring.master, store)
    assert fresh.get("agreement:a", 1) == k1


def test_rotate_a_new_owner_creates_version_1(ring: KeyRing) -> None:
    assert ring.rotate("agreement:new") == 1
    assert ring.current("agreement:new")[0] == 1


def test_rotation_by_another_process_is_seen(master: MasterKey, store: MemoryKeyStore) -> None:
    a, b = KeyRing(master, store), KeyRing(master, store)
    a.current("agreement:a")
    b.rotate("agreement:a")
    assert a.current("agreement:a")[0] == 2


def test_latest_ttl_caches_the_current_version(master: MasterKey, store: MemoryKeyStore) -> None:
    a = KeyRing(master, store, latest_ttl=1.0)
    b = KeyRing(master, store)
    a.current("agreement:a")
    b.rotate("agreement:a")
    assert a.current("agreement:a")[0] == 1  # cached
    assert a.rotate("agreement:a") == 3  # own rotations are seen at once
    assert a.current("agreement:a")[0] == 3
    b.rotate("agreement:a")
    time.sleep(1.05)
    assert a.current("agreement:a")[0] == 4
    with pytest.raises(ValueError, match="latest_ttl"):
        KeyRing(master, store, latest_ttl=-1)


def test_concurrent_rotation_loser_gets_key_exists(master: MasterKey, store: MemoryKeyStore) -> None:
    ring = KeyRing(master, store)
    ring.current("agreement:a")

    class LaggingStore(MemoryKeyStore):
        """A store whose latest() is one rotation behind (another process rotated in between)."""

        def latest(self, owner: str) -> WrappedKey | None:
            return store.get(owner, 1)

        def put(self, wrapped: WrappedKey) -> None:
            store.put(wrapped)

    ring.rotate("agreement:a")  # v2 now exists
    with pytest.raises(KeyExistsError):
        KeyRing(master, LaggingStore()).rotate("agreement:a")
    assert store.versions("agreement:a") == [1, 2]


# -- the create race -------------------------------------------------------------------------------------------


class OtherWriterWinsStore(MemoryKeyStore):
    """Simulates another process that stores its own version 1 between our latest() and our put()."""

    def __init__(self, other_master: MasterKey) -> None:
        super().__init__()
        self.other_key = SecretBytes.generate()
        self._other_master = other_master
        self.raced = 0

    def put(self, wrapped: WrappedKey) -> None:
        if self.get(wrapped.owner, wrapped.version) is None and self.raced == 0:
            self.raced += 1
            theirs = wrap_key(self._other_master, self.other_key, owner=wrapped.owner, version=wrapped.version)
            super().put(theirs)
        super().put(wrapped)


def test_create_race_uses_the_winners_key(master: MasterKey) -> None:
    store = OtherWriterWinsStore(master)
    ring = KeyRing(master, store)
    version, key = ring.current("log:subject-index")
    assert store.raced == 1
    assert version == 1
    assert key == store.other_key
    assert store.versions("log:subject-index") == [1]
    # The loser's own (never stored) key is not cached either.
    assert ring.get("log:subject-index", 1) == store.other_key
    assert ring.derive("log:subject-index", "subject-index") == KeyRing(master, store).derive(
        "log:subject-index", "subject-index"
    )


def test_concurrent_rings_agree_on_one_key(master: MasterKey, store: MemoryKeyStore) -> None:
    # Each thread has its own ring (like separate processes) over one store.
    results: list[tuple[int, bytes]] = []
    barrier = threading.Barrier(12)

    def worker() -> None:
        ring = KeyRing(master, store)
        barrier.wait()
        version, key = ring.current("server:api-keys")
        results.append((version, key.reveal()))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 12
    assert len(set(results)) == 1
    assert store.versions("server:api-keys") == [1]


def test_store_that_refuses_but_has_nothing_is_an_error(master: MasterKey) -> None:
    class BrokenStore(MemoryKeyStore):
        def put(self, wrapped: WrappedKey) -> None:
            raise KeyExistsError("exists")

    with pytest.raises(KeysError, match="refused version 1"):
        KeyRing(master, BrokenStore()).current("agreement:a")


def test_store_returning_another_owners_record_is_refused(master: MasterKey, store: MemoryKeyStore) -> None:
    ring = KeyRing(master, store)
    ring.current("agreement:victim")

    class MixedUpStore(MemoryKeyStore):
        def get(self, owner: str, version: int) -> WrappedKey | None:
            return store.get("agreement:victim", 1)

        def latest(self, owner: str) -> WrappedKey | None:
            return store.get("agreement:victim", 1)

    confused = KeyRing(master, MixedUpStore())
    with pytest.raises(KeysError, match="returned the record of 'agreement:victim'"):
        confused.current("agreement:attacker")
    with pytest.raises(KeysError, match="returned the record of 'agreement:victim'"):
        confused.get("agreement:attacker", 1)
    with pytest.raises(KeysError, match="returned the record"):
        confused.get("agreement:victim", 2)


# -- caching ---------------------------------------------------------------------------------------------------


class CountingStore(MemoryKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, owner: str, version: int) -> WrappedKey | None:
        self.gets += 1
        return super().get(owner, version)


def test_unwrapped_keys_are_cached(master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CountingStore()
    KeyRing(master, store).current("agreement:a")
    ring = KeyRing(master, store)
    unwraps = 0
    real_unwrap = unwrap_key

    def counting_unwrap(m: MasterKey, w: WrappedKey) -> SecretBytes:
        nonlocal unwraps
        unwraps += 1
        return real_unwrap(m, w)

    monkeypatch.setattr("keys.keyring.unwrap_key", counting_unwrap)
    for _ in range(5):
        ring.get("agreement:a", 1)
        ring.current("agreement:a")
        ring.derive("agreement:a", "tokenize")
    assert store.gets == 1
    assert unwraps == 1
    ring.clear_cache()
    ring.get("agreement:a", 1)
    assert store.gets == 2
    assert unwraps == 2


# -- derive ----------------------------------------------------------------------------------------------------


def test_derive_known_answer_against_the_spec(ring: KeyRing) -> None:
    version, key = ring.current("agreement:a")
    info = b"tokenize\x00agreement:a\x00" + str(version).encode()
    expected = reference_hkdf(key.reveal(), 32, b"dxg-hkdf-v1", info)
    assert HKDF_SALT == b"dxg-hkdf-v1"
    assert ring.derive("agreement:a", "tokenize").reveal() == expected
    assert ring.derive("agreement:a", "tokenize", length=64).reveal() == reference_hkdf(
        key.reveal(), 64, b"dxg-hkdf-v1", info
    )


def test_derive_separation(ring: KeyRing) -> None:
    purposes = ["tokenize", "date-shift", "rounding", "subject-index"]
    owners = ["agreement:a", "agreement:b", "domain:pku-study"]
    derived: dict[tuple[str, str, int], bytes] = {}
    for owner in owners:
        ring.current(owner)
        ring.rotate(owner)
        for purpose in purposes:
            for version in (1, 2):
                derived[(owner, purpose, version)] = ring.derive(owner, purpose, version=version).reveal()
    assert len(set(derived.values())) == len(derived) == len(owners) * len(purposes) * 2
    # Derived keys are not the data keys themselves.
    data_keys = {ring.get(owner, v).reveal() for owner in owners for v in (1, 2)}
    assert not data_keys & set(derived.values())
    # Same inputs, same key; default version is the current one.
    for (owner, purpose, version), value in derived.items():
        assert ring.derive(owner, purpose, version=version).reveal() == value
    assert ring.derive("agreement:a", "tokenize").reveal() == derived[("agreement:a", "tokenize", 2)]


def test_derive_context_is_unambiguous(ring: KeyRing) -> None:
    # NUL separators: ("a", "b\x00c") cannot collide with ("a\x00b", "c") since NUL is refused in both.
    with pytest.raises(KeysError):
        ring.derive("agreement:a", "tok\x00enize")
    with pytest.raises(KeysError):
        ring.derive("agreement:a", "")
    with pytest.raises(KeysError):
        ring.derive("agreement:a", 5)  # type: ignore[arg-type]


def test_derive_lengths(ring: KeyRing) -> None:
    assert len(ring.derive("agreement:a", "tokenize", length=16)) == 16
    assert len(ring.derive("agreement:a", "tokenize", length=64)) == 64
    short = ring.derive("agreement:a", "tokenize", length=16).reveal()
    assert ring.derive("agreement:a", "tokenize", length=64).reveal()[:16] == short  # HKDF prefix property
    for bad in (0, 15, 255 * 32 + 1, True):
        with pytest.raises(KeysError, match="length"):
            ring.derive("agreement:a", "tokenize", length=bad)


def test_derive_unknown_version(ring: KeyRing) -> None:
    ring.current("agreement:a")
    with pytest.raises(KeyNotFoundError):
        ring.derive("agreement:a", "tokenize", version=5)


def test_derive_current_reports_the_version(ring: KeyRing) -> None:
    version, key = ring.derive_current("agreement:a", "tokenize")
    assert version == 1
    assert key == ring.derive("agreement:a", "tokenize", version=1)
    ring.rotate("agreement:a")
    version2, key2 = ring.derive_current("agreement:a", "tokenize")
    assert version2 == 2
    assert key2 != key


# -- no leaks --------------------------------------------------------------------------------------------------


def test_keyring_repr_str_pickle_do_not_leak(ring: KeyRing, master: MasterKey) -> None:
    secrets = [master.key.reveal()]
    for owner in ("agreement:a", "log:subject-index"):
        secrets.append(ring.current(owner)[1].reveal())
        secrets.append(ring.derive(owner, "tokenize").reveal())
    for text in (repr(ring), str(ring), f"{ring}", repr([ring])):
        assert master.key_id in text
        assert_no_leak(text, *secrets)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(ring, protocol=protocol)
    _, key = ring.current("agreement:a")
    assert_no_leak(repr(ring.current("agreement:a")), key.reveal())
    assert_no_leak(repr(ring.derive_current("agreement:a", "x-purpose")), *secrets)


def test_errors_do_not_leak(ring: KeyRing, store: MemoryKeyStore, other_master: MasterKey) -> None:
    _, key = ring.current("agreement:a")
    with pytest.raises(KeyUnwrapError) as info:
        KeyRing(other_master, store).get("agreement:a", 1)
    assert_no_leak(str(info.value), key.reveal(), other_master.key.reveal(), ring.master.key.reveal())
