"""Redaction and egress-scan setup for one release: the registry's name dictionary, context columns, NER option.

``RedactionService`` lives as long as the process. It keeps the registry-wide name dictionary (built from every
``person_name`` column of the catalog, read through the connector) for ``names_ttl_s`` seconds, so a request does not
re-read the registry's names, and a new child's name is known within that time. It also holds the optional spaCy NER
model named by the ``ner_model`` setting, loaded once at start (a missing model stops the start with a clear error;
nothing is downloaded).

``prepare(plan, ...)`` returns what ``release`` needs: the plan with the context columns added to what is fetched,
the redactor factory for ``compile_plan``, and the egress scanner of the agreement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gateway.applog import get_logger
from gateway.connectors import Connector
from gateway.errors import ConfigError, RegistryTimeoutError, RegistryUnavailableError
from policies import Agreement, Catalog, ColumnClass, Dataset, ReleasePlan
from policies.rules import Redact
from transforms.egress import EgressScanner
from transforms.redaction import PERSON, NameDictionary
from transforms.redaction.factory import PiiRedactorFactory
from transforms.redaction.names import NameIndex
from transforms.redaction.redactor import NerFinder
from transforms.tokenize import HmacSha256

__all__ = ["PreparedRelease", "RedactionService"]

_log = get_logger("gateway.controls.redaction")
_NAME_BATCH = 10_000


@dataclass(frozen=True)
class PreparedRelease:
    plan: ReleasePlan
    redactor_factory: PiiRedactorFactory
    egress: EgressScanner


def _names_plan(dataset: Dataset, columns: tuple[str, ...]) -> ReleasePlan:
    """A plan that reads the name columns of ``dataset`` (no outputs, no conditions): for the dictionary only."""
    return ReleasePlan(
        agreement_id="(name dictionary)",
        agreement_version=0,
        agreement_digest="",
        dataset=dataset,
        projection=(dataset.subject_key, *columns),
        outputs=(),
        filters=(),
        limit=None,
        format="ndjson",
        reference_date=dt.date.today(),
    )


def read_registry_names(catalog: Catalog, connector: Connector, required: str | None = None) -> Iterator[str]:
    """Every value of every ``person_name`` column of the catalog, streamed from the registry.

    A dataset the connector cannot serve (an HTTP registry that exposes only some datasets) is skipped with a
    warning, except ``required`` (the dataset being released), whose failure fails the release.
    """
    by_dataset: dict[str, tuple[Dataset, list[str]]] = {}
    for dataset, column in catalog.name_columns():
        by_dataset.setdefault(dataset.name, (dataset, []))[1].append(column.name)
    for dataset, columns in by_dataset.values():
        try:
            yield from _names_of(connector, dataset, tuple(columns))
        except (RegistryUnavailableError, RegistryTimeoutError) as exc:
            if dataset.name == required:
                raise
            _log.warning("name_source_unavailable", dataset=dataset.name, error=exc.code)


def _names_of(connector: Connector, dataset: Dataset, columns: tuple[str, ...]) -> Iterator[str]:
    batches = connector.stream(_names_plan(dataset, columns), batch_rows=_NAME_BATCH)
    try:
        for batch in batches:
            for row in batch:
                for value in row[1:]:
                    if isinstance(value, str) and value:
                        yield value
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


class RedactionService:
    """Process-wide: name dictionary cache (TTL) and the optional NER model."""

    def __init__(
        self,
        *,
        ner_model: str | None = None,
        names_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = names_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._names: tuple[float, NameDictionary] | None = None
        self._ner: NerFinder | None = None
        self._ner_entities: tuple[str, ...] = ()
        if ner_model:
            from transforms.redaction.ner import PresidioNer
            from transforms.redaction.presidio_engine import NerModelError, load_ner_model

            try:
                nlp = load_ner_model(ner_model)
            except NerModelError as exc:
                raise ConfigError(f"ner_model: {exc}") from None
            ner = PresidioNer(nlp, nlp.lang)
            self._ner, self._ner_entities = ner, ner.entities
            _log.info("ner_model_loaded", model=ner_model, language=nlp.lang)

    def names(self, catalog: Catalog, connector: Connector, required: str | None = None) -> NameDictionary:
        """The registry's name dictionary, rebuilt when older than the TTL (one builder at a time)."""
        with self._lock:
            now = self._clock()
            if self._names is not None and now - self._names[0] < self._ttl:
                return self._names[1]
            started = time.perf_counter()
            names = NameDictionary(read_registry_names(catalog, connector, required))
            self._names = (now, names)
            _log.info("name_dictionary_built", names=len(names), seconds=round(time.perf_counter() - started, 3))
            return names

    def invalidate(self) -> None:
        with self._lock:
            self._names = None

    @staticmethod
    def needs_names(agreement: Agreement, plan: ReleasePlan) -> bool:
        for output in plan.outputs:
            rule = output.rule
            if isinstance(rule, Redact) and PERSON in rule.entities:
                return True
            if output.column.cls is ColumnClass.FREE_TEXT and output.name not in agreement.egress.exempt:
                return True  # the egress scan checks such text against the registry's names
        return False

    def prepare(
        self,
        agreement: Agreement,
        plan: ReleasePlan,
        *,
        names: NameIndex | None,
        token_key: Callable[[], HmacSha256],
    ) -> PreparedRelease:
        factory = PiiRedactorFactory(
            plan.dataset, names=names, token_key=token_key, ner=self._ner, ner_entities=self._ner_entities
        )
        extra = tuple(
            c for c in factory.context_columns_for([o.rule for o in plan.outputs]) if c not in plan.projection
        )
        fetched = dataclasses.replace(plan, projection=plan.projection + extra) if extra else plan
        # Names are egress-checked in free text that is not already redacted for PERSON (the redactor ran a wider
        # search over that very text; scanning its output again could only trip over redaction artefacts).
        name_columns = [
            o.name
            for o in plan.outputs
            if o.column.cls is ColumnClass.FREE_TEXT and not (isinstance(o.rule, Redact) and PERSON in o.rule.entities)
        ]
        scanner = EgressScanner(
            plan.columns,
            exempt=agreement.egress.exempt,
            on_finding=agreement.egress.on_finding,
            names=names,
            name_columns=name_columns,
        )
        return PreparedRelease(fetched, factory, scanner)
