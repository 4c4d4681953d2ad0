"""The first schema (foundation): principals, API keys, wrapped keys, log head, log entries, disclosures.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("roles", sa.String(256), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("principal", sa.String(64), sa.ForeignKey("principals.name"), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_principal", "api_keys", ["principal"])
    op.create_table(
        "wrapped_keys",
        sa.Column("owner", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("wrapped", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("size", sa.Integer(), nullable=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("disclosure_id", sa.String(64), nullable=True),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_log_entries_disclosure_id", "log_entries", ["disclosure_id"])
    op.create_table(
        "disclosures",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("agreement_digest", sa.String(80), nullable=False),
        sa.Column("approved_by", sa.String(256), nullable=False),
        sa.Column("legal_basis", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("start_seq", sa.Integer(), nullable=False),
        sa.Column("finish_seq", sa.Integer(), nullable=True),
        sa.Column("plan", sa.String(), nullable=False),
        sa.Column("error", sa.String(256), nullable=True),
    )
    op.create_index("ix_disclosures_agreement_started", "disclosures", ["agreement_id", "started_at"])
    op.create_index("ix_disclosures_principal", "disclosures", ["principal"])
    op.create_index("ix_disclosures_purpose", "disclosures", ["purpose"])
    op.create_index("ix_disclosures_status", "disclosures", ["status"])
    op.create_index("ix_disclosures_started_at", "disclosures", ["started_at"])


def downgrade() -> None:
    for table in ("disclosures", "log_entries", "log_head", "wrapped_keys", "api_keys", "principals"):
        op.drop_table(table)
