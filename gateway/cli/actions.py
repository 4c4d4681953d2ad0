"""CLI of dual control (wired into ``gateway.cli.main``): request, confirm and list actions a second person confirms.

    gateway actions request ACTION [--agreement ID] [--reason TEXT]   agreement.revoke | agreement.resume |
                                                                      keys.rotate_master
    gateway actions confirm ID                                        a second, distinct principal; it runs
    gateway actions list

Unlike the other lifecycle commands (``--as NAME``), these prove who runs them: the principal's API key, from
``DXG_API_KEY`` (or ``--api-key``), is checked against the gateway database, so one person at a shell cannot both
request and confirm under two names without two people's keys. A confirmed ``keys.rotate_master`` is then run by the
operator with ``gateway keys rotate-master --action ID``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.auth import Principal
    from gateway.cli.agreements import Deployment

__all__ = ["add_action_commands", "run_action_command"]


def add_action_commands(sub: Any, deployment_args: Callable[[argparse.ArgumentParser], None]) -> None:
    actions = sub.add_parser("actions", help="actions under dual control (a second person confirms)")
    actions_sub = actions.add_subparsers(dest="actions_command", required=True)
    request = actions_sub.add_parser("request", help="request an action (admin); nothing runs until confirmed")
    request.add_argument("action", choices=["agreement.revoke", "agreement.resume", "keys.rotate_master"])
    request.add_argument("--agreement", default=None, help="the agreement id (agreement.* actions)")
    request.add_argument("--reason", default=None, help="why (goes into the disclosure log: no personal data)")
    confirm = actions_sub.add_parser("confirm", help="confirm a requested action as a second person; it runs")
    confirm.add_argument("action_id")
    listing = actions_sub.add_parser("list", help="requested actions and their states")
    for parser in (request, confirm, listing):
        parser.add_argument("--api-key", default=None, help="your API key (default: $DXG_API_KEY)")
        deployment_args(parser)


def _who(d: Deployment, args: argparse.Namespace) -> Principal:
    from gateway.cli.agreements import Usage

    key = args.api_key or os.environ.get("DXG_API_KEY")
    if not key:
        raise Usage("dual control needs your API key: set DXG_API_KEY (or pass --api-key)")
    principal = d.principals().authenticate(key)
    if principal is None:
        raise Usage("the API key is not valid (unknown, revoked, or its principal is disabled)")
    return principal


def _print(item: dict[str, Any]) -> None:
    target = f" on {item['agreement_id']}" if item["agreement_id"] else ""
    confirmed = f", confirmed by {item['confirmed_by']}" if item["confirmed_by"] else ""
    print(
        f"{item['id']} {item['action']}{target}: {item['state']} (requested by {item['requested_by']}{confirmed}; "
        f"expires {item['expires_at']})"
    )


def run_action_command(args: argparse.Namespace) -> int:
    from gateway.agreements.actions import DualControl, describe
    from gateway.cli.agreements import Usage, open_deployment
    from gateway.errors import GatewayError

    try:
        with open_deployment(args) as d:
            control = DualControl(d.engine, d.log, d.lifecycle)
            who = _who(d, args)
            if args.actions_command == "list":
                if not who.roles & {"admin", "approver", "compliance"}:
                    raise Usage("listing actions needs the role compliance, admin or approver")
                now = control.now()
                for item in control.list():
                    _print(describe(item, now))
                return 0
            if args.actions_command == "request":
                pending = control.request(args.action, by=who, target=args.agreement, reason=args.reason)
                _print(describe(pending))
                print(f"  next: a second person runs `gateway actions confirm {pending.id}` with their own API key")
                return 0
            done, _changed = control.confirm(args.action_id, by=who)
            _print(describe(done))
            if done.action == "keys.rotate_master":
                print(f"  next: the operator runs `gateway keys rotate-master --action {done.id}`")
            return 0
    except Usage as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"gateway: error: {exc.detail}", file=sys.stderr)
        return 1
