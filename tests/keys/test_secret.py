from __future__ import annotations

import copy
import hmac
import pickle

import pytest

from keys import SecretBytes
from tests.keys.conftest import assert_no_leak

KEY = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def test_reveal_and_len() -> None:
    s = SecretBytes(KEY)
    assert s.reveal() == KEY
    assert isinstance(s.reveal(), bytes)
    assert len(s) == 32


@pytest.mark.parametrize("render", [repr, str, format, lambda s: f"{s}", lambda s: f"{s!r}", lambda s: f"{s:>80}"])
def test_text_forms_are_redacted(render: object) -> None:
    s = SecretBytes(KEY)
    text = render(s)  # type: ignore[operator]
    assert text == "SecretBytes(<redacted, 32 bytes>)"
    assert_no_leak(text, KEY)


def test_redacted_inside_containers_and_exceptions() -> None:
    s = SecretBytes(KEY)
    assert_no_leak(repr([s, {"k": s}]), KEY)
    assert_no_leak(str(ValueError(s)), KEY)
    assert_no_leak("%s %r" % (s, s), KEY)  # noqa: UP031 - the %-operator path is what logging uses


def test_copies_input_so_later_mutation_has_no_effect() -> None:
    buf = bytearray(KEY)
    s = SecretBytes(buf)
    buf[0] ^= 0xFF
    assert s.reveal() == KEY
    assert SecretBytes(memoryview(KEY)).reveal() == KEY


@pytest.mark.parametrize("bad", ["a string", 42, None, [1, 2, 3]])
def test_rejects_non_bytes(bad: object) -> None:
    with pytest.raises(TypeError):
        SecretBytes(bad)  # type: ignore[arg-type]


def test_equality() -> None:
    assert SecretBytes(KEY) == SecretBytes(KEY)
    assert SecretBytes(KEY) != SecretBytes(KEY[:-1] + b"\x00")
    assert SecretBytes(KEY) != SecretBytes(KEY[:-1])
    # Comparing with raw bytes is not supported (it would invite comparing revealed secrets ad hoc).
    assert SecretBytes(KEY) != KEY
    assert (SecretBytes(KEY) == KEY) is False


def test_equality_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert SecretBytes(KEY) == SecretBytes(KEY)
    assert SecretBytes(KEY) != SecretBytes(bytes(32))
    assert len(calls) == 2


def test_unhashable() -> None:
    s = SecretBytes(KEY)
    with pytest.raises(TypeError):
        hash(s)
    with pytest.raises(TypeError):
        {s: 1}  # noqa: B018
    with pytest.raises(TypeError):
        {s}  # noqa: B018


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_not_picklable(protocol: int) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(SecretBytes(KEY), protocol=protocol)


def test_reduce_and_getstate_raise() -> None:
    s = SecretBytes(KEY)
    with pytest.raises(TypeError):
        s.__reduce__()
    with pytest.raises(TypeError):
        s.__reduce_ex__(2)
    with pytest.raises(TypeError):
        s.__getstate__()


def test_copy_returns_same_immutable_object() -> None:
    s = SecretBytes(KEY)
    assert copy.copy(s) is s
    assert copy.deepcopy({"k": s})["k"] is s


def test_immutable() -> None:
    s = SecretBytes(KEY)
    with pytest.raises(AttributeError):
        s._value = b"x"
    with pytest.raises(AttributeError):
        s.other = 1
    with pytest.raises(AttributeError):
        del s._value
    assert not hasattr(s, "__dict__")
    assert s.reveal() == KEY


def test_generate() -> None:
    a, b = SecretBytes.generate(), SecretBytes.generate()
    assert len(a) == 32
    assert a != b
    assert len(SecretBytes.generate(17)) == 17


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_generate_rejects_bad_length(bad: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        SecretBytes.generate(bad)  # type: ignore[arg-type]
