"""Every table of the gateway database, in one module (SQLModel declarations; hot paths use SQLAlchemy Core on them).

One module, so that importing it registers the whole schema on ``SQLModel.metadata``: Alembic's environment and
``init_schema`` see all tables, and autogenerate against a database at head proposes nothing (tested).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

__all__ = [
    "MAX_REASON",
    "AgreementRiskAcceptanceRow",
    "AgreementVersionRow",
    "AlertAcknowledgementRow",
    "ApiKeyRow",
    "CheckpointCosignatureRow",
    "CheckpointRow",
    "DisclosureRow",
    "KeyTombstoneRow",
    "LogEntryRow",
    "LogHeadRow",
    "LogNodeRow",
    "LogVerificationRow",
    "PendingActionRow",
    "PrincipalRow",
    "PrivacyBudgetRow",
    "ReidentificationApprovalRow",
    "ReidentificationRow",
    "SubjectIndexRow",
    "UiSessionRow",
    "WrappedKeyRow",
    "utcnow",
]

#: longest reason a re-identification request may carry (the column's size)
MAX_REASON = 1000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PrincipalRow(SQLModel, table=True):
    __tablename__ = "principals"
    name: str = Field(primary_key=True, max_length=64)
    roles: str = Field(max_length=256)  # comma-separated, from requester, compliance, admin, approver
    display_name: str = Field(default="", max_length=256)
    created_at: dt.datetime = Field(default_factory=utcnow)
    disabled: bool = Field(default=False)


class ApiKeyRow(SQLModel, table=True):
    __tablename__ = "api_keys"
    key_id: str = Field(primary_key=True, max_length=32)
    principal: str = Field(foreign_key="principals.name", index=True, max_length=64)
    secret_hash: str = Field(max_length=128)
    created_at: dt.datetime = Field(default_factory=utcnow)
    revoked_at: dt.datetime | None = None


class WrappedKeyRow(SQLModel, table=True):
    __tablename__ = "wrapped_keys"
    owner: str = Field(primary_key=True, max_length=200)
    version: int = Field(primary_key=True)
    wrapped: str  # keys.WrappedKey.to_json(): AES-GCM ciphertext, never the key itself
    created_at: dt.datetime = Field(default_factory=utcnow)


class KeyTombstoneRow(SQLModel, table=True):
    """An owner whose keys were destroyed (crypto-shredding): it can never get a key again."""

    __tablename__ = "key_tombstones"
    owner: str = Field(primary_key=True, max_length=200)
    destroyed_at: dt.datetime = Field(default_factory=utcnow)
    records: int = Field(default=0)  # how many wrapped key versions were deleted


class LogHeadRow(SQLModel, table=True):
    """One row: the size of the log and the right border of its Merkle tree (hex hashes, JSON list).

    Appenders lock this row, which serialises index assignment across every process on one database; the border
    lets each append compute the new tree nodes without reading the tree.
    """

    __tablename__ = "log_head"
    id: int = Field(primary_key=True)
    size: int = Field(default=0, sa_type=sa.BigInteger)
    border: str = Field(default="[]")


class LogNodeRow(SQLModel, table=True):
    """Hashes of the complete (perfect) subtrees of the log's Merkle tree; level 0 are the leaf hashes."""

    __tablename__ = "log_nodes"
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True, sa_type=sa.BigInteger)
    hash: str = Field(max_length=64)


class CheckpointRow(SQLModel, table=True):
    """Signed tree heads (C2SP tlog-checkpoint notes), kept forever."""

    __tablename__ = "log_checkpoints"
    size: int = Field(primary_key=True, sa_type=sa.BigInteger)
    root: str = Field(max_length=64)
    note: str
    created_at: dt.datetime = Field(default_factory=utcnow)


class SubjectIndexRow(SQLModel, table=True):
    """Which disclosure included which subject: a keyed hash of the subject id, never the id itself."""

    __tablename__ = "subject_index"
    # SQLite: the primary key is the table (no separate rowid b-tree): half the writes per indexed subject.
    __table_args__ = {"sqlite_with_rowid": False}
    subject_hash: bytes = Field(primary_key=True, sa_type=sa.LargeBinary(16))
    disclosure_seq: int = Field(primary_key=True, sa_type=sa.BigInteger)


class LogEntryRow(SQLModel, table=True):
    """Append-only leaves of the disclosure log (canonical JSON); nothing updates or deletes them."""

    __tablename__ = "log_entries"
    seq: int = Field(primary_key=True, sa_type=sa.BigInteger)
    kind: str = Field(max_length=64)
    disclosure_id: str | None = Field(default=None, index=True, max_length=64)
    body: str
    leaf_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)


class DisclosureRow(SQLModel, table=True):
    """Queryable view of a disclosure; its authoritative history is the pair of log entries (started, finished)."""

    __tablename__ = "disclosures"
    __table_args__ = (sa.Index("ix_disclosures_agreement_started", "agreement_id", "started_at"),)
    id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=64)
    principal: str = Field(index=True, max_length=64)
    agreement_id: str = Field(max_length=64)
    agreement_version: int
    agreement_digest: str = Field(max_length=80)
    approved_by: str = Field(max_length=256)
    legal_basis: str
    purpose: str = Field(index=True, max_length=64)
    operation: str = Field(max_length=32)
    status: str = Field(index=True, max_length=16)  # started | completed | aborted | failed
    started_at: dt.datetime = Field(index=True)
    finished_at: dt.datetime | None = None
    rows: int = Field(default=0)
    bytes: int = Field(default=0)
    sha256: str | None = Field(default=None, max_length=64)
    start_seq: int = Field(sa_type=sa.BigInteger, unique=True)
    finish_seq: int | None = Field(default=None, sa_type=sa.BigInteger)
    plan: str  # canonical JSON of the release plan description
    error: str | None = Field(default=None, max_length=256)
    details: str | None = None  # canonical JSON of operation-specific facts (suppression counts, alerts...)


# Agreements: one immutable row per version.
class AgreementVersionRow(SQLModel, table=True):
    """One immutable version of an agreement: its YAML text as applied, who wrote it, who approved it, its state."""

    __tablename__ = "agreement_versions"
    __table_args__ = (sa.Index("ix_agreement_versions_state", "state"),)
    agreement_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    text: str
    digest: str = Field(max_length=80)
    author: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)
    state: str = Field(max_length=16)
    approved_by: str | None = Field(default=None, max_length=64)
    approved_at: dt.datetime | None = None
    state_changed_at: dt.datetime = Field(default_factory=utcnow)
    state_changed_by: str = Field(max_length=64)
    state_reason: str | None = Field(default=None, max_length=500)


class AgreementRiskAcceptanceRow(SQLModel, table=True):
    """One approver's acceptance of a draft version's measured risk above the catalog threshold. The primary key makes
    "two distinct approvers" a database fact, as for re-identification approvals; approval needs two such rows."""

    __tablename__ = "agreement_risk_acceptances"
    agreement_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    approver: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=500)
    figures: str  # canonical JSON of the figures accepted (counts and ratios only)
    accepted_at: dt.datetime = Field(default_factory=utcnow)


# Differential-privacy budgets.
class PrivacyBudgetRow(SQLModel, table=True):
    __tablename__ = "privacy_budgets"
    agreement_id: str = Field(primary_key=True, max_length=64)
    spent_units: int = Field(default=0, sa_type=sa.BigInteger)  # epsilon x 1e9
    queries: int = Field(default=0)
    updated_at: dt.datetime = Field(default_factory=utcnow)


# Re-identification requests and their approvals.
class ReidentificationRow(SQLModel, table=True):
    """A request to reverse tokens. The tokens are pseudonyms the requester already holds; they are cleared once the
    answer was fetched (the log keeps their count and digest)."""

    __tablename__ = "reidentification_requests"
    id: str = Field(primary_key=True, max_length=64)
    agreement_id: str = Field(index=True, max_length=64)
    agreement_version: int
    field: str = Field(max_length=64)
    tokens: str  # JSON list
    token_count: int
    tokens_sha256: str = Field(max_length=64)
    reason: str = Field(max_length=MAX_REASON)
    requester: str = Field(index=True, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)
    state: str = Field(max_length=16)
    approved_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    disclosure_id: str | None = Field(default=None, max_length=64)


class ReidentificationApprovalRow(SQLModel, table=True):
    """One approver's approval of one request; the primary key makes "two distinct approvers" a database fact."""

    __tablename__ = "reidentification_approvals"
    request_id: str = Field(primary_key=True, max_length=64)
    approver: str = Field(primary_key=True, max_length=64)
    approved_at: dt.datetime = Field(default_factory=utcnow)


# The dashboard: browser sessions and runs of the log verification.
class UiSessionRow(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; only its keyed hash is stored, so a copy of the database
    cannot be replayed as a session."""

    __tablename__ = "ui_sessions"
    id_hash: str = Field(primary_key=True, max_length=64)
    principal: str = Field(index=True, max_length=64)
    # The API key used to sign in: revoking that key (or disabling the principal) ends the session too.
    key_id: str = Field(max_length=32)
    created_at: dt.datetime
    expires_at: dt.datetime = Field(index=True)


class LogVerificationRow(SQLModel, table=True):
    """One run of the full log verification (``gateway log verify`` or the dashboard's "Verify now")."""

    __tablename__ = "log_verifications"
    id: int | None = Field(default=None, primary_key=True)
    verified_at: dt.datetime = Field(index=True)
    source: str = Field(max_length=100)  # "cli" or "dashboard:<principal>"
    ok: bool
    entries: int = Field(sa_type=sa.BigInteger)
    checkpoints: int
    seconds: float
    summary: str = Field(max_length=1000)  # VerifyReport.summary(): names entries and checkpoints, never data


# Dual control: actions requested by one principal and confirmed by a second (policies/dual_control.py).
class PendingActionRow(SQLModel, table=True):
    """One request of an action under dual control, its confirmation and its execution. The state moves only
    forward (pending -> confirmed -> executed) by conditional updates, so a confirmation is counted once."""

    __tablename__ = "pending_actions"
    id: str = Field(primary_key=True, max_length=64)
    action: str = Field(max_length=64)
    target: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    requested_by: str = Field(max_length=64)
    requested_at: dt.datetime
    expires_at: dt.datetime
    state: str = Field(index=True, max_length=16)
    confirmed_by: str | None = Field(default=None, max_length=64)
    confirmed_at: dt.datetime | None = None
    executed_at: dt.datetime | None = None


class AlertAcknowledgementRow(SQLModel, table=True):
    """A compliance officer's acknowledgement of a dashboard alert, with a note (also written to the disclosure log).
    The key names the alert (``disclosure:<id>:<kind>``, ``entry:<seq>``, ``quota:<agreement>:<kind>:<day>``), never
    personal data; the primary key makes "acknowledged once" a database fact."""

    __tablename__ = "alert_acknowledgements"
    alert_key: str = Field(primary_key=True, max_length=200)
    acknowledged_by: str = Field(max_length=64)
    acknowledged_at: dt.datetime = Field(default_factory=utcnow)
    note: str = Field(max_length=500)
    log_index: int = Field(sa_type=sa.BigInteger)  # the log entry that records the acknowledgement


class CheckpointCosignatureRow(SQLModel, table=True):
    """A witness's cosignature (C2SP tlog-cosignature line) of a signed checkpoint, verified when it was received."""

    __tablename__ = "checkpoint_cosignatures"
    size: int = Field(primary_key=True, sa_type=sa.BigInteger)
    witness: str = Field(primary_key=True, max_length=200)
    line: str = Field(max_length=400)  # "— <name> base64(key ID || timestamp || signature)\n"
    cosigned_at: int = Field(sa_type=sa.BigInteger)  # the cosignature's own timestamp (POSIX seconds)
    received_at: dt.datetime = Field(default_factory=utcnow)
