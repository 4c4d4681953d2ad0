"""The rule of dual control, alone: every misuse raises, the one legitimate path goes through."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.dual_control import (
    ACTIONS,
    CONFIRMED,
    EXECUTED,
    DualControlError,
    PendingAction,
    confirm,
    executed,
    request,
    require_confirmed,
)

NOW = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)


def revoke(by: str = "admin-a") -> PendingAction:
    return request("a1", "agreement.revoke", by=by, roles={"admin"}, target="study", reason="ended", now=NOW)


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(DualControlError) as caught:
        call()
    return caught.value.code


def test_a_second_distinct_principal_confirms_and_then_it_may_run() -> None:
    pending = revoke()
    done = confirm(pending, by="admin-b", roles={"admin"}, now=NOW + dt.timedelta(hours=1))
    assert done.state == CONFIRMED and done.confirmed_by == "admin-b" and done.requested_by == "admin-a"
    assert require_confirmed(done, "agreement.revoke", "study") is done
    assert executed(done, NOW).state == EXECUTED


def test_the_requester_cannot_confirm_their_own_request_whatever_roles_they_hold() -> None:
    pending = revoke()
    assert code_of(lambda: confirm(pending, by="admin-a", roles={"admin", "approver"}, now=NOW)) == "four-eyes"


def test_a_role_that_may_not_confirm_is_refused() -> None:
    assert code_of(lambda: confirm(revoke(), by="officer", roles={"compliance"}, now=NOW)) == "role-required"
    resume = request("a2", "agreement.resume", by="admin-a", roles={"admin"}, target="study", reason=None, now=NOW)
    # Resuming is a renewed approval: a second admin is not enough, it takes an approver.
    assert code_of(lambda: confirm(resume, by="admin-b", roles={"admin"}, now=NOW)) == "role-required"
    assert confirm(resume, by="approver-li", roles={"approver"}, now=NOW).state == CONFIRMED


def test_only_an_admin_requests() -> None:
    for roles in ({"approver"}, {"compliance"}, {"requester"}, set()):
        call = lambda r=roles: request("x", "agreement.revoke", by="p", roles=r, target="s", reason=None, now=NOW)  # noqa: E731
        assert code_of(call) == "role-required"
    unknown = lambda: request("x", "keys.destroy_all", by="p", roles={"admin"}, target=None, reason=None, now=NOW)  # noqa: E731
    assert code_of(unknown) == "unknown-action"
    no_target = lambda: request("x", "agreement.revoke", by="p", roles={"admin"}, target=None, reason=None, now=NOW)  # noqa: E731
    assert code_of(no_target) == "invalid-action"


def test_an_expired_request_cannot_be_confirmed() -> None:
    pending = revoke()
    late = pending.expires_at
    assert code_of(lambda: confirm(pending, by="admin-b", roles={"admin"}, now=late)) == "action-expired"
    assert pending.expires_at - pending.requested_at == ACTIONS["agreement.revoke"].ttl


def test_a_replayed_confirmation_and_a_second_run_are_refused() -> None:
    done = confirm(revoke(), by="admin-b", roles={"admin"}, now=NOW)
    assert code_of(lambda: confirm(done, by="admin-c", roles={"admin"}, now=NOW)) == "action-not-pending"
    ran = executed(done, NOW)
    assert code_of(lambda: executed(ran, NOW)) == "action-not-pending"
    assert code_of(lambda: confirm(ran, by="admin-c", roles={"admin"}, now=NOW)) == "action-not-pending"


def test_nothing_unconfirmed_or_forged_runs() -> None:
    pending = revoke()
    assert code_of(lambda: require_confirmed(pending, "agreement.revoke", "study")) == "second-person-required"
    assert code_of(lambda: executed(pending, NOW)) == "second-person-required"
    # A "confirmation" by the requester built by hand (not through confirm) is refused too.
    forged = dataclasses.replace(pending, state=CONFIRMED, confirmed_by="admin-a")
    assert code_of(lambda: require_confirmed(forged, "agreement.revoke", "study")) == "second-person-required"
    done = confirm(pending, by="admin-b", roles={"admin"}, now=NOW)
    # A confirmation of one agreement's revocation does not revoke another, nor resume this one.
    assert code_of(lambda: require_confirmed(done, "agreement.revoke", "other")) == "action-mismatch"
    assert code_of(lambda: require_confirmed(done, "agreement.resume", "study")) == "action-mismatch"


@given(
    requester=st.sampled_from(["a", "b", "c"]),
    confirmer=st.sampled_from(["a", "b", "c"]),
    roles=st.sets(st.sampled_from(["admin", "approver", "compliance", "requester"])),
    action=st.sampled_from(sorted(ACTIONS)),
    hours=st.integers(min_value=0, max_value=48),
)
def test_a_confirmation_goes_through_exactly_when_the_rule_says(
    requester: str, confirmer: str, roles: set[str], action: str, hours: int
) -> None:
    rule = ACTIONS[action]
    target = "study" if rule.needs_agreement else None
    pending = request("h", action, by=requester, roles={"admin"}, target=target, reason=None, now=NOW)
    at = NOW + dt.timedelta(hours=hours)
    ok = confirmer != requester and bool(roles & rule.confirm_roles) and at < pending.expires_at
    try:
        done = confirm(pending, by=confirmer, roles=roles, now=at)
    except DualControlError:
        assert not ok
    else:
        assert ok and done.confirmed_by != done.requested_by
