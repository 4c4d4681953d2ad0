"""``gateway witness ...``: an independent C2SP tlog witness (wired into ``gateway.cli.main``).

    gateway witness init --state DIR --name NAME        create its key (0600) and state; prints its vkey
    gateway witness vkey --state DIR                     print its vkey (give it to the gateway's operator)
    gateway witness serve --state DIR --log-vkey VKEY... [--host H --port P]

The witness needs nothing of the gateway but the log's vkey (``gateway log vkey``, ``GET /v1/log/vkey``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from gateway.settings import Settings
    from tlog import Cosigner

__all__ = [
    "add_log_witness_args",
    "add_receipt_witness_args",
    "add_witness_commands",
    "cmd_log_vkey",
    "log_witness_checks",
    "receipt_cosignature_problems",
    "run_witness_command",
]


def add_witness_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    witness = sub.add_parser("witness", help="run an independent C2SP tlog witness (its own key and state)")
    witness_sub = witness.add_subparsers(dest="witness_command", required=True)
    init = witness_sub.add_parser("init", help="create the witness key (0600) and state")
    init.add_argument("--state", type=Path, required=True, help="the witness's own folder")
    init.add_argument("--name", required=True, help="witness name, a schema-less URL (authority.example/witness)")
    vkey = witness_sub.add_parser("vkey", help="print the witness's verifier key (C2SP vkey, type 0x04)")
    vkey.add_argument("--state", type=Path, required=True)
    serve = witness_sub.add_parser("serve", help="serve POST /add-checkpoint")
    serve.add_argument("--state", type=Path, required=True)
    serve.add_argument(
        "--log-vkey", action="append", required=True, help="vkey of a log to witness (repeatable; origin+id+key)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8780)
    # The gateway's serving limits (docs/operations.md#serving-limits): plain uvicorn has no header timeout, so one
    # client could hold connections open for ever by never finishing a request head (slowloris).
    serve.add_argument("--header-timeout-s", type=float, default=10.0, help="close a connection whose head is late")
    serve.add_argument("--body-timeout-s", type=float, default=30.0, help="close a connection whose body is late")
    serve.add_argument("--max-connections", type=int, default=256, help="past this, 503 (open connections)")


def run_witness_command(args: argparse.Namespace) -> int:
    from gateway.witness.state import WitnessState, init_witness, parse_log_vkeys

    if args.witness_command == "init":
        print(init_witness(args.state, args.name))
        return 0
    if args.witness_command == "vkey":
        state = WitnessState(args.state, {})
        try:
            print(state.vkey)
        finally:
            state.close()
        return 0
    import uvicorn

    from gateway.web import serving
    from gateway.witness.server import witness_app

    state = WitnessState(args.state, parse_log_vkeys(args.log_vkey))
    serving.configure_limits(serving.ProtocolLimits(args.header_timeout_s, args.body_timeout_s))
    print(f"witness {state.name} serving on http://{args.host}:{args.port}/add-checkpoint", flush=True)
    try:
        uvicorn.run(
            witness_app(state),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            http=serving.PROTOCOL,
            limit_concurrency=args.max_connections,
        )
    finally:
        state.close()
    return 0


# -- the gateway's side: `log vkey`, `log verify --witness-vkey`, `receipt verify --witness-vkey --quorum` ------------
def add_log_witness_args(
    log_sub: argparse._SubParsersAction[argparse.ArgumentParser], verify: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    verify.add_argument(
        "--witness-vkey",
        action="append",
        default=None,
        help="a witness's vkey (repeatable; default: the configured witnesses): stored cosignatures must verify",
    )
    verify.add_argument(
        "--no-witnesses", action="store_true", help="do not ask the configured witnesses (offline verification)"
    )
    vkey = log_sub.add_parser("vkey", help="print the log's verifier key (C2SP vkey) for witnesses")
    return vkey


def add_receipt_witness_args(rverify: argparse.ArgumentParser) -> None:
    rverify.add_argument("--witness-vkey", action="append", default=[], help="a witness's vkey (repeatable)")
    rverify.add_argument(
        "--quorum", type=int, default=None, help="cosignatures needed among --witness-vkey (default: all of them)"
    )


def cmd_log_vkey(args: argparse.Namespace) -> int:
    from gateway.errors import ConfigError
    from gateway.settings import settings_for
    from keys import KeysError, VerifyKey
    from tlog import format_verifier_key

    settings = settings_for(args.data_dir, args.config)
    path = settings.log_public_key_path
    try:
        key = VerifyKey.from_pem(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the public key: {exc.strerror}") from exc
    except (ValueError, KeysError) as exc:
        raise ConfigError(f"{path}: not an Ed25519 public key in PEM form") from exc
    print(format_verifier_key(settings.log_origin, key.raw))
    return 0


def _cosigners(texts: list[str]) -> list[Cosigner]:
    from gateway.audit.cosignatures import cosigner_from_vkey
    from gateway.errors import ConfigError
    from tlog import CheckpointError

    out = []
    for text in texts:
        try:
            out.append(cosigner_from_vkey(text))
        except CheckpointError as exc:
            raise ConfigError(f"--witness-vkey {text[:40]!r}: {exc}") from exc
    return out


def log_witness_checks(args: argparse.Namespace, settings: Settings, engine: Engine) -> tuple[list[str], list[str]]:
    """(problems, notes) of the witness checks of ``gateway log verify``: stored cosignatures verify; each configured
    witness (unless ``--no-witnesses``) confirms that the log's latest checkpoint extends what it cosigned."""
    import httpx
    import sqlalchemy as sa

    from gateway.audit.cosignatures import cosigners_of, stored_cosignature_problems
    from gateway.audit.reader import LogReader
    from gateway.audit.witnessing import probe_witness
    from gateway.db.tables import CheckpointRow

    cosigners = _cosigners(args.witness_vkey) if args.witness_vkey else cosigners_of(settings.witnesses)
    problems: list[str] = []
    notes: list[str] = []
    if cosigners:
        with engine.connect() as conn:
            verified, bad = stored_cosignature_problems(conn, cosigners)
        problems.extend(bad)
        notes.append(f"{verified} stored cosignatures verify")
    if args.no_witnesses or not settings.witnesses:
        return problems, notes
    table = CheckpointRow.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(sa.select(table.c.size, table.c.note).order_by(table.c.size.desc()).limit(1)).first()
    if row is None:
        return problems, notes
    reader = LogReader(engine)
    confirmed = 0
    with httpx.Client(timeout=10.0) as client:
        for witness in settings.witnesses:
            ok, text = probe_witness(client, witness, int(row.size), row.note, reader.consistency_proof)
            if ok is False:
                problems.append(text)
            else:
                notes.append(text)
                confirmed += bool(ok)
    if confirmed < settings.witness_quorum and not problems:
        problems.append(f"only {confirmed} of the {settings.witness_quorum} witnesses needed confirmed the log's head")
    return problems, notes


def receipt_cosignature_problems(args: argparse.Namespace, receipt: object) -> tuple[list[str], str]:
    """Problems with a receipt's cosignatures under ``--witness-vkey``/``--quorum``, and a note of what verified."""
    from tlog import CheckpointError, verify_cosignatures

    if not args.witness_vkey:
        return [], ""
    cosigners = _cosigners(args.witness_vkey)
    quorum = len(cosigners) if args.quorum is None else args.quorum
    if not 1 <= quorum <= len(cosigners):
        return [f"--quorum must be between 1 and {len(cosigners)} (the witness keys given)"], ""
    note = receipt.get("checkpoint") if isinstance(receipt, dict) else None
    if not isinstance(note, str):
        return ["the receipt has no checkpoint"], ""
    try:
        found, problems = verify_cosignatures(note, cosigners)
    except CheckpointError as exc:
        return [f"checkpoint malformed: {exc}"], ""
    if len(found) < quorum:
        problems.append(
            f"the checkpoint has {len(found)} valid witness cosignatures, {quorum} needed: it is not witnessed "
            "(fetch the receipt again once the witnesses have cosigned)"
        )
    return problems, f"; cosigned by {', '.join(c.name for c in found)}" if found else ""
