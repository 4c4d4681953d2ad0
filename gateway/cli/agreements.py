"""CLI commands of the agreement lifecycle and of key rotation (wired into ``gateway.cli.main``).

    gateway agreements apply FILE... [--as ADMIN]          new draft versions (four eyes: someone else approves)
    gateway agreements approve ID --version V --as APPROVER  measures the risk; refused above the catalog threshold
    gateway agreements accept-risk ID --version V --as APPROVER --reason TEXT   (two distinct approvers needed)
    gateway agreements state ID suspended|active|revoked --as ADMIN [--reason TEXT]
    gateway agreements versions ID                         versions and their states
    gateway agreements schema                              the JSON Schema of agreement files
    gateway keys rotate OWNER                              new key version (agreement:<id> or domain:<name>)
    gateway keys rotate-master                             new master key; every wrapped key re-wrapped

Heavy imports happen inside the commands, so ``gateway --help`` stays fast. Errors print one line (plus the list of
problems, if any) and exit 1; they never print key material.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from gateway.agreements.lifecycle import AgreementLifecycle
    from gateway.audit.log import SqlDisclosureLog
    from gateway.auth import Principal, PrincipalStore
    from gateway.settings import Settings
    from keys import KeyRing

__all__ = [
    "LIFECYCLE_COMMANDS",
    "Deployment",
    "Usage",
    "add_lifecycle_commands",
    "open_deployment",
    "run_lifecycle_command",
]

LIFECYCLE_COMMANDS = frozenset({"apply", "approve", "accept-risk", "state", "versions", "schema"})
_ROTATABLE = re.compile(r"^(agreement|domain):[a-z0-9][a-z0-9_.-]{0,63}$")


def add_lifecycle_commands(
    agreements_sub: Any, keys_sub: Any, deployment_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    apply = agreements_sub.add_parser("apply", help="store agreement files as new draft versions (admin)")
    apply.add_argument("files", nargs="+", type=Path)
    apply.add_argument("--as", dest="principal", default=None, help="the admin applying them (default: the only one)")
    deployment_args(apply)

    approve = agreements_sub.add_parser("approve", help="approve a draft version (an approver other than its author)")
    approve.add_argument("agreement_id")
    approve.add_argument("--version", type=int, required=True)
    approve.add_argument("--as", dest="principal", required=True, help="the approving principal")
    deployment_args(approve)

    accept = agreements_sub.add_parser(
        "accept-risk",
        help="accept a draft's measured re-identification risk above the catalog threshold (two approvers needed)",
    )
    accept.add_argument("agreement_id")
    accept.add_argument("--version", type=int, required=True)
    accept.add_argument("--as", dest="principal", required=True, help="the accepting approver")
    accept.add_argument("--reason", required=True, help="why the risk is acceptable (logged: no personal data)")
    deployment_args(accept)

    state = agreements_sub.add_parser(
        "state", help="suspend an agreement (admin); resuming and revoking need a second person (gateway actions)"
    )
    state.add_argument("agreement_id")
    state.add_argument("state", choices=["suspended", "active", "revoked"])
    state.add_argument("--as", dest="principal", default=None, help="the admin (default: the only one)")
    state.add_argument("--reason", default=None, help="why (goes into the disclosure log: no personal data)")
    deployment_args(state)

    versions = agreements_sub.add_parser("versions", help="list the versions of an agreement and their states")
    versions.add_argument("agreement_id")
    deployment_args(versions)

    agreements_sub.add_parser("schema", help="print the JSON Schema of agreement files")

    rotate = keys_sub.add_parser("rotate", help="add a key version for agreement:<id> or domain:<name> (tokens change)")
    rotate.add_argument("owner")
    deployment_args(rotate)
    master = keys_sub.add_parser(
        "rotate-master", help="new master key file; every wrapped key re-wrapped (stop the gateway first)"
    )
    master.add_argument(
        "--action", default=None, help="the confirmed request (gateway actions request keys.rotate_master)"
    )
    deployment_args(master)


@dataclass
class Deployment:
    settings: Settings
    engine: Engine
    ring: KeyRing
    log: SqlDisclosureLog
    lifecycle: AgreementLifecycle

    def principals(self) -> PrincipalStore:
        from gateway.auth import PrincipalStore

        return PrincipalStore(self.engine, self.ring.derive("server:api-keys", "api-key-hash").reveal())

    def principal(self, name: str | None, role: str) -> Principal:
        known = self.principals().list()
        if name is None:
            candidates = [p for p in known if p.has(role)]
            if len(candidates) != 1:
                raise Usage(f"name the {role} with --as (principals with that role: {len(candidates)})")
            return candidates[0]
        for principal in known:
            if principal.name == name:
                return principal
        raise Usage(f"there is no principal {name!r}; `gateway principals add` creates one")


class Usage(Exception):
    """A command used wrongly: one line on stderr, exit 2."""


@contextmanager
def open_deployment(args: argparse.Namespace) -> Iterator[Deployment]:
    import datetime as dt

    from gateway.agreements.lifecycle import AgreementLifecycle
    from gateway.agreements.risk import risk_meter
    from gateway.agreements.store import AgreementRegistry, AgreementStore
    from gateway.audit.log import SqlDisclosureLog
    from gateway.audit.signer import LogSigner
    from gateway.db import create_gateway_engine, init_schema
    from gateway.keystore import SqlKeyStore
    from gateway.settings import settings_for
    from gateway.wiring import build_connector
    from keys import KeyRing, load_master_key, load_or_create_signing_key
    from policies import load_catalog

    settings = settings_for(args.data_dir, args.config)
    catalog = load_catalog(settings.catalog_path)
    engine = create_gateway_engine(settings.database_url)
    try:
        init_schema(engine)
        ring = KeyRing(load_master_key(settings.master_key_path), SqlKeyStore(engine))
        log = SqlDisclosureLog(engine, signer=LogSigner(load_or_create_signing_key(ring)), origin=settings.log_origin)
        # Approval measures the version's risk on the registry (connections are opened only when used).
        connector = build_connector(settings)
        try:
            meter = risk_meter(connector, ring, lambda: dt.datetime.now(dt.UTC).date())
            registry = AgreementRegistry(AgreementStore(engine), catalog)
            lifecycle = AgreementLifecycle(registry, log, ring, risk=meter)
            yield Deployment(settings, engine, ring, log, lifecycle)
        finally:
            connector.close()
            log.close()
    finally:
        engine.dispose()


def _print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _apply(d: Deployment, args: argparse.Namespace) -> int:
    author = d.principal(args.principal, "admin")
    failures = 0
    for path in args.files:
        from gateway.errors import GatewayError

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: {path}: cannot read it ({type(exc).__name__})", file=sys.stderr)
            failures += 1
            continue
        try:
            result = d.lifecycle.apply(text, author=author, source=str(path))
        except GatewayError as exc:
            print(f"error: {path}: {exc.detail}", file=sys.stderr)
            _print_problems(getattr(exc, "problems", []))
            failures += 1
            continue
        v = result.version
        what = "stored as draft" if result.created else f"already stored ({v.state})"
        print(f"{path}: {v.agreement_id} v{v.version} {what}, digest {v.digest}")
        for finding in result.findings:
            print(f"  {finding}")
        if v.state == "draft":
            print(f"  next: gateway agreements approve {v.agreement_id} --version {v.version} --as <approver>")
    return 1 if failures else 0


def _print_risk(risk: dict[str, Any], out: Any = None) -> None:
    """The measured risk, counts and ratios only (never a value or a class)."""
    out = out or sys.stdout
    where = "after k-anonymity" if risk["measured_on"] == "after_k_anonymity" else "in the agreement's scope"
    threshold = risk["threshold"]
    print(
        f"  risk {where}: {risk['records']} records, smallest class {risk['smallest_class']}, "
        f"{risk['unique_records']} unique ({risk['unique_share']:.2%}), prosecutor risk max "
        f"{risk['prosecutor_risk_max']:.4g}, journalist risk max {risk['journalist_risk_max']:.4g}",
        file=out,
    )
    binding = "" if risk["binding"] else " (not binding: identified or table-only release)"
    print(
        f"  catalog threshold: prosecutor risk <= {threshold['max_prosecutor_risk']}, at most "
        f"{threshold['max_unique_records']} unique record(s){binding}",
        file=out,
    )


def _approve(d: Deployment, args: argparse.Namespace) -> int:
    from gateway.agreements.lifecycle import RiskRefusedError

    approver = d.principal(args.principal, "approver")
    try:
        result = d.lifecycle.approve_measured(args.agreement_id, args.version, approver=approver)
    except RiskRefusedError as exc:
        print(f"gateway: error: {exc.detail}", file=sys.stderr)
        _print_risk(exc.risk, sys.stderr)
        print(
            f"  to approve anyway: gateway agreements accept-risk {args.agreement_id} --version {args.version} "
            "--as <approver> --reason <why>, by two different approvers, then approve again",
            file=sys.stderr,
        )
        return 1
    v = result.version
    print(f"{v.agreement_id} v{v.version} approved by {v.approved_by}; now {v.state}")
    if result.risk is not None:
        _print_risk(result.risk.describe())
    if result.acceptances:
        print(f"  risk accepted by: {', '.join(a.approver for a in result.acceptances)}")
    return 0


def _accept_risk(d: Deployment, args: argparse.Namespace) -> int:
    approver = d.principal(args.principal, "approver")
    accepted = d.lifecycle.accept_risk(args.agreement_id, args.version, approver=approver, reason=args.reason)
    names = ", ".join(a.approver for a in accepted)
    print(f"{args.agreement_id} v{args.version}: risk accepted by {names} ({len(accepted)} of 2 needed)")
    return 0


def _state(d: Deployment, args: argparse.Namespace) -> int:
    from gateway.agreements.actions import STATE_ACTIONS

    admin = d.principal(args.principal, "admin")
    if args.state in STATE_ACTIONS:
        d.lifecycle.plan_state(args.agreement_id, args.state)  # a change that cannot be made is refused now
        action = STATE_ACTIONS[args.state]
        raise Usage(
            f"{action} needs a second person: `gateway actions request {action} --agreement {args.agreement_id}` "
            "with your API key (DXG_API_KEY), then `gateway actions confirm ID` with another person's"
        )
    v = d.lifecycle.set_state(args.agreement_id, args.state, by=admin, reason=args.reason)
    print(f"{v.agreement_id} v{v.version} is now {v.state}")
    if v.state == "revoked":
        print("  its keys were destroyed: its tokens can no longer be linked or reversed by anyone")
    return 0


def _versions(d: Deployment, args: argparse.Namespace) -> int:
    versions = d.lifecycle.versions(args.agreement_id)
    if not versions:
        raise Usage(f"there is no agreement {args.agreement_id!r} in the database")
    for v in versions:
        approved = f", approved by {v.approved_by}" if v.approved_by else ""
        print(f"v{v.version} {v.state:<10} by {v.author}{approved} {v.digest}")
    return 0


def _rotate(d: Deployment, args: argparse.Namespace) -> int:
    owner = args.owner
    if not _ROTATABLE.match(owner):
        raise Usage("only agreement:<id> and domain:<name> keys are rotated this way")
    if not d.ring.versions(owner):
        destroyed = d.ring.store.is_destroyed(owner)
        raise Usage(
            f"{owner} was destroyed; it has no key to rotate"
            if destroyed
            else f"{owner} has no key yet (keys are made at first use): nothing to rotate"
        )
    version = d.ring.rotate(owner)
    d.log.append_event({"type": "keys.rotated", "owner": owner, "version": version, "by": "cli"})
    print(f"{owner}: key version {version} is now current.")
    print(
        "  Tokens and date shifts made from now on differ from earlier ones: records released before and after the "
        "rotation do not link (re-identification, under dual control, still reverses both)."
    )
    return 0


def _rotate_master(args: argparse.Namespace) -> int:
    from gateway.agreements.actions import DualControl
    from gateway.audit.log import SqlDisclosureLog
    from gateway.audit.signer import LogSigner
    from gateway.db import create_gateway_engine, init_schema
    from gateway.keystore import SqlKeyStore
    from gateway.settings import settings_for
    from keys import KeyRing, load_or_create_signing_key
    from keys.rotation import rotate_master_key_file

    if not args.action:
        raise Usage(
            "rotating the master key needs a second person: `gateway actions request keys.rotate_master`, confirmed "
            "with `gateway actions confirm ID` by another, then run this with --action ID"
        )
    settings = settings_for(args.data_dir, args.config)
    engine = create_gateway_engine(settings.database_url)
    try:
        init_schema(engine)
        store = SqlKeyStore(engine)
        # Claimed once (confirmed -> executed) before anything changes: the same confirmation cannot run it twice.
        control = DualControl(engine, log=None, lifecycle=None)  # claim() writes no entry; the rotation's entry does
        claimed = control.claim(args.action, "keys.rotate_master")
        try:
            done = rotate_master_key_file(settings.master_key_path, store.rewrap_all)
        except BaseException:
            control.unclaim(claimed.id)
            raise
        # The log's signing key is one of the re-wrapped keys: the entry is signed into the log under the new master.
        from keys import load_master_key

        ring = KeyRing(load_master_key(settings.master_key_path), store)
        log = SqlDisclosureLog(engine, signer=LogSigner(load_or_create_signing_key(ring)), origin=settings.log_origin)
        try:
            log.append_event(
                {
                    "type": "keys.master_rotated",
                    "old_key_id": done.old_key_id,
                    "new_key_id": done.new_key_id,
                    "rewrapped": done.rewrapped,
                    "dual_control": {
                        "action_id": claimed.id,
                        "requested_by": claimed.requested_by,
                        "confirmed_by": claimed.confirmed_by,
                    },
                }
            )
        finally:
            log.close()
    finally:
        engine.dispose()
    resumed = " (resumed an unfinished rotation)" if done.resumed else ""
    print(f"master key rotated{resumed}: {done.old_key_id} -> {done.new_key_id}; {done.rewrapped} key(s) re-wrapped")
    print(f"  the old key file is kept as {done.backup} (0600): keep it until a backup taken after now exists")
    return 0


def run_lifecycle_command(args: argparse.Namespace) -> int:
    from gateway.errors import GatewayError

    command = args.agreements_command if args.command == "agreements" else args.keys_command
    try:
        if command == "schema":
            import json

            from policies.schema import agreement_schema

            print(json.dumps(agreement_schema(), indent=2, ensure_ascii=False))
            return 0
        if command == "rotate-master":
            return _rotate_master(args)
        handlers = {
            "apply": _apply,
            "approve": _approve,
            "accept-risk": _accept_risk,
            "state": _state,
            "versions": _versions,
            "rotate": _rotate,
        }
        with open_deployment(args) as deployment:
            return handlers[command](deployment, args)
    except Usage as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"gateway: error: {exc.detail}", file=sys.stderr)
        _print_problems(getattr(exc, "problems", []))
        return 1
