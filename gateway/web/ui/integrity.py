"""Log integrity for the dashboard: full verification runs (recorded), and receipts verified as a requester would.

The verifier is built from the log signer's public key. That checks the log against the key this gateway signs
with; an auditor who distrusts the server as a whole runs ``gateway log verify`` / ``gateway receipt verify`` with
the published ``log.pub`` instead, and those CLI runs are recorded here too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit.reader import LogReader, build_receipt
from gateway.audit.receipts import verify_receipt
from gateway.audit.signer import LogVerifier
from gateway.audit.verify import VerifyReport, verify_log
from gateway.services import Services
from gateway.web.ui.tables import LogVerificationRow, ensure_tables

__all__ = [
    "ReceiptCheck",
    "check_receipt",
    "log_verifier",
    "record_cli_verification",
    "record_verification",
    "run_verification",
]

_verifications = LogVerificationRow.__table__  # type: ignore[attr-defined]


def log_verifier(services: Services) -> LogVerifier | None:
    return LogVerifier(services.signer.public_key) if services.signer is not None else None


def record_verification(engine: Engine, report: VerifyReport, *, source: str, at: dt.datetime) -> None:
    ensure_tables(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(_verifications).values(
                verified_at=at,
                source=source[:100],
                ok=report.ok,
                entries=report.entries,
                checkpoints=report.checkpoints,
                seconds=round(report.seconds, 3),
                summary=report.summary()[:1000],
            )
        )


def record_cli_verification(engine: Engine, report: VerifyReport) -> bool:
    """Record a ``gateway log verify`` run for the dashboard; False (and no exception) when the database cannot be
    written, because a read-only copy of the log must still be verifiable."""
    try:
        record_verification(engine, report, source="cli", at=dt.datetime.now(dt.UTC))
    except SQLAlchemyError:
        return False
    return True


def run_verification(services: Services, engine: Engine, *, source: str) -> VerifyReport:
    report = verify_log(engine, log_verifier(services))
    record_verification(engine, report, source=source, at=services.clock())
    return report


@dataclass
class ReceiptCheck:
    receipt: dict[str, Any] | None
    ok: bool
    problems: list[str] = field(default_factory=list)
    tree_size: int | None = None
    verified_entries: list[str] = field(default_factory=list)  # "disclosure.started (index 4)", ...


def check_receipt(services: Services, reader: LogReader, row: Any) -> ReceiptCheck:
    """Build the entry's receipt and verify it as ``gateway receipt verify`` does: signature, canonical entries,
    inclusion proofs against the signed root, both entries of the disclosure — except that a disclosure that ended
    ``failed`` or ``aborted`` is not itself a problem here (the page shows its status)."""
    receipt = build_receipt(services.log, reader, row)
    if receipt is None:
        return ReceiptCheck(None, False, ["no signed checkpoint covers this entry yet; reload in a few seconds"])
    verifier = log_verifier(services)
    if verifier is None:
        return ReceiptCheck(receipt, False, ["this gateway has no log signing key, so receipts cannot be verified"])
    # The page shows the status itself; a failed or aborted disclosure's entries still verify as log entries.
    report = verify_receipt(receipt, verifier, require_completed=False)
    entries = [f"{e.get('type')} (log index {e.get('index')})" for e in report.entries]
    size = report.checkpoint.size if report.checkpoint is not None else None
    return ReceiptCheck(receipt, report.ok, list(report.problems), size, entries)
