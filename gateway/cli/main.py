"""The ``gateway`` command line (docs/design.md §6 is the contract).

Every command that works on a deployment takes ``--data-dir DIR`` (default ``var/demo``) or ``--config FILE``.
Errors print one line to stderr naming what is wrong and exit non-zero; they never print key material.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.actions import add_action_commands, run_action_command
from gateway.cli.agreements import LIFECYCLE_COMMANDS, add_lifecycle_commands, run_lifecycle_command
from gateway.cli.attribute import add_attribute_command, run_attribute_command
from gateway.cli.fetch import add_fetch_command, run_fetch
from gateway.cli.odrl import EXPORT_COMMAND, add_export_command, run_export_command
from gateway.cli.witness import (
    add_log_witness_args,
    add_receipt_witness_args,
    add_witness_commands,
    cmd_log_vkey,
    log_witness_checks,
    receipt_cosignature_problems,
    run_witness_command,
)
from gateway.errors import ConfigError
from keys import KeysError

if TYPE_CHECKING:
    from gateway.audit.signer import LogVerifier

__all__ = ["main"]

RESEARCH_AGREEMENT = "research-continuity"


def _deployment_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data-dir", type=Path, default=None, help="deployment folder (default: var/demo)")
    group.add_argument("--config", type=Path, default=None, help="path to a gateway.yaml")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Privacy-preserving data exchange gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="build (if missing) and serve a demo deployment")
    demo.add_argument("--rows", type=int, default=100_000, help="children in a new demo registry (default 100000)")
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument("--host", default=None)
    demo.add_argument("--data-dir", type=Path, default=Path("var/demo"))
    demo.add_argument("--no-serve", action="store_true", help="build and print, do not serve")

    serve = sub.add_parser("serve", help="serve a deployment")
    _deployment_args(serve)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=1)

    data = sub.add_parser("demo-data", help="generate a synthetic registry (SQLite)")
    data.add_argument("--rows", type=int, required=True)
    data.add_argument("--seed", type=int, default=2026)
    data.add_argument("--out", type=Path, required=True)

    keys = sub.add_parser("keys", help="key management")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_init = keys_sub.add_parser("init", help="create the master key file (0600) unless it exists")
    _deployment_args(keys_init)

    agreements = sub.add_parser("agreements", help="agreement files")
    agreements_sub = agreements.add_subparsers(dest="agreements_command", required=True)
    add_lifecycle_commands(agreements_sub, keys_sub, _deployment_args)
    check = agreements_sub.add_parser("check", help="validate and lint agreement files (exit 1 on error)")
    check.add_argument("paths", nargs="+", type=Path)
    check.add_argument("--catalog", type=Path, default=None, help="catalog file (default: the deployment's)")
    _deployment_args(check)
    risk = agreements_sub.add_parser("risk", help="re-identification risk of an agreement on the current data")
    risk.add_argument("agreement_id")
    _deployment_args(risk)
    add_export_command(agreements_sub, _deployment_args)

    principals = sub.add_parser("principals", help="principals and API keys")
    principals_sub = principals.add_subparsers(dest="principals_command", required=True)
    add = principals_sub.add_parser("add", help="create a principal and print its API key (shown once)")
    add.add_argument("name")
    add.add_argument("--roles", required=True, help="comma-separated: requester, compliance, admin, approver")
    _deployment_args(add)

    log = sub.add_parser("log", help="disclosure log")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    verify = log_sub.add_parser("verify", help="verify the disclosure log (exit 1 on any tamper)")
    _deployment_args(verify)
    verify.add_argument("--public-key", type=Path, default=None, help="log public key (default: the deployment's)")
    _deployment_args(add_log_witness_args(log_sub, verify))

    receipt = sub.add_parser("receipt", help="disclosure receipts")
    receipt_sub = receipt.add_subparsers(dest="receipt_command", required=True)
    rverify = receipt_sub.add_parser("verify", help="verify a receipt offline (exit 1 on any mismatch)")
    rverify.add_argument("file", type=Path)
    rverify.add_argument("--public-key", type=Path, required=True, help="the log's public key (PEM, log.pub)")
    rverify.add_argument("--content", type=Path, default=None, help="the released bytes, to check their SHA-256")
    rverify.add_argument(
        "--disclosure-id", default=None, help="the X-Disclosure-Id the response carried: the receipt must be for it"
    )
    rverify.add_argument(
        "--subject-hash", default=None, help="an accounting proof: the subject hash (hex) it must be for"
    )
    add_receipt_witness_args(rverify)
    add_witness_commands(sub)
    add_attribute_command(sub, _deployment_args)
    add_action_commands(sub, _deployment_args)
    add_fetch_command(sub)
    return parser


def _print_demo(credentials_path: Path, host: str, port: int) -> None:
    entries = json.loads(credentials_path.read_text(encoding="utf-8"))
    research = next(e for e in entries if RESEARCH_AGREEMENT in e["agreements"])
    key = research["api_key"]
    base = f"http://{host}:{port}"
    print(f"\nDemo credentials (principals, roles, API keys): {credentials_path.resolve()}")
    print(f"Compliance dashboard: {base}/ui/ (sign in with the compliance-officer key)")
    print(f"The research requester is {research['principal']!r}. Try, while the server runs:\n")
    print(f"  curl -s {base}/v1/agreements -H 'Authorization: Bearer {key}'\n")
    print(
        f"  curl -s -i {base}/v1/agreements/{RESEARCH_AGREEMENT}/extract -H 'Authorization: Bearer {key}' "
        '-H \'Content-Type: application/json\' -d \'{"filters": {"status": {"eq": "enrolled"}}, '
        '"limit": 5}\'\n'
    )
    print(
        f"  curl -s {base}/v1/agreements/{RESEARCH_AGREEMENT}/extract -H 'Authorization: Bearer {key}' "
        '-H \'Content-Type: application/json\' -d \'{"format": "csv", "fields": ["child_id", "birth_date", '
        '"gender", "residence_code", "migrant"], "limit": 5}\'\n',
        flush=True,
    )


def _serve(config: Path, host: str, port: int, workers: int) -> int:
    import uvicorn

    from gateway.applog import configure_logging
    from gateway.settings import load_settings

    settings = load_settings(config)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    os.environ["DXG_CONFIG"] = str(config.resolve())
    metrics_dir = _metrics_dir(workers)
    print(f"Serving on http://{host}:{port} (config {config}); Ctrl-C stops.", flush=True)
    # uvicorn's access log would write raw paths, which can hold a child's id; the gateway logs its own events.
    try:
        uvicorn.run(
            "gateway.web.asgi:create",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=10,
            # Serving limits (docs/operations.md#serving-limits): the protocol adds the header timeout uvicorn lacks.
            http="gateway.web.serving:GuardedH11Protocol",
            timeout_keep_alive=settings.keep_alive_timeout_s,
            limit_concurrency=settings.max_connections,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir(workers: int) -> str | None:
    """With several workers, prometheus-client's multiprocess mode: a fresh folder for this run's value files (set
    before the workers start, so each one writes there and a scrape of any sums them all). None: one process, or the
    operator set PROMETHEUS_MULTIPROC_DIR itself."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    directory = tempfile.mkdtemp(prefix="dxg-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def _cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo.deployment import build_demo
    from gateway.settings import load_settings

    if args.rows < 1:
        raise ConfigError("--rows must be at least 1")
    target = args.data_dir
    fresh = not (target / "registry.db").exists()
    if fresh:
        print(f"Building a demo deployment in {target} ({args.rows} children)...", flush=True)
    deployment = build_demo(target, rows=args.rows, seed=args.seed, port=args.port or 8000)
    if deployment.created:
        print(f"Created: {', '.join(deployment.created)}")
    else:
        print(f"Reusing the demo deployment in {target}")
    for problem in deployment.problems:
        print(f"Not in force: {problem}")
    settings = load_settings(deployment.config_path)
    host = args.host or settings.host
    port = args.port or settings.port
    _print_demo(deployment.credentials_path, host, port)
    if args.no_serve:
        return 0
    return _serve(deployment.config_path, host, port, 1)


def _cmd_serve(args: argparse.Namespace) -> int:
    from gateway.settings import settings_for

    settings = settings_for(args.data_dir, args.config)
    return _serve(settings.config_path, args.host or settings.host, args.port or settings.port, args.workers)


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from gateway.demo.registry import build_registry

    if args.rows < 1:
        raise ConfigError("--rows must be at least 1")
    stats = build_registry(args.out, rows=args.rows, seed=args.seed)
    print(f"Wrote {args.out}: {stats}")
    return 0


def _cmd_keys_init(args: argparse.Namespace) -> int:
    from gateway.settings import settings_for
    from keys import ensure_master_key

    settings = settings_for(args.data_dir, args.config)
    master, created = ensure_master_key(settings.master_key_path)
    state = "created" if created else "exists"
    print(f"master key {state}: {settings.master_key_path} (key id {master.key_id})")
    return 0


def _cmd_agreements_risk(args: argparse.Namespace) -> int:
    import datetime as dt

    from gateway.db import create_gateway_engine, init_schema
    from gateway.keystore import SqlKeyStore
    from gateway.settings import settings_for
    from gateway.web.routes.risk import compute_risk
    from gateway.wiring import build_connector
    from keys import KeyRing, load_master_key
    from policies import load_agreements, load_catalog

    settings = settings_for(args.data_dir, args.config)
    agreements = load_agreements(settings.agreements_dir, load_catalog(settings.catalog_path))
    agreement = agreements.get(args.agreement_id)
    if agreement is None:
        raise ConfigError(f"no agreement {args.agreement_id!r} in {settings.agreements_dir} ({', '.join(agreements)})")
    engine = create_gateway_engine(settings.database_url)
    init_schema(engine)
    connector = build_connector(settings)
    try:
        ring = KeyRing(load_master_key(settings.master_key_path), SqlKeyStore(engine))
        report = compute_risk(connector, ring, agreement, today=dt.datetime.now(dt.UTC).date())
    finally:
        connector.close()
        engine.dispose()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def _schema_problems(path: Path) -> list[str]:
    from policies import PolicyError
    from policies.schema import schema_problems

    try:
        return [str(p) for p in schema_problems(path.read_text(encoding="utf-8"), str(path))]
    except (OSError, UnicodeDecodeError, PolicyError):
        return []  # unreadable or not YAML: the parser reports it with the reason


def _cmd_agreements_check(args: argparse.Namespace) -> int:
    from gateway.settings import settings_for
    from policies import PolicyError, load_agreement, load_catalog
    from policies.lint import lint_agreements

    catalog_path = args.catalog
    if catalog_path is None:
        catalog_path = settings_for(args.data_dir, args.config).catalog_path
    catalog = load_catalog(catalog_path)
    files: list[Path] = []
    for path in args.paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    loaded = []
    errors = 0
    for path in files:
        # The JSON Schema (shape, every problem at once) and the parser (catalog cross-checks) both judge the file.
        shape = _schema_problems(path)
        for problem in shape:
            print(f"error: {problem}")
        errors += len(shape)
        try:
            loaded.append(load_agreement(path, catalog))
            if not shape:
                print(f"ok: {path}")
        except PolicyError as exc:
            errors += 1
            print(f"error: {exc}")
    for agreement_id, findings in lint_agreements(loaded).items():
        source = next(a.source for a in loaded if a.id == agreement_id)
        for finding in findings:
            print(f"{finding.severity}: {source}: {finding.path}: {finding.message} [{finding.code}]")
            errors += finding.severity == "error"
    print(f"{len(files)} file(s), {errors} error(s)")
    return 1 if errors else 0


def _cmd_principals_add(args: argparse.Namespace) -> int:
    import getpass

    from gateway.audit.log import SqlDisclosureLog
    from gateway.audit.signer import LogSigner
    from gateway.auth import PrincipalStore
    from gateway.db import create_gateway_engine, init_schema
    from gateway.keystore import SqlKeyStore
    from gateway.settings import settings_for
    from keys import KeyRing, load_master_key, load_or_create_signing_key

    settings = settings_for(args.data_dir, args.config)
    engine = create_gateway_engine(settings.database_url)
    init_schema(engine)
    ring = KeyRing(load_master_key(settings.master_key_path), SqlKeyStore(engine))
    store = PrincipalStore(engine, ring.derive("server:api-keys", "api-key-hash").reveal())
    roles = {r.strip() for r in args.roles.split(",") if r.strip()}
    try:
        store.check(args.name, roles)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if any(p.name == args.name for p in store.list()):
        raise ConfigError(f"principal {args.name!r} already exists")
    # Logged before it exists, like a disclosure: a second admin or approver made on the host (to confirm one's own
    # dual-control request, say) is an entry compliance sees and `gateway log verify` authenticates. If the log
    # cannot be written, no principal is created.
    log = SqlDisclosureLog(engine, signer=LogSigner(load_or_create_signing_key(ring)), origin=settings.log_origin)
    try:
        log.append_event(
            {
                "type": "principal.created",
                "principal": args.name,
                "roles": sorted(roles),
                "by": f"operator:{getpass.getuser()}",
            }
        )
    finally:
        log.close()
    try:
        api_key = store.create(args.name, roles)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"principal {args.name} created with roles {', '.join(sorted(roles))}")
    print(f"API key (shown once, store it now): {api_key}")
    return 0


def _load_verifier(path: Path) -> LogVerifier:
    from gateway.audit.signer import LogVerifier

    try:
        return LogVerifier.from_pem(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the public key: {exc.strerror}") from exc
    except (ValueError, KeysError) as exc:
        raise ConfigError(f"{path}: not an Ed25519 public key in PEM form") from exc


def _cmd_log_verify(args: argparse.Namespace) -> int:
    from gateway.audit.verify import verify_log
    from gateway.db import create_gateway_engine
    from gateway.settings import settings_for

    settings = settings_for(args.data_dir, args.config)
    key_path = args.public_key or settings.log_public_key_path
    verifier = _load_verifier(key_path)
    engine = create_gateway_engine(settings.database_url)
    try:
        report = verify_log(engine, verifier)
        witness_problems, witness_notes = log_witness_checks(args, settings, engine)
        report.problems.extend(witness_problems)
        # The dashboard shows when the log was last verified and the result (gateway/web/ui).
        from gateway.web.ui.integrity import record_cli_verification

        recorded = record_cli_verification(engine, report)
    finally:
        engine.dispose()
    if not recorded:
        print("note: the result could not be recorded for the dashboard (database not writable)", file=sys.stderr)
    print(report.summary())
    for extra in report.problems[1:]:
        print(f"  also: {extra}")
    for note in witness_notes:
        print(f"  witnesses: {note}")
    return 0 if report.ok else 1


def _cmd_receipt_verify(args: argparse.Namespace) -> int:
    from gateway.audit.receipts import verify_receipt

    verifier = _load_verifier(args.public_key)
    try:
        receipt = json.loads(args.file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{args.file}: cannot read the receipt: {exc.strerror}") from exc
    except ValueError:
        print(f"receipt INVALID: {args.file} is not JSON")
        return 1
    if isinstance(receipt, dict) and receipt.get("format") == "dx-gateway-accounting-proof-v1":
        from gateway.cli.accounting import verify_accounting_document

        return verify_accounting_document(receipt, verifier, args.subject_hash)
    content = None
    if args.content is not None:
        try:
            content = args.content.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{args.content}: cannot read: {exc.strerror}") from exc
    report = verify_receipt(receipt, verifier, content=content, disclosure_id=args.disclosure_id)
    witness_problems, witnessed = receipt_cosignature_problems(args, receipt)
    report.problems.extend(witness_problems)
    if not report.ok:
        print(f"receipt INVALID: {report.problems[0]}")
        for extra in report.problems[1:]:
            print(f"  also: {extra}")
        return 1
    size = report.checkpoint.size if report.checkpoint is not None else "?"
    kinds = ", ".join(f"{e['type']} (index {e['index']})" for e in report.entries)
    print(
        f"receipt OK: disclosure {receipt['disclosure_id']} completed; {kinds} included in the log signed at size "
        f"{size}"
        + ("; content matches" if content is not None else "; content not checked (pass --content)")
        + witnessed
    )
    return 0


_COMMANDS = {
    "demo": _cmd_demo,
    "serve": _cmd_serve,
    "demo-data": _cmd_demo_data,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    from policies import PolicyError

    try:
        if args.command == "keys":
            return _cmd_keys_init(args) if args.keys_command == "init" else run_lifecycle_command(args)
        if args.command == "agreements":
            if args.agreements_command in LIFECYCLE_COMMANDS:
                return run_lifecycle_command(args)
            if args.agreements_command == EXPORT_COMMAND:
                return run_export_command(args)
            return _cmd_agreements_risk(args) if args.agreements_command == "risk" else _cmd_agreements_check(args)
        if args.command == "principals":
            return _cmd_principals_add(args)
        if args.command == "log":
            return cmd_log_vkey(args) if args.log_command == "vkey" else _cmd_log_verify(args)
        if args.command == "receipt":
            return _cmd_receipt_verify(args)
        if args.command == "witness":
            return run_witness_command(args)
        if args.command == "attribute":
            return run_attribute_command(args, _load_verifier)
        if args.command == "actions":
            return run_action_command(args)
        if args.command == "fetch":
            return run_fetch(args)
        return _COMMANDS[args.command](args)
    except (ConfigError, PolicyError, KeysError) as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
