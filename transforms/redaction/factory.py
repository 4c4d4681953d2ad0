"""Per-request construction of redactors for a plan's ``redact`` rules (``compile_plan``'s ``redactor_factory``).

The factory knows the dataset, so it knows which columns hold the record's own people (``direct_identifier``
columns whose format is in ``CONTEXT_FORMATS``); ``context_columns_for(outputs)`` tells the caller which of them the
plan's rules need, so that it can add them to what the connector fetches. The registry's name dictionary and an
optional NER pass are shared, read-only, by every redactor built here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

from policies.catalog import ColumnClass, ColumnType, Dataset
from policies.rules import Redact, Rule

from ..tokenize import HmacSha256
from .context import CONTEXT_FORMATS
from .names import NameIndex
from .redactor import NerFinder, PiiRedactor

__all__ = ["PiiRedactorFactory", "context_formats"]


def context_formats(dataset: Dataset) -> Mapping[str, str]:
    """Context columns of ``dataset`` and their formats, in catalog order."""
    return MappingProxyType(
        {
            c.name: c.format
            for c in dataset.columns.values()
            if c.cls is ColumnClass.DIRECT_IDENTIFIER
            and c.type is ColumnType.STRING
            and c.format is not None
            and c.format in CONTEXT_FORMATS
        }
    )


class PiiRedactorFactory:
    """``factory(rule) -> PiiRedactor``; ``token_key()`` is called only when a rule has ``replace: token``."""

    __slots__ = ("_formats", "_names", "_ner", "_ner_entities", "_token_key")

    def __init__(
        self,
        dataset: Dataset,
        *,
        names: NameIndex | None = None,
        token_key: Callable[[], HmacSha256] | None = None,
        ner: NerFinder | None = None,
        ner_entities: Iterable[str] = (),
    ) -> None:
        self._formats = context_formats(dataset)
        self._names = names
        self._token_key = token_key
        self._ner = ner
        self._ner_entities = tuple(ner_entities)

    def _formats_for(self, rule: Redact) -> dict[str, str]:
        wanted = set(rule.entities)
        return {name: fmt for name, fmt in self._formats.items() if CONTEXT_FORMATS[fmt] in wanted}

    def context_columns_for(self, rules: Sequence[Rule]) -> tuple[str, ...]:
        """The context columns the ``redact`` rules among ``rules`` need, in catalog order."""
        needed: dict[str, None] = {}
        for rule in rules:
            if isinstance(rule, Redact):
                needed.update(dict.fromkeys(self._formats_for(rule)))
        return tuple(name for name in self._formats if name in needed)

    def __call__(self, rule: Redact) -> PiiRedactor:
        mac = None
        if rule.replace == "token":
            if self._token_key is None:
                raise ValueError("replace: token needs the agreement's token key")
            mac = self._token_key()
        return PiiRedactor(
            rule.entities,
            rule.replace,
            names=self._names,
            context_formats=self._formats_for(rule),
            token_key=mac,
            ner=self._ner,
            ner_entities=self._ner_entities,
        )
