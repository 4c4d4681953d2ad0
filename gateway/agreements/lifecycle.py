"""The agreement lifecycle: who may apply, approve, suspend, resume and revoke; the log entry of every state change;
key destruction when an agreement ends. Used by the admin HTTP API, the CLI and the demo builder alike.

Rules (docs/agreements.md, "Lifecycle"):

* ``apply`` (role admin) stores a text as a new draft version. The text must pass the JSON Schema and the parser;
  versions are immutable, so a changed text needs a higher ``version``.
* ``approve`` (role approver) by someone other than the version's author (four eyes). Approval *is* the decision, so
  it activates the version at once (the previous active version becomes ``superseded``), unless the agreement is
  suspended: then the version waits, ``approved``, until an admin resumes the agreement. Lint errors block approval.
  Approval measures the version's re-identification risk on the registry (:mod:`gateway.agreements.risk`) and puts
  the figures into its log entry; above the catalog's threshold (outside-use record releases) it is refused unless
  two distinct approvers, neither the author, recorded a risk acceptance with a reason (``accept_risk``). The
  acceptance goes into the approval's log entry and into the write-ahead entry of every disclosure under the version.
* ``reject`` (role approver, not the author, with a reason) ends a draft as ``rejected``: the version stays on
  record, can never be approved, and the author applies a newer version instead.
* ``suspend`` (role admin) stops an agreement without touching its keys; ``resume`` restarts it, requested by an
  admin and confirmed by an approver (dual control, :mod:`policies.dual_control`).
* ``revoke`` (requested by an admin, confirmed by a second admin or an approver) and expiry (``valid_until``
  passed) end an agreement for good and destroy its keys
  (crypto-shredding), and the keys of each of its linkage domains that no other agreement in force still uses.

Every change is made in the database first, as one conditional transaction, then recorded as one
``agreement.state_changed`` log entry; if the entry cannot be written the change is undone and the caller gets 503
(nothing changes without a record). Key destruction comes after its state change is recorded and is itself logged
(``keys.destroyed``): it is irreversible, so it never happens for a change that is not on record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from gateway.agreements.risk import RiskAssessment, assess, binds, log_figures
from gateway.agreements.store import (
    ACTIVE,
    APPROVED,
    DRAFT,
    EXPIRED,
    REJECTED,
    REVOKED,
    RISK_ACCEPTANCES_NEEDED,
    SUPERSEDED,
    SUSPENDED,
    TERMINAL_STATES,
    AgreementRegistry,
    RiskAcceptance,
    StoredVersion,
    about,
    agreement_state,
    risk_acceptance_entry,
)
from gateway.applog import get_logger
from gateway.audit.log import DisclosureLog
from gateway.audit.memory_log import MemoryDisclosureLog
from gateway.auth import Principal
from gateway.errors import ForbiddenError, GatewayError, NotFoundError
from gateway.keysource import agreement_owner, domain_owner
from keys import KeyRing
from policies import Agreement, PolicyError, PolicyLoadError, parse_agreement
from policies._yaml import parse_yaml
from policies.dual_control import DualControlError, PendingAction, require_confirmed
from policies.errors import shown_name
from policies.lint import Finding, lint_agreements
from policies.schema import schema_problems

__all__ = [
    "DUAL_CONTROLLED",
    "MAX_AGREEMENT_BYTES",
    "SETTABLE_STATES",
    "AgreementInvalidError",
    "AgreementLifecycle",
    "ApplyResult",
    "ApprovalResult",
    "LifecycleConflictError",
    "LintRefusedError",
    "RiskMeter",
    "RiskRefusedError",
    "SecondPersonRequiredError",
    "agreement_domains",
]

MAX_AGREEMENT_BYTES = 256 * 1024
SETTABLE_STATES = (SUSPENDED, REVOKED, ACTIVE)
#: states in which a version is "in force" or about to be: its linkage domains are in use
_IN_FORCE = frozenset({ACTIVE, SUSPENDED, APPROVED})
_MAX_REASON = 500
_log = get_logger("gateway.agreements.lifecycle")


class LifecycleConflictError(GatewayError):
    status = 409
    code = "agreement-conflict"
    title = "The agreement cannot make that change"

    def __init__(self, detail: str, *, code: str | None = None, problems: list[str] | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.problems = problems or []


class SecondPersonRequiredError(LifecycleConflictError):
    """Revoking or resuming an agreement without a second person's confirmation (dual control)."""

    code = "second-person-required"


#: state changes under dual control: the kind from ``plan_state`` -> the action a second person confirms
DUAL_CONTROLLED: Mapping[str, str] = {
    "revoked": "agreement.revoke",
    "revoked-again": "agreement.revoke",
    "active": "agreement.resume",
}


class LintRefusedError(LifecycleConflictError):
    code = "lint-errors"


class RiskRefusedError(LifecycleConflictError):
    """The measured risk exceeds the catalog's threshold and two approvers have not accepted it."""

    code = "risk-above-threshold"

    def __init__(self, detail: str, *, risk: Mapping[str, Any], code: str | None = None) -> None:
        super().__init__(detail, code=code)
        #: counts and ratios, the threshold and the acceptances so far: shown in the problem body
        self.risk = dict(risk)


#: computes the risk report of an agreement on the registry (gateway.agreements.risk.compute_risk bound to a connector)
RiskMeter = Callable[[Agreement], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    version: StoredVersion
    risk: RiskAssessment | None
    acceptances: list[RiskAcceptance] = field(default_factory=list)


class AgreementInvalidError(GatewayError):
    status = 422
    code = "invalid-agreement"
    title = "The agreement text is not valid"

    def __init__(self, detail: str, problems: list[str]) -> None:
        super().__init__(detail)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ApplyResult:
    version: StoredVersion
    created: bool
    findings: list[Finding] = field(default_factory=list)


def _rules(document: Mapping[str, Any]) -> Iterable[Any]:
    fields = document.get("fields")
    if isinstance(fields, Mapping):
        yield from fields.values()
    aggregate = document.get("aggregate")
    if isinstance(aggregate, Mapping) and isinstance(aggregate.get("dimensions"), Mapping):
        yield from aggregate["dimensions"].values()


def agreement_domains(text: str) -> set[str]:
    """Linkage domains a stored text names (tokenize/date_shift ``domain``), read without the catalog, so a text
    that no longer parses against today's catalog still has its domain keys accounted for."""
    try:
        document = parse_yaml(text, "<stored>").plain()
    except PolicyError:
        return set()
    if not isinstance(document, Mapping):
        return set()
    domains: set[str] = set()
    for rule in _rules(document):
        if isinstance(rule, Mapping):
            for op in ("tokenize", "date_shift"):
                options = rule.get(op)
                if isinstance(options, Mapping) and isinstance(options.get("domain"), str):
                    domains.add(options["domain"])
    return domains


def _check_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()
    if len(reason) > _MAX_REASON:
        raise AgreementInvalidError(f"the reason is longer than {_MAX_REASON} characters", [])
    return reason or None


class AgreementLifecycle:
    def __init__(
        self,
        registry: AgreementRegistry,
        log: DisclosureLog,
        keyring: KeyRing,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        risk: RiskMeter | None = None,
    ) -> None:
        self._registry = registry
        self._store = registry.store
        self._log = log
        self._ring = keyring
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._risk = risk

    def __repr__(self) -> str:
        return "AgreementLifecycle()"

    @property
    def registry(self) -> AgreementRegistry:
        return self._registry

    def attach(self) -> AgreementLifecycle:
        """Let the registry expire agreements and make this process forget keys of agreements that ended."""
        self._registry.watch(on_expired=self.expire, on_removed=self._forget_keys)
        return self

    # -- reading ----------------------------------------------------------------------------------------------------
    def check_text(self, text: str, source: str) -> Agreement:
        """Schema and parser; every problem found, each with line and path (raises AgreementInvalidError)."""
        if len(text.encode("utf-8")) > MAX_AGREEMENT_BYTES:
            raise AgreementInvalidError(f"the agreement text is larger than {MAX_AGREEMENT_BYTES} bytes", [])
        try:
            problems = [str(p) for p in schema_problems(text, source)]
            agreement = parse_agreement(text, self._registry.catalog, source)
        except PolicyLoadError as exc:
            raise AgreementInvalidError(f"the agreement is not valid: {exc.reason}", [str(exc)]) from exc
        if problems:
            raise AgreementInvalidError(f"the agreement does not match the schema: {problems[0]}", problems)
        return agreement

    def versions(self, agreement_id: str) -> list[StoredVersion]:
        return self._store.versions(agreement_id)

    def _version(self, agreement_id: str, version: int) -> StoredVersion:
        found = self._store.version(agreement_id, version)
        if found is None:
            raise NotFoundError(
                f"agreement {shown_name(agreement_id)} has no version {version}; "
                f"GET /v1/agreements/<id>/versions lists them"
            )
        return found

    def lint(self, agreement: Agreement) -> list[Finding]:
        """Lint of ``agreement`` beside every other agreement in force (cross-agreement findings included)."""
        others = []
        for v in self._store.in_states(*_IN_FORCE):
            if v.agreement_id == agreement.id:
                continue
            try:
                others.append(self._registry.parse(v))
            except PolicyError:
                continue
        return lint_agreements([*others, agreement]).get(agreement.id, [])

    def measure_risk(self, agreement: Agreement) -> RiskAssessment | None:
        """The version's risk on the registry against the catalog threshold; None when no meter is configured and
        the threshold does not bind (an identified or table-only agreement needs no measurement to be approved)."""
        if self._risk is None:
            if binds(agreement):
                raise LifecycleConflictError(
                    f"{agreement.id!r} releases records for an outside use and its re-identification risk must be "
                    "measured before approval, but this gateway has no registry connection to measure it",
                    code="risk-not-measured",
                )
            return None
        return assess(agreement, self._risk(agreement))

    def _draft_agreement(self, agreement_id: str, version: int, approver: Principal, what: str) -> Agreement:
        """Checks shared by approve and accept_risk: role, draft state, four eyes, still parses."""
        if not approver.has("approver"):
            raise ForbiddenError(f"{what} an agreement needs the role approver", code="role-required")
        target = self._version(agreement_id, version)
        if target.state != DRAFT:
            by = f" by {target.approved_by}" if target.approved_by else ""
            raise LifecycleConflictError(
                f"version {version} of {agreement_id!r} is {target.state}{by}; only a draft can be approved",
                code="not-a-draft",
            )
        if approver.name == target.author:
            raise ForbiddenError(
                f"you applied version {version} of {agreement_id!r}; another approver must approve it (four eyes)",
                code="four-eyes",
            )
        try:
            agreement = self._registry.parse(target)
        except PolicyError as exc:
            raise LifecycleConflictError(
                f"version {version} no longer matches the catalog: {exc}; fix it and apply a new version",
                code="invalid-agreement",
            ) from exc
        # The author column is the database's; the signed log says who applied this text (an approver with database
        # access could otherwise rename the author of their own draft and approve it alone).
        drafted = [e for e in self._logged(target, "agreement.state_changed") if e.get("to") == DRAFT]
        logged = drafted[0].get("by") if drafted else None
        if logged is None:
            raise LifecycleConflictError(
                f"version {version} of {agreement_id!r} is not a draft the disclosure log records (no entry applied "
                "this text); nothing is decided (check the database: run `gateway log verify`)",
                code="version-changed",
            )
        if approver.name == logged:
            raise ForbiddenError(
                f"you applied version {version} of {agreement_id!r}; another approver must approve it (four eyes)",
                code="four-eyes",
            )
        return agreement

    def _logged(self, target: StoredVersion, kind: str) -> list[Mapping[str, Any]]:
        if isinstance(self._log, MemoryDisclosureLog):  # tests and tools without a database log
            return about(self._log.entries, target, kind)
        return self._store.logged_entries(target, kind)

    def _logged_acceptances(self, target: StoredVersion) -> list[RiskAcceptance]:
        """The stored risk acceptances the signed log records (a row written by hand into the table is not one)."""
        logged = {e.get("by") for e in self._logged(target, "agreement.risk_accepted")}
        return [a for a in self._store.risk_acceptances(target.agreement_id, target.version) if a.approver in logged]

    def accept_risk(
        self, agreement_id: str, version: int, *, approver: Principal, reason: str | None
    ) -> list[RiskAcceptance]:
        """Record that ``approver`` accepts the draft's measured risk above the threshold, and why (logged)."""
        agreement = self._draft_agreement(agreement_id, version, approver, "accepting the risk of")
        reason = _check_reason(reason)
        if reason is None:
            raise AgreementInvalidError("a risk acceptance needs a reason (it goes into the disclosure log)", [])
        assessment = self.measure_risk(agreement)
        if assessment is None or not assessment.exceeds:
            raise LifecycleConflictError(
                f"the measured risk of version {version} of {agreement_id!r} is within the catalog's threshold; "
                "there is nothing to accept: approve it",
                code="risk-within-threshold",
            )
        figures = log_figures(assessment)
        acceptance = RiskAcceptance(approver.name, reason, self._clock(), figures)
        if not self._store.add_risk_acceptance(agreement_id, version, acceptance):
            raise LifecycleConflictError(
                f"you already accepted the risk of version {version} of {agreement_id!r}; a second, different "
                "approver must accept it too",
                code="risk-already-accepted",
            )
        try:
            self._log.append_event(
                {
                    "type": "agreement.risk_accepted",
                    "agreement": {"id": agreement_id, "version": version, "digest": agreement.digest},
                    "by": approver.name,
                    "reason": reason,
                    "figures": figures,
                }
            )
        except Exception:
            self._store.remove_risk_acceptance(agreement_id, version, approver.name)
            raise
        _log.info("agreement_risk_accepted", agreement=agreement_id, version=version, by=approver.name)
        return self._store.risk_acceptances(agreement_id, version)

    # -- changes ----------------------------------------------------------------------------------------------------
    def _record(
        self,
        version: StoredVersion,
        before: str | None,
        after: str,
        by: str,
        reason: str | None,
        also: Sequence[tuple[StoredVersion, str]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "type": "agreement.state_changed",
            "agreement": {"id": version.agreement_id, "version": version.version, "digest": version.digest},
            "from": before,
            "to": after,
            "by": by,
            "reason": reason,
            **(extra or {}),
        }
        if also:
            entry["also"] = [{"version": v.version, "digest": v.digest, "from": v.state, "to": to} for v, to in also]
        self._log.append_event(entry)

    def _change(
        self,
        version: StoredVersion,
        to: str,
        *,
        by: str,
        reason: str | None = None,
        approve: bool = False,
        also: list[tuple[StoredVersion, str]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> StoredVersion:
        """One atomic change (``version`` to ``to``, plus ``also``), recorded in the log or undone."""
        also = also or []
        now = self._clock()
        changes = [(version.agreement_id, version.version, frozenset({version.state}), to)]
        changes += [(v.agreement_id, v.version, frozenset({v.state}), t) for v, t in also]
        if not self._store.transition(changes, by=by, at=now, reason=reason, approve=approve):
            raise LifecycleConflictError(
                f"agreement {version.agreement_id!r} changed meanwhile; read its versions and try again",
                code="agreement-changed",
            )
        try:
            self._record(version, version.state, to, by, reason, also, extra)
        except Exception:
            self._store.restore([version, *(v for v, _ in also)])
            raise
        finally:
            self._registry.invalidate()
        _log.info("agreement_state_changed", agreement=version.agreement_id, version=version.version, state=to, by=by)
        changed = self._store.version(version.agreement_id, version.version)
        if changed is None:
            raise LifecycleConflictError(f"agreement {version.agreement_id!r} changed meanwhile; read it again")
        return changed

    def apply(self, text: str, *, author: Principal, source: str = "<upload>") -> ApplyResult:
        """Store ``text`` as a new draft version (admin). Applying the exact text of an existing version is a no-op."""
        if not author.has("admin"):
            raise ForbiddenError("applying an agreement needs the role admin", code="role-required")
        agreement = self.check_text(text, source)
        versions = self._store.versions(agreement.id)
        state = agreement_state(versions)
        if state in TERMINAL_STATES:
            raise LifecycleConflictError(
                f"agreement {agreement.id!r} is {state} and its keys are destroyed; write a new agreement with a "
                "new id",
                code="agreement-ended",
            )
        for existing in versions:
            if existing.version == agreement.version:
                if existing.digest == agreement.digest:
                    return ApplyResult(existing, False, self.lint(agreement))
                raise LifecycleConflictError(
                    f"version {agreement.version} of {agreement.id!r} already exists with another text and versions "
                    f"are immutable; set version: {versions[-1].version + 1} in the file and apply it again",
                    code="version-exists",
                )
        if versions and agreement.version < versions[-1].version:
            raise LifecycleConflictError(
                f"version {agreement.version} is older than the latest version {versions[-1].version} of "
                f"{agreement.id!r}; set version: {versions[-1].version + 1}",
                code="version-too-old",
            )
        now = self._clock()
        row = StoredVersion(
            agreement_id=agreement.id,
            version=agreement.version,
            text=text,
            digest=agreement.digest,
            author=author.name,
            created_at=now,
            state=DRAFT,
            approved_by=None,
            approved_at=None,
            state_changed_at=now,
            state_changed_by=author.name,
            state_reason=None,
        )
        try:
            self._store.insert(row)
        except IntegrityError:
            # Another apply of the same id and version won the race: same text is fine, another text is not.
            return self.apply(text, author=author, source=source)
        try:
            self._record(row, None, DRAFT, author.name, None)
        except Exception:
            self._store.delete_draft(row.agreement_id, row.version)
            raise
        _log.info("agreement_applied", agreement=row.agreement_id, version=row.version, by=author.name)
        return ApplyResult(row, True, self.lint(agreement))

    def approve(self, agreement_id: str, version: int, *, approver: Principal) -> StoredVersion:
        """Approve a draft (approver, not its author); activates it unless the agreement is suspended."""
        return self.approve_measured(agreement_id, version, approver=approver).version

    def approve_measured(self, agreement_id: str, version: int, *, approver: Principal) -> ApprovalResult:
        """``approve``, also returning the measured risk (shown by the HTTP API and the CLI)."""
        agreement = self._draft_agreement(agreement_id, version, approver, "approving")
        target = self._version(agreement_id, version)
        versions = self._store.versions(agreement_id)
        state = agreement_state(versions)
        if state in TERMINAL_STATES:
            raise LifecycleConflictError(
                f"agreement {agreement_id!r} is {state}; no version of it can be approved", code="agreement-ended"
            )
        newer = [v.version for v in versions if v.state in _IN_FORCE and v.version > version]
        if newer:
            raise LifecycleConflictError(
                f"version {version} is older than version {max(newer)}, which is approved or in force; apply a newer "
                "version instead",
                code="version-too-old",
            )
        errors = [f for f in self.lint(agreement) if f.severity == "error"]
        if errors:
            raise LintRefusedError(
                f"lint finds {len(errors)} error(s) in version {version}, e.g. {errors[0].path}: "
                f"{errors[0].message}; fix them and apply a new version",
                problems=[str(f) for f in errors],
            )
        shredded = sorted(d for d in agreement_domains(target.text) if self._ring.store.is_destroyed(domain_owner(d)))
        if shredded:
            raise LifecycleConflictError(
                f"linkage domain {shredded[0]!r} was destroyed with an agreement that ended; its tokens can never be "
                "made again: choose a new domain name",
                code="domain-destroyed",
            )
        assessment = self.measure_risk(agreement)
        extra: dict[str, Any] = {}
        accepted: list[RiskAcceptance] = []
        if assessment is not None:
            extra["risk"] = log_figures(assessment)
            if assessment.exceeds:
                accepted = self._logged_acceptances(target)
                if len({a.approver for a in accepted}) < RISK_ACCEPTANCES_NEEDED:
                    raise RiskRefusedError(
                        f"the measured re-identification risk of version {version} exceeds the catalog's threshold "
                        f"({'; '.join(assessment.problems)}); generalize more, or two distinct approvers must each "
                        f"accept the risk with a reason first ({len(accepted)} of {RISK_ACCEPTANCES_NEEDED} so far)",
                        risk={
                            **assessment.describe(),
                            "acceptances": [{"by": a.approver, "at": a.describe()["at"]} for a in accepted],
                            "acceptances_needed": RISK_ACCEPTANCES_NEEDED,
                        },
                    )
                extra["risk_acceptance"] = risk_acceptance_entry(accepted)
        approved = self._change(target, APPROVED, by=approver.name, approve=True, extra=extra)
        if state == SUSPENDED:
            return ApprovalResult(approved, assessment, accepted)  # waits for an admin to resume the agreement
        previous = [v for v in versions if v.state == ACTIVE]
        active = self._change(approved, ACTIVE, by=approver.name, also=[(v, SUPERSEDED) for v in previous])
        return ApprovalResult(active, assessment, accepted)

    def reject(self, agreement_id: str, version: int, *, approver: Principal, reason: str | None) -> StoredVersion:
        """Refuse a draft (approver, not its author; a reason is required and goes into the log entry)."""
        reason = _check_reason(reason)
        if reason is None:
            raise AgreementInvalidError("a rejection needs a reason (it goes into the disclosure log)", [])
        if not approver.has("approver"):
            raise ForbiddenError("rejecting an agreement needs the role approver", code="role-required")
        target = self._version(agreement_id, version)
        if target.state != DRAFT:
            raise LifecycleConflictError(
                f"version {version} of {agreement_id!r} is {target.state}; only a draft can be rejected",
                code="not-a-draft",
            )
        if approver.name == target.author:
            # Rejecting one's own draft is harmless, but the rule stays the same as approval: another person decides.
            raise ForbiddenError(
                f"you applied version {version} of {agreement_id!r}; another approver must review it (four eyes)",
                code="four-eyes",
            )
        return self._change(target, REJECTED, by=approver.name, reason=reason)

    def set_state(
        self,
        agreement_id: str,
        state: str,
        *,
        by: Principal,
        reason: str | None = None,
        confirmation: PendingAction | None = None,
    ) -> StoredVersion:
        """Suspend (admin alone), resume (``active``) or revoke an agreement.

        Resuming and revoking (which destroys keys) are under dual control: they run only with ``confirmation``, a
        request of ``agreement.resume`` / ``agreement.revoke`` on this agreement confirmed by a second principal
        (:mod:`policies.dual_control`, :class:`gateway.agreements.actions.DualControl`); without it they raise
        :class:`SecondPersonRequiredError` after checking that the change could be made."""
        if confirmation is None and not by.has("admin"):
            raise ForbiddenError("changing the state of an agreement needs the role admin", code="role-required")
        reason = _check_reason(reason)
        kind, main, rest = self.plan_state(agreement_id, state)
        action = DUAL_CONTROLLED.get(kind)
        extra: dict[str, Any] = {}
        if action is not None:
            if confirmation is None:
                raise SecondPersonRequiredError(
                    f"{action} needs a second person: request it (POST /v1/admin/actions, or the state change) and "
                    "have it confirmed by another principal"
                )
            try:
                require_confirmed(confirmation, action, agreement_id)
            except DualControlError as exc:
                raise SecondPersonRequiredError(exc.detail) from exc
            extra["dual_control"] = {
                "action_id": confirmation.id,
                "requested_by": confirmation.requested_by,
                "confirmed_by": confirmation.confirmed_by,
            }
        who = by.name
        if kind == "revoked-again":
            # Already revoked: finish a key destruction that may have failed the first time (idempotent).
            self.destroy_keys(main, by=who, reason=reason)
            return main
        if kind == REVOKED:
            revoked = self._change(main, REVOKED, by=who, reason=reason, also=[(v, REVOKED) for v in rest], extra=extra)
            self.destroy_keys(revoked, by=who, reason=reason)
            return revoked
        if kind == SUSPENDED:
            return self._change(main, SUSPENDED, by=who, reason=reason)
        return self._change(main, ACTIVE, by=who, reason=reason, also=[(v, SUPERSEDED) for v in rest], extra=extra)

    def plan_state(self, agreement_id: str, state: str) -> tuple[str, StoredVersion, list[StoredVersion]]:
        """What setting ``state`` would do, changing nothing: (kind, version, other versions it moves); raises the
        404/409/422 the change itself would (used to refuse a request for a second person's confirmation at once)."""
        if state not in SETTABLE_STATES:
            raise AgreementInvalidError(
                f"state must be one of {', '.join(SETTABLE_STATES)} (expiry happens by itself at valid_until)", []
            )
        versions = self._store.versions(agreement_id)
        if not versions:
            raise NotFoundError(f"there is no agreement with id {shown_name(agreement_id)}")
        current = agreement_state(versions)
        by_state = {s: [v for v in versions if v.state == s] for s in (ACTIVE, SUSPENDED, APPROVED, REVOKED)}
        if state == REVOKED:
            if current == REVOKED:
                return "revoked-again", by_state[REVOKED][-1], []
            live = by_state[ACTIVE] + by_state[SUSPENDED] + by_state[APPROVED]
            if not live:
                raise LifecycleConflictError(
                    f"agreement {agreement_id!r} is {current}; only an approved, active or suspended agreement can be "
                    "revoked",
                    code="invalid-transition",
                )
            main, *rest = sorted(live, key=lambda v: -v.version)
            return REVOKED, main, rest
        if state == SUSPENDED:
            if not by_state[ACTIVE]:
                raise LifecycleConflictError(
                    f"agreement {agreement_id!r} is {current}; only an active agreement can be suspended",
                    code="invalid-transition",
                )
            return SUSPENDED, by_state[ACTIVE][-1], []
        # resume. A revoked or expired agreement never comes back: its keys are destroyed (decided; docs/security.md).
        if not by_state[SUSPENDED]:
            raise LifecycleConflictError(
                f"agreement {agreement_id!r} is {current}; only a suspended agreement can be made active again "
                "(a draft becomes active when an approver approves it)",
                code="invalid-transition",
            )
        suspended = by_state[SUSPENDED][-1]
        waiting = [v for v in by_state[APPROVED] if v.version > suspended.version]
        if waiting:
            # A version approved during the suspension takes over from the suspended one.
            return ACTIVE, waiting[-1], [suspended]
        return ACTIVE, suspended, []

    def expire(self, version: StoredVersion) -> None:
        """``valid_until`` of an active version has passed: it expires and its keys are destroyed (registry hook)."""
        current = self._store.version(version.agreement_id, version.version)
        if current is None or current.state not in (ACTIVE, SUSPENDED):
            return
        try:
            expired = self._change(current, EXPIRED, by="system", reason="valid_until passed")
        except LifecycleConflictError:
            return  # another process expired it first
        self.destroy_keys(expired, by="system", reason="valid_until passed")

    # -- keys -------------------------------------------------------------------------------------------------------
    def destroy_keys(self, version: StoredVersion, *, by: str, reason: str | None) -> list[str]:
        """Crypto-shred the keys of an agreement that ended, and of its linkage domains no agreement in force uses."""
        in_use: dict[str, list[str]] = {}
        for other in self._store.in_states(*_IN_FORCE):
            if other.agreement_id != version.agreement_id:
                for domain in agreement_domains(other.text):
                    in_use.setdefault(domain, []).append(other.agreement_id)
        owners = [agreement_owner(version.agreement_id)]
        kept: list[dict[str, Any]] = []
        for domain in sorted(agreement_domains(version.text)):
            if domain in in_use:
                kept.append({"owner": domain_owner(domain), "used_by": sorted(set(in_use[domain]))})
            else:
                owners.append(domain_owner(domain))
        destroyed = {owner: self._ring.destroy(owner) for owner in owners}
        self._log.append_event(
            {
                "type": "keys.destroyed",
                "agreement": {"id": version.agreement_id, "version": version.version, "state": version.state},
                "owners": [{"owner": o, "versions": n} for o, n in destroyed.items()],
                "kept": kept,
                "by": by,
                "reason": reason,
            }
        )
        _log.info("keys_destroyed", agreement=version.agreement_id, owners=len(owners), kept=len(kept))
        return owners

    def _forget_keys(self, agreement: Agreement) -> None:
        self._ring.forget(agreement_owner(agreement.id))
        for domain in agreement_domains_of(agreement):
            self._ring.forget(domain_owner(domain))


def agreement_domains_of(agreement: Agreement) -> set[str]:
    return {
        d
        for rule in agreement.fields.values()
        if (d := getattr(rule, "domain", None)) is not None and isinstance(d, str)
    }
