"""Stage 1 of every row release: quotas, then everything that can be decided before the log is written.

Nothing here reads the registry or writes the log: a request refused here (429 quota, 501 unhandled redaction)
leaves no trace but its application-log event and releases nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.controls.quotas import apply_quotas
from gateway.controls.redaction import RedactionService
from gateway.errors import NotImplementedByGatewayError, RegistryUnavailableError, ValidationError
from gateway.keysource import AgreementKeySource, fingerprint_key
from gateway.services import Services
from policies import Agreement, DateShift, Keep, ReleasePlan
from transforms import CompiledPlan, HmacSha256, compile_plan
from transforms.egress import EgressScanner
from transforms.fingerprint import DisclosureMark
from transforms.redaction import DeferredNames
from transforms.risk import KAnonymityRelease

__all__ = [
    "DuplicateSubjectError",
    "KAnonymityRefusedError",
    "Prepared",
    "Row",
    "k_anonymity_for",
    "prepare",
]

Row = tuple[Any, ...]


class DuplicateSubjectError(RegistryUnavailableError):
    code = "registry-duplicate-subject"


class KAnonymityRefusedError(ValidationError):
    code = "k-anonymity-suppression-exceeded"


def k_anonymity_for(found: Services, agreement: Agreement, plan: ReleasePlan) -> KAnonymityRelease | None:
    """The agreement's k-anonymity (and l-diversity) over the whole scoped result, or None when it declares none.

    Classes are always formed over ALL the declared quasi-identifiers, whichever fields the request asks for: two
    extracts of different fields share the subject token, so they could be joined back into the full combination.
    """
    if agreement.k_anonymity is None:
        return None
    keys = AgreementKeySource(found.keyring, agreement.id)
    return KAnonymityRelease(plan, agreement.k_anonymity, agreement.released(), keys)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A release decided but not begun: the capped plan, its compiled transforms and the controls that watch it."""

    plan: ReleasePlan
    #: what the registry is asked for: the plan, without its limit when the release order applies it (extracts)
    fetch: ReleasePlan
    compiled: CompiledPlan
    kanon: KAnonymityRelease | None
    egress: EgressScanner
    names: DeferredNames | None
    redaction: RedactionService
    #: the per-disclosure fingerprint of jittered fields (None: the plan has none), keyed by :meth:`mark_for`
    mark: DisclosureMark | None = None

    def mark_for(self, found: Services, disclosure_id: str) -> None:
        """Key the fingerprint once the disclosure id exists (after the write-ahead entry, before any row)."""
        if self.mark is not None:
            self.mark.set(fingerprint_key(found.keyring, self.plan.agreement_id, disclosure_id))

    def details(self) -> dict[str, Any] | None:
        """What the final entry adds about the controls: the k-anonymity verdict, egress findings (entity, column
        and count, never a value)."""
        out: dict[str, Any] = {}
        if self.kanon is not None and self.kanon.verdict is not None:
            out["k_anonymity"] = self.kanon.details()
            if self.plan.limit is not None:  # the release order applies it, after k-anonymity (see prepare)
                out["k_anonymity"]["limit_applied_after"] = True
        if self.egress.counts:
            out["egress_findings"] = self.egress.alerts()
        return out or None

    def batches(self, found: Services) -> Iterator[list[Row]]:
        """Read the registry (call only after the write-ahead entry): the registry's names for the redactor, then
        the scoped rows, through k-anonymity's two passes when the agreement declares it."""
        if self.names is not None:
            self.names.set(self.redaction.names(found.catalog, found.connector, self.plan.dataset.name))
        rows = found.batch_rows
        if self.kanon is None:
            return found.connector.stream(self.fetch, batch_rows=rows)
        # Two passes over the full scoped result (limit applied after): count the classes, then release.
        verdict = self.kanon.count(found.connector.stream(self.kanon.plan, batch_rows=rows))
        if verdict.refused:
            raise KAnonymityRefusedError(
                f"under this agreement's k-anonymity (k={verdict.k}"
                + (f", l={verdict.l_diversity}" if verdict.l_diversity else "")
                + f") more than {verdict.max_suppression:.0%} of the records asked for would be withheld, so "
                "nothing was released; widen the filters (small groups are what k-anonymity withholds)"
            )
        return self.kanon.release(found.connector.stream(self.kanon.plan, batch_rows=rows))


def _releases_subject_key(plan: ReleasePlan) -> bool:
    key = plan.dataset.subject_key
    return any(o.column.name == key and isinstance(o.rule, Keep) for o in plan.outputs)


async def prepare(found: Services, agreement: Agreement, plan: ReleasePlan, *, single: bool) -> Prepared:
    """Quotas first (a refused request writes no log entry; the limit is capped to the rows left today), then the
    redaction setup, k-anonymity and the compiled transforms."""
    plan = await apply_quotas(found.database, found.clock(), agreement, plan, single=single)
    keysource = AgreementKeySource(found.keyring, agreement.id)
    redaction = found.redaction
    # The registry's names are read only after the write-ahead entry (Prepared.batches): compiling needs a handle.
    names = DeferredNames() if redaction.needs_names(agreement, plan) else None
    prepared = redaction.prepare(
        agreement, plan, names=names, token_key=lambda: HmacSha256(keysource.tokenize_key(None))
    )
    plan = prepared.plan
    # Extracts that hide the subject key take their limit from the keyed release order (gateway.release.order), so
    # which rows a limit selects says nothing about registry order; that needs the whole scope read. An extract that
    # releases the subject key as it is hides no rank: the registry applies the limit, as before.
    fetch = plan if single or _releases_subject_key(plan) else dataclasses.replace(plan, limit=None)
    kanon = k_anonymity_for(found, agreement, fetch)
    mark = None
    if any(isinstance(o.rule, DateShift) and o.rule.jitter for o in plan.outputs):
        subject = plan.dataset.column(plan.dataset.subject_key)
        mark = DisclosureMark(subject.format if subject is not None else None)
    compiled = compile_plan(
        plan, keysource, redactor_factory=prepared.redactor_factory, egress=prepared.egress, mark=mark
    )
    if compiled.unhandled_entities:
        # Fail closed: a redaction the agreement asks for but no detector here performs would leak those entities.
        raise NotImplementedByGatewayError(
            f"agreement {agreement.id!r} asks to redact {', '.join(compiled.unhandled_entities)}, which no "
            "configured detector handles; nothing was released"
        )
    return Prepared(plan, fetch, compiled, kanon, prepared.egress, names, redaction, mark)
