from __future__ import annotations

import base64
import hashlib
import os
import pickle
import re
import stat
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

import keys.master
from keys import (
    MasterKey,
    MasterKeyError,
    SecretBytes,
    create_master_key_file,
    ensure_master_key,
    load_master_key,
)
from tests.keys.conftest import assert_no_leak

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode("ascii")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- MasterKey -------------------------------------------------------------------------------------------------


def test_key_id_known_answer() -> None:
    expected = hashlib.sha256(b"dxg-master-key-id\x00" + KEY).hexdigest()[:16]
    master = MasterKey(SecretBytes(KEY))
    assert master.key_id == expected
    assert re.fullmatch(r"[0-9a-f]{16}", master.key_id)
    assert master.key.reveal() == KEY


def test_key_id_differs_between_keys() -> None:
    assert MasterKey(SecretBytes(KEY)).key_id != MasterKey(SecretBytes(bytes(32))).key_id
    assert MasterKey.generate().key_id != MasterKey.generate().key_id


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_master_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(MasterKeyError, match="32 bytes"):
        MasterKey(SecretBytes(bytes(length)))


def test_master_key_needs_secretbytes() -> None:
    with pytest.raises(TypeError):
        MasterKey(KEY)  # type: ignore[arg-type]


def test_master_key_repr_str_pickle_do_not_leak() -> None:
    master = MasterKey(SecretBytes(KEY))
    for text in (repr(master), str(master), f"{master}", repr([master])):
        assert master.key_id in text
        assert_no_leak(text, KEY)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(master, protocol=protocol)
    with pytest.raises(AttributeError):
        master._key = SecretBytes(bytes(32))
    with pytest.raises(TypeError):
        hash(master)


def test_master_key_equality() -> None:
    assert MasterKey(SecretBytes(KEY)) == MasterKey(SecretBytes(KEY))
    assert MasterKey(SecretBytes(KEY)) != MasterKey(SecretBytes(bytes(32)))


# -- create ----------------------------------------------------------------------------------------------------


def test_create_writes_one_line_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    master = create_master_key_file(path)
    assert mode_of(path) == 0o600
    content = path.read_bytes()
    match = re.fullmatch(rb"dxg-master-key-v1 ([A-Za-z0-9+/]{43}=)\n", content)
    assert match is not None
    assert base64.b64decode(match.group(1)) == master.key.reveal()
    assert load_master_key(path).key_id == master.key_id
    assert load_master_key(path) == master


def test_create_sets_mode_at_open_time_even_with_permissive_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permissive_umask: None
) -> None:
    # If the mode were fixed with chmod after writing, there would be a window with a world-readable key;
    # forbid chmod entirely and run with umask 0 (which would otherwise give 0666).
    def no_chmod(*args: object, **kwargs: object) -> None:
        raise AssertionError("chmod must not be needed")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    path = tmp_path / "master.key"
    create_master_key_file(path)
    assert mode_of(path) == 0o600


def test_create_makes_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "master.key"
    create_master_key_file(path)
    assert path.is_file()
    assert mode_of(path) == 0o600


def test_create_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    create_master_key_file(tmp_path / "master.key")
    assert synced


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = create_master_key_file(path)
    before = path.read_bytes()
    with pytest.raises(MasterKeyError, match="already exists") as info:
        create_master_key_file(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert load_master_key(path) == first


def test_create_refuses_existing_unrelated_file_and_dangling_symlink(tmp_path: Path) -> None:
    path = write(tmp_path / "master.key", b"something else\n")
    with pytest.raises(MasterKeyError, match="already exists"):
        create_master_key_file(path)
    assert path.read_bytes() == b"something else\n"

    link = tmp_path / "link.key"
    link.symlink_to(tmp_path / "nowhere.key")
    with pytest.raises(MasterKeyError, match="already exists"):
        create_master_key_file(link)
    assert not (tmp_path / "nowhere.key").exists()


def test_create_cleans_up_after_a_failed_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    path = tmp_path / "master.key"
    with pytest.raises(MasterKeyError, match="cannot write") as info:
        create_master_key_file(path)
    assert str(path) in str(info.value)
    assert not path.exists()


# -- load ------------------------------------------------------------------------------------------------------


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.key"
    with pytest.raises(MasterKeyError, match="not found") as info:
        load_master_key(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_load_refuses_group_or_other_readable(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "master.key", f"dxg-master-key-v1 {KEY_B64}\n".encode(), mode)
    with pytest.raises(MasterKeyError) as info:
        load_master_key(path)
    message = str(info.value)
    assert message == f"{path} is readable by group/others (mode {mode:04o}); run chmod 600 {path}"
    assert_no_leak(message, KEY)
    assert load_master_key(path, check_permissions=False).key.reveal() == KEY


def test_load_permission_message_for_0644_exactly(tmp_path: Path) -> None:
    path = write(tmp_path / "master.key", f"dxg-master-key-v1 {KEY_B64}\n".encode(), 0o644)
    with pytest.raises(MasterKeyError, match=r"is readable by group/others \(mode 0644\); run chmod 600 "):
        load_master_key(path)


def test_load_refuses_group_writable(tmp_path: Path) -> None:
    path = write(tmp_path / "master.key", f"dxg-master-key-v1 {KEY_B64}\n".encode(), 0o620)
    with pytest.raises(MasterKeyError, match=r"group/others \(mode 0620\); run chmod 600"):
        load_master_key(path)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_load_accepts_owner_only_modes(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "master.key", f"dxg-master-key-v1 {KEY_B64}\n".encode(), mode)
    assert load_master_key(path).key.reveal() == KEY


def test_load_accepts_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    for content in (f"dxg-master-key-v1 {KEY_B64}\r\n", f"dxg-master-key-v1 {KEY_B64}"):
        path = write(tmp_path / "master.key", content.encode())
        assert load_master_key(path).key.reveal() == KEY


BAD_CONTENTS = {
    "empty": b"",
    "wrong header": f"dxg-master-key-v2 {KEY_B64}\n".encode(),
    "no header": f"{KEY_B64}\n".encode(),
    "two spaces": f"dxg-master-key-v1  {KEY_B64}\n".encode(),
    "trailing field": f"dxg-master-key-v1 {KEY_B64} extra\n".encode(),
    "second line": f"dxg-master-key-v1 {KEY_B64}\n{KEY_B64}\n".encode(),
    "bad base64 char": f"dxg-master-key-v1 {KEY_B64[:-2]}!=\n".encode(),
    "missing padding": f"dxg-master-key-v1 {KEY_B64[:-1]}\n".encode(),
    "too short": f"dxg-master-key-v1 {base64.b64encode(KEY[:31]).decode()}\n".encode(),
    "too long": f"dxg-master-key-v1 {base64.b64encode(KEY + b'x').decode()}\n".encode(),
    "hex instead of base64": f"dxg-master-key-v1 {KEY.hex()}\n".encode(),
    "non-ascii": b"dxg-master-key-v1 \xff" + KEY_B64.encode() + b"\n",
    "huge": b"dxg-master-key-v1 " + b"A" * 10_000 + b"\n",
}


@pytest.mark.parametrize("content", BAD_CONTENTS.values(), ids=BAD_CONTENTS.keys())
def test_load_rejects_bad_content_without_leaking_it(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path / "master.key", content)
    with pytest.raises(MasterKeyError, match="not a dxg master key file") as info:
        load_master_key(path)
    message = str(info.value)
    assert str(path) in message
    assert_no_leak(message, KEY, KEY[:31])
    assert KEY_B64[:20] not in repr(info.value)
    # No chained exception (e.g. a UnicodeDecodeError or binascii.Error quoting content) rides along.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert_no_leak("".join(traceback.format_exception(info.value)), KEY, KEY[:31])


def test_load_rejects_directory(tmp_path: Path) -> None:
    directory = tmp_path / "master.key"
    directory.mkdir(mode=0o700)
    with pytest.raises(MasterKeyError) as info:
        load_master_key(directory)
    assert str(directory) in str(info.value)


def test_load_follows_symlink_to_a_good_file(tmp_path: Path) -> None:
    # Secret managers (e.g. Kubernetes secret volumes) mount keys through symlinks.
    target = write(tmp_path / "real.key", f"dxg-master-key-v1 {KEY_B64}\n".encode())
    link = tmp_path / "master.key"
    link.symlink_to(target)
    assert load_master_key(link).key.reveal() == KEY


# -- ensure ----------------------------------------------------------------------------------------------------


def test_ensure_creates_then_loads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    first, created = ensure_master_key(path)
    assert created is True
    assert mode_of(path) == 0o600
    second, created_again = ensure_master_key(path)
    assert created_again is False
    assert second == first
    assert second.key_id == first.key_id


def test_ensure_never_replaces_an_invalid_file(tmp_path: Path) -> None:
    path = write(tmp_path / "master.key", b"garbage\n")
    os.utime(path, (1_000_000_000, 1_000_000_000))  # an old file: not one being written right now
    with pytest.raises(MasterKeyError, match="not a dxg master key file"):
        ensure_master_key(path)
    assert path.read_bytes() == b"garbage\n"


def test_ensure_checks_permissions(tmp_path: Path) -> None:
    path = write(tmp_path / "master.key", f"dxg-master-key-v1 {KEY_B64}\n".encode(), 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        ensure_master_key(path)
    assert ensure_master_key(path, check_permissions=False)[0].key.reveal() == KEY


def test_ensure_concurrent_callers_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        try:
            barrier.wait()
            master, created = ensure_master_key(path)
            results.append((master.key_id, created))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8
    assert len({key_id for key_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_ensure_waits_for_a_creator_that_is_still_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate losing the O_EXCL race to a process that has created the file but not yet written it.
    path = tmp_path / "master.key"

    def lose_race(p: Path) -> MasterKey:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)

        def finish() -> None:
            path.write_bytes(f"dxg-master-key-v1 {KEY_B64}\n".encode())

        threading.Timer(0.05, finish).start()
        raise FileExistsError(p)

    monkeypatch.setattr(keys.master, "_create", lose_race)
    monkeypatch.setattr(os.path, "lexists", lambda p: False)
    master, created = ensure_master_key(path)
    assert created is False
    assert master.key.reveal() == KEY
