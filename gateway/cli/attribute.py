"""``gateway attribute``: name the disclosures a leaked (possibly modified) file came from; verify a statement.

    gateway attribute FILE [--data-dir DIR | --config FILE] [--format auto|ndjson|csv|xlsx|parquet]
                      [--requested-by NAME] [--reason TEXT] [--statement OUT] [--json]
    gateway attribute verify STATEMENT --public-key FILE [--content FILE]

The first runs on the deployment with its master key (an operator acting for a compliance officer: the key ring
recomputes tokens) and logs an ``attribution.completed`` event before it prints anything; exit 0 whether or not a
disclosure is named ("no disclosure"). The second needs only the log's public key; exit 1 if anything does not
verify. Neither prints an identifier or a cell of the file.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

__all__ = ["add_attribute_command", "run_attribute_command"]


def add_attribute_command(sub: Any, deployment_args: Callable[[argparse.ArgumentParser], None]) -> None:
    attribute = sub.add_parser(
        "attribute",
        help="name the disclosures a leaked file came from (or: attribute verify STATEMENT --public-key FILE)",
    )
    attribute.add_argument("target", nargs="+", help="FILE, or: verify STATEMENT")
    deployment_args(attribute)
    attribute.add_argument("--format", default="auto", choices=["auto", "ndjson", "csv", "xlsx", "parquet"])
    attribute.add_argument("--requested-by", default=None, help="who asks (logged; default: operator:<login>)")
    attribute.add_argument("--reason", default=None, help="case reference (logged: no personal data)")
    attribute.add_argument("--statement", type=Path, default=None, help="write the signed statement here (JSON)")
    attribute.add_argument("--json", action="store_true", help="print the full report as JSON")
    attribute.add_argument("--public-key", type=Path, default=None, help="verify: the log's public key (log.pub)")
    attribute.add_argument("--content", type=Path, default=None, help="verify: the leaked file, to check its digest")


def _operator() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a container
        return "operator"


def _print_report(report: dict[str, Any], index: int) -> None:
    f = report["file"]
    print(f"file: {f['format']}, {f['rows']} row(s), {f['columns']} column(s), sha256 {f['sha256']}")
    for group in report["agreements"]:
        print(f"agreement {group['agreement']} ({group['evidence']} evidence): {group['explanation']}")
        for column in group["columns"]:
            domain = f", domain {column['linkage_domain']}" if "linkage_domain" in column else ""
            print(
                f"  column {column['column']}: {column['field']} ({column['operator']}{domain}, {column['strength']}): "
                f"{column['matching_cells']} of {column['filled_cells']} cells"
            )
        for c in group["candidates"]:
            print(
                f"  {c['role']:>7} disclosure {c['disclosure']}: {c['released_subjects']} of {group['subjects']} "
                f"subjects (coverage {c['coverage']}), v{c['agreement_version']}, recipient {c['recipient']}, "
                f"approved by {c['approved_by']}, {c['started_at']}, {c['status']}, {c['rows']} rows"
            )
    for finding in report["findings"]:
        print(f"finding: {finding}")
    if report["disclosures"]:
        print(f"attributed to {len(report['disclosures'])} disclosure(s): {', '.join(report['disclosures'])}")
    else:
        print("no disclosure: nothing in this file was recognised as released by a logged disclosure")
    print(f"logged as attribution event at log index {index}")


def _load_agreements(engine: Any, catalog: Any) -> dict[str, Any]:
    """Per agreement id, its latest version that was ever approved (any state now: a revoked agreement's releases
    still count). Token keys belong to the agreement id or domain, not the version."""
    from gateway.agreements.store import DRAFT, AgreementRegistry, AgreementStore
    from policies import PolicyError

    store = AgreementStore(engine)
    registry = AgreementRegistry(store, catalog)
    latest: dict[str, Any] = {}
    for version in store.all_versions():
        if version.state == DRAFT or version.approved_by is None:
            continue
        if version.agreement_id not in latest or version.version > latest[version.agreement_id].version:
            latest[version.agreement_id] = version
    out = {}
    for agreement_id, version in sorted(latest.items()):
        try:
            out[agreement_id] = registry.parse(version)
        except PolicyError as exc:
            print(f"note: agreement {agreement_id} v{version.version} skipped: {exc}", file=sys.stderr)
    return out


def _attribute(args: argparse.Namespace, path: Path) -> int:
    import datetime as dt

    from gateway.audit.log import SqlDisclosureLog
    from gateway.audit.reader import LogReader
    from gateway.audit.signer import LogSigner
    from gateway.controls.attribution import attribute, record_attribution
    from gateway.controls.leaks import read_leak
    from gateway.db import create_gateway_engine
    from gateway.keystore import SqlKeyStore
    from gateway.settings import settings_for
    from gateway.wiring import build_connector
    from keys import KeyRing, load_master_key, load_or_create_signing_key
    from policies import load_catalog

    table, fmt = read_leak(path, args.format)
    data = path.read_bytes()
    settings = settings_for(args.data_dir, args.config)
    catalog = load_catalog(settings.catalog_path)
    engine = create_gateway_engine(settings.database_url)
    try:
        ring = KeyRing(load_master_key(settings.master_key_path), SqlKeyStore(engine))
        connector = build_connector(settings)
        log = SqlDisclosureLog(engine, signer=LogSigner(load_or_create_signing_key(ring)), origin=settings.log_origin)
        try:
            result = attribute(
                table,
                data,
                fmt=fmt,
                agreements=_load_agreements(engine, catalog),
                connector=connector,
                keyring=ring,
                engine=engine,
                today=dt.datetime.now(dt.UTC).date(),
            )
            index, statement = record_attribution(
                log, LogReader(engine), result, requested_by=args.requested_by or _operator(), reason=args.reason
            )
        finally:
            connector.close()
            log.close()
    finally:
        engine.dispose()
    if args.statement is not None and statement is not None:
        args.statement.write_text(json.dumps(statement, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps({"log_index": index, **result.report}, indent=2, ensure_ascii=False))
    else:
        _print_report(result.report, index)
        if args.statement is not None:
            print(f"signed statement: {args.statement}")
    return 0


def _verify(args: argparse.Namespace, path: Path, load_verifier: Callable[[Path], Any]) -> int:
    from gateway.audit.attribution import verify_statement

    if args.public_key is None:
        raise ConfigError("attribute verify needs --public-key FILE (the log's public key)")
    verifier = load_verifier(args.public_key)
    try:
        statement = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the statement: {exc.strerror}") from exc
    except ValueError:
        print(f"statement INVALID: {path} is not JSON")
        return 1
    content = None
    if args.content is not None:
        try:
            content = args.content.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{args.content}: cannot read: {exc.strerror}") from exc
    report = verify_statement(statement, verifier, content=content)
    if not report.ok or report.event is None:
        print(f"statement INVALID: {report.problems[0] if report.problems else 'no event'}")
        for extra in report.problems[1:]:
            print(f"  also: {extra}")
        return 1
    event = report.event
    result = event.get("result", {})
    size = report.checkpoint.size if report.checkpoint is not None else "?"
    print(
        f"statement OK: attribution by {event.get('requested_by')} at {event.get('time')} (log index "
        f"{event.get('index')}, signed at size {size}) of file sha256 {event.get('file', {}).get('sha256')}: "
        f"{result.get('verdict')}" + ("; file matches" if content is not None else "")
    )
    for disclosure_id, d in sorted(report.disclosures.items()):
        agreement = d.get("agreement") or {}
        print(
            f"  disclosure {disclosure_id}: recipient {d.get('recipient')}, agreement {agreement.get('id')} "
            f"v{agreement.get('version')}, approved by {d.get('approved_by')}, {d.get('time')}, {d.get('status')}, "
            f"{d.get('rows')} rows"
        )
    return 0


def run_attribute_command(args: argparse.Namespace, load_verifier: Callable[[Path], Any]) -> int:
    from gateway.errors import GatewayError

    target = list(args.target)
    if target[0] == "verify" and len(target) == 2:
        return _verify(args, Path(target[1]), load_verifier)
    if len(target) != 1:
        raise ConfigError("usage: gateway attribute FILE | gateway attribute verify STATEMENT --public-key FILE")
    try:
        return _attribute(args, Path(target[0]))
    except GatewayError as exc:
        # The log or the registry is down: no attribution without its log entry (details never carry values).
        raise ConfigError(f"attribution not done: {exc.detail}") from exc
