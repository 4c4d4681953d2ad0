from __future__ import annotations

import threading

import pytest

from keys import KeyExistsError, KeyStore, MasterKey, MemoryKeyStore, SecretBytes, wrap_key
from keys.wrap import WrappedKey


def make(master: MasterKey, owner: str, version: int) -> WrappedKey:
    return wrap_key(master, SecretBytes.generate(), owner=owner, version=version)


def test_memory_store_implements_the_protocol(store: MemoryKeyStore) -> None:
    assert isinstance(store, KeyStore)
    assert not isinstance(object(), KeyStore)


def test_empty_store(store: MemoryKeyStore) -> None:
    assert store.get("agreement:a", 1) is None
    assert store.latest("agreement:a") is None
    assert store.versions("agreement:a") == []


def test_put_get_latest_versions(master: MasterKey, store: MemoryKeyStore) -> None:
    v1, v3, v2 = make(master, "agreement:a", 1), make(master, "agreement:a", 3), make(master, "agreement:a", 2)
    other = make(master, "agreement:b", 7)
    for record in (v1, v3, v2, other):
        store.put(record)
    assert store.get("agreement:a", 1) == v1
    assert store.get("agreement:a", 2) == v2
    assert store.get("agreement:a", 4) is None
    assert store.latest("agreement:a") == v3
    assert store.versions("agreement:a") == [1, 2, 3]
    assert store.versions("agreement:b") == [7]
    assert store.owners() == ["agreement:a", "agreement:b"]


def test_put_never_overwrites(master: MasterKey, store: MemoryKeyStore) -> None:
    first = make(master, "agreement:a", 1)
    store.put(first)
    with pytest.raises(KeyExistsError, match="'agreement:a' version 1 already exists"):
        store.put(make(master, "agreement:a", 1))
    assert store.get("agreement:a", 1) == first


def test_put_rejects_non_records(store: MemoryKeyStore) -> None:
    with pytest.raises(TypeError):
        store.put("not a record")  # type: ignore[arg-type]


def test_concurrent_puts_of_one_version_have_one_winner(master: MasterKey, store: MemoryKeyStore) -> None:
    records = [make(master, "agreement:race", 1) for _ in range(16)]
    won: list[WrappedKey] = []
    lost: list[WrappedKey] = []
    barrier = threading.Barrier(len(records))

    def worker(record: WrappedKey) -> None:
        barrier.wait()
        try:
            store.put(record)
            won.append(record)
        except KeyExistsError:
            lost.append(record)

    threads = [threading.Thread(target=worker, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert len(lost) == 15
    assert store.get("agreement:race", 1) == won[0]


def test_repr_is_short(master: MasterKey, store: MemoryKeyStore) -> None:
    store.put(make(master, "agreement:a", 1))
    assert repr(store) == "MemoryKeyStore(<1 wrapped keys>)"
