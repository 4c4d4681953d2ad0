"""The witness's key and state.

``DIR/witness-key.json`` (0600, created once) holds the witness name and its Ed25519 seed; ``DIR/witness.db``
(SQLite, WAL, synchronous=FULL) holds per log origin the size and root of the latest checkpoint cosigned, and the
refused submissions that are evidence of a misbehaving log (the spec lets a witness keep them), each note once.
The check of the old size and the update of the state are one ``BEGIN IMMEDIATE`` transaction, committed before
the cosignature is returned: two concurrent submissions cannot roll the state back (the race tlog-witness
describes), even across processes.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError
from keys import SecretBytes, SigningKey, VerifyKey
from tlog import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
    Checkpoint,
    CheckpointError,
    VerifierKey,
    WitnessConflictError,
    WitnessedHead,
    WitnessError,
    WitnessProofError,
    WitnessRequestError,
    check_add_checkpoint,
    cosign,
    ed25519_key_hash,
    format_vkey,
    note_signature_lines,
    open_checkpoint,
    parse_add_checkpoint,
    parse_vkey,
)

__all__ = ["KEY_FILE", "STATE_FILE", "WitnessRefusal", "WitnessState", "init_witness", "parse_log_vkeys"]

KEY_FILE = "witness-key.json"
STATE_FILE = "witness.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS heads (
    origin TEXT PRIMARY KEY,
    size TEXT NOT NULL,
    root BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    old_size TEXT NOT NULL,
    note TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS refusals_once ON refusals (origin, status, note);
"""


@dataclass(frozen=True, slots=True)
class WitnessRefusal(Exception):
    """A submission the witness does not cosign: the HTTP status the spec prescribes, and why (sizes, no data).

    ``known_size`` is set for 409: the body of the ``text/x.tlog.size`` answer.
    """

    status: int
    reason: str
    known_size: int | None = None

    def __str__(self) -> str:
        return self.reason


class _LogKey:
    """The Ed25519 key of a log the witness follows (signed-note type 0x01), as a tlog Verifier."""

    def __init__(self, vkey: VerifierKey) -> None:
        self.origin = vkey.name
        self._key = VerifyKey.from_bytes(vkey.public_key)
        self._raw = vkey.public_key

    def verify(self, message: bytes, signature: bytes) -> None:
        self._key.verify(message, signature)

    def key_hash(self, name: str) -> bytes:
        return ed25519_key_hash(name, self._raw)


def parse_log_vkeys(vkeys: list[str]) -> dict[str, _LogKey]:
    """The logs a witness follows, by origin: each ``--log-vkey`` is ``<origin>+<key ID>+<key>`` (type 0x01)."""
    logs: dict[str, _LogKey] = {}
    for text in vkeys:
        try:
            vkey = parse_vkey(text, key_type=SIGNATURE_TYPE_ED25519)
        except CheckpointError as exc:
            raise ConfigError(f"--log-vkey {text[:40]!r}: {exc}") from exc
        if vkey.name in logs:
            raise ConfigError(f"--log-vkey: origin {vkey.name!r} given twice")
        logs[vkey.name] = _LogKey(vkey)
    if not logs:
        raise ConfigError("a witness needs at least one --log-vkey")
    return logs


def init_witness(directory: Path, name: str) -> str:
    """Create the witness's key (0600) and state in ``directory``; refuse if a key is already there. Returns the
    witness's vkey."""
    try:
        format_vkey(name, SIGNATURE_TYPE_COSIGNATURE_V1, bytes(32))
    except CheckpointError as exc:
        raise ConfigError(
            f"--name: {exc} (a witness name is a schema-less URL, e.g. authority.example/witness)"
        ) from exc
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / KEY_FILE
    key = SigningKey.generate()
    body = json.dumps({"name": name, "seed": base64.b64encode(key.seed().reveal()).decode("ascii")})
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path}: a witness key already exists here (it is never overwritten)") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    WitnessState(directory, {}).close()  # creates the state database
    return format_vkey(name, SIGNATURE_TYPE_COSIGNATURE_V1, key.public_key.raw)


def _load_key(directory: Path) -> tuple[str, SigningKey]:
    path = directory / KEY_FILE
    try:
        mode = path.stat().st_mode
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no witness key; run `gateway witness init --state {directory} --name NAME`"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the witness key") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: the witness key must be readable by its owner only (chmod 600)")
    try:
        name = raw["name"]
        seed = base64.b64decode(raw["seed"], validate=True)
        key = SigningKey.from_seed(SecretBytes(seed))
        format_vkey(name, SIGNATURE_TYPE_COSIGNATURE_V1, key.public_key.raw)
    except Exception as exc:  # any shape error: one message, never the key's bytes
        raise ConfigError(f"{path}: not a witness key file (name and 32-byte seed)") from exc
    return name, key


class WitnessState:
    """One witness: its key, the logs it follows (origin → key) and its durable state."""

    def __init__(self, directory: Path, logs: Mapping[str, _LogKey], *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.name, self._key = _load_key(directory)
        self._logs = dict(logs)
        self._clock = clock
        self._lock = threading.Lock()  # one writer in this process; BEGIN IMMEDIATE covers other processes
        self._db = sqlite3.connect(directory / STATE_FILE, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # the state is on disk before a cosignature leaves
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"WitnessState({self.name!r}, <key redacted>)"

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self._key.public_key.raw)

    def close(self) -> None:
        self._db.close()

    def head(self, origin: str) -> WitnessedHead | None:
        row = self._db.execute("SELECT size, root FROM heads WHERE origin = ?", (origin,)).fetchone()
        return WitnessedHead(int(row[0]), bytes(row[1])) if row is not None else None

    def add_checkpoint(self, body: bytes) -> str:
        """Handle one add-checkpoint request body; return the cosignature line, or raise :class:`WitnessRefusal`."""
        try:
            request = parse_add_checkpoint(body)
            text, _ = note_signature_lines(request.note)
            origin = Checkpoint.parse(text).origin
        except (WitnessRequestError, CheckpointError) as exc:
            raise WitnessRefusal(400, f"malformed request: {exc}") from exc
        log = self._logs.get(origin)
        if log is None:
            raise WitnessRefusal(404, "unknown log origin")
        try:
            checkpoint = open_checkpoint(request.note, origin, log, origin=origin)
        except CheckpointError as exc:
            raise WitnessRefusal(403, f"no valid signature by the log's key: {exc}") from exc
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                known = self.head(origin)
                try:
                    head = check_add_checkpoint(known, request.old_size, request.proof, checkpoint)
                except WitnessError as exc:
                    status = _status(exc)
                    if _is_evidence(status, known, checkpoint):
                        self._db.execute(
                            "INSERT OR IGNORE INTO refusals (at, origin, status, old_size, note, reason) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (int(self._clock()), origin, status, str(request.old_size), request.note, str(exc)),
                        )
                    self._db.execute("COMMIT")
                    known_size = exc.known_size if isinstance(exc, WitnessConflictError) else None
                    raise WitnessRefusal(status, str(exc), known_size) from exc
                self._db.execute(
                    "INSERT INTO heads (origin, size, root, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
                    "updated_at = excluded.updated_at",
                    (origin, str(head.size), head.root, int(self._clock())),
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return cosign(text, self.name, self._key.public_key.raw, self._key.sign, int(self._clock()))


def _is_evidence(status: int, known: WitnessedHead | None, checkpoint: Checkpoint) -> bool:
    """Whether a refusal shows the log misbehaving (kept) rather than a client that lags (not kept): a checkpoint
    smaller than the one cosigned, another root for the cosigned size, or a proof that fails. Each signed note is
    kept once, so anyone replaying public checkpoints cannot grow the table."""
    if status == 422:
        return True
    if status != 409 or known is None:
        return False
    return checkpoint.size < known.size or (checkpoint.size == known.size and checkpoint.root != known.root)


def _status(exc: WitnessError) -> int:
    if isinstance(exc, WitnessConflictError):
        return 409
    if isinstance(exc, WitnessProofError):
        return 422
    return 400
