"""The hand-written adversarial corpus (``attack_corpus``): every family caught, benign texts left alone.

Each entry runs through the redactor the gateway builds for a ``redact`` rule (registry names, the row's own values
as context). An entry with a documented ``miss`` is ``xfail(strict=True)``: if it starts passing, the corpus and
docs/pii-detection.md must be updated.
"""

from __future__ import annotations

import pytest

from tests.transforms.redaction.attack_corpus import CORPUS, ENTITIES, NAMES, Attack, caught
from tests.transforms.redaction.conftest import FORMATS
from transforms.redaction import NameDictionary
from transforms.redaction.redactor import PiiRedactor


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    return PiiRedactor(ENTITIES, names=NameDictionary(NAMES), context_formats=FORMATS)


def _param(attack: Attack) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=attack.miss)] if attack.miss else []
    return pytest.param(attack, id=f"{attack.family}:{attack.text[:24]}", marks=marks)


@pytest.mark.parametrize("attack", [_param(a) for a in CORPUS])
def test_attack_entry(redactor: PiiRedactor, attack: Attack) -> None:
    found = redactor.find(attack.text, attack.context)
    assert caught(attack, found), [(f.entity, attack.text[f.start : f.end]) for f in found]
    if attack.secrets:
        redacted = redactor.redact(attack.text, attack.context)
        assert all(secret not in redacted for secret in attack.secrets)


def test_every_family_has_entries_and_benign_texts() -> None:
    families = {a.family for a in CORPUS}
    assert families == {"separators", "widths", "numerals", "splits", "fragments", "emails", "names", "benign"}
    assert sum(a.family == "benign" for a in CORPUS) >= 15
