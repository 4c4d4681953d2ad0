"""Presidio runs with no network and no model: blank spaCy pipelines; an installed NER model is optional."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from transforms.redaction import NameDictionary
from transforms.redaction.presidio_engine import NerModelError, blank_pipelines, build_analyzer, load_ner_model
from transforms.redaction.recognizers import NameDictionaryRecognizer, structured_recognizers


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network access in a test that must run offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_analyzer_builds_and_runs_with_sockets_blocked(no_network: list[Any]) -> None:
    names = NameDictionary(["王一诺", "李海燕"])
    recognizers: list[Any] = []
    for lang in ("en", "zh"):
        recognizers += [*structured_recognizers(lang), NameDictionaryRecognizer(names, lang)]
    analyzer = build_analyzer(recognizers)
    zh = analyzer.analyze("王一诺的妈妈李海燕，电话13812345678，邮箱li.haiyan@163.com。", "zh")
    en = analyzer.analyze("Mother 李海燕 at li.haiyan@163.com or +86 138 1234 5678.", "en")
    assert {r.entity_type for r in zh} == {"PERSON", "CN_MOBILE", "EMAIL_ADDRESS"}
    assert {r.entity_type for r in en} == {"PERSON", "CN_MOBILE", "EMAIL_ADDRESS"}
    assert no_network == []


def test_blank_chinese_pipeline_tokenizes_per_character() -> None:
    nlp = blank_pipelines(["zh"])["zh"]
    assert [t.text for t in nlp("王一诺")] == ["王", "一", "诺"]


def test_a_missing_ner_model_is_a_clear_error(no_network: list[Any]) -> None:
    with pytest.raises(NerModelError, match="not installed"):
        load_ner_model("zh_core_web_nonexistent")
    assert no_network == []


def test_an_installed_ner_model_adds_person_and_location(tmp_path: Path, no_network: list[Any]) -> None:
    import spacy

    from transforms.redaction.ner import PresidioNer

    # A stand-in for an installed model: a pipeline on disk with a named-entity component (rule-based here).
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [{"label": "PERSON", "pattern": "Alice Walker"}, {"label": "GPE", "pattern": "Chengdu"}]  # type: ignore[attr-defined]
    )
    nlp.to_disk(tmp_path / "model")
    ner = PresidioNer(load_ner_model(str(tmp_path / "model")), "en")
    text = "Alice Walker moved to Chengdu."
    assert {(f.entity, text[f.start : f.end]) for f in ner(text)} == {
        ("PERSON", "Alice Walker"),
        ("LOCATION", "Chengdu"),
    }
    assert ner("no capital letters here") == []  # the prefilter skips the model
    assert no_network == []


def test_a_pipeline_without_ner_is_refused(tmp_path: Path) -> None:
    import spacy

    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(NerModelError, match="no named-entity component"):
        load_ner_model(str(tmp_path / "blank"))


def test_the_network_block_is_real(no_network: list[Any]) -> None:
    with pytest.raises(OSError, match="offline"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert no_network
