"""The tamper-evident disclosure log: entries, the group-committing SQL writer and its in-memory fake, the reader,
the checkpoint signer, receipts, whole-log verification, the keyed subject hashes, and the disclosure session that
keeps "logged before any byte leaves, finished exactly once" (docs/disclosure-log.md)."""

from __future__ import annotations

from gateway.audit.log import DisclosureLog, DisclosureStart, LogEvent, MemoryDisclosureLog, SqlDisclosureLog
from gateway.audit.reader import LogReader, build_receipt
from gateway.audit.receipts import ReceiptReport, verify_receipt
from gateway.audit.session import DisclosureSession, FinishStatus, SessionMisuseError, error_code
from gateway.audit.signer import LogSigner, LogVerifier
from gateway.audit.subjects import LogKeys
from gateway.audit.verify import VerifyReport, verify_log

__all__ = [
    "DisclosureLog",
    "DisclosureSession",
    "DisclosureStart",
    "FinishStatus",
    "LogEvent",
    "LogKeys",
    "LogReader",
    "LogSigner",
    "LogVerifier",
    "MemoryDisclosureLog",
    "ReceiptReport",
    "SessionMisuseError",
    "SqlDisclosureLog",
    "VerifyReport",
    "build_receipt",
    "error_code",
    "verify_log",
    "verify_receipt",
]
