"""``gateway fetch AGREEMENT --out FILE``: the requester's download, proven against the signed log (gateway.client).

Exit 0 when the receipt verifies and the bytes are the logged ones (the file is then in place); 1 when the gateway
refuses (its problem title and detail are shown) or any check fails (nothing is kept at FILE); 2 for a usage error
(no API key, --filters not a JSON object).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway.client import DEFAULT_URL, FetchError, Progress, fetch
from gateway.errors import ConfigError

__all__ = ["add_fetch_command", "run_fetch"]


def add_fetch_command(sub: Any) -> None:
    p = sub.add_parser("fetch", help="download an extract and verify it against the signed disclosure log")
    p.add_argument("agreement")
    p.add_argument("--out", type=Path, required=True, help="where the extract goes (only if everything verifies)")
    p.add_argument("--url", default=None, help=f"the gateway (default: $DXG_URL, else {DEFAULT_URL})")
    p.add_argument("--api-key", default=None, help="your API key (default: $DXG_API_KEY)")
    p.add_argument("--filters", default=None, help='JSON object, e.g. \'{"status": {"eq": "enrolled"}}\'')
    p.add_argument("--fields", nargs="+", default=None, help="released fields to ask for (default: all)")
    p.add_argument("--format", choices=("ndjson", "csv", "parquet"), default="ndjson")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument(
        "--public-key", type=Path, default=None, help="pin the log's public key (log.pub) instead of asking the gateway"
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _progress(quiet: bool) -> Progress | None:
    if quiet or not sys.stderr.isatty():
        return None

    def show(nbytes: int, rows: int | None) -> None:
        what = f"{nbytes / 1_048_576:8.1f} MiB" + (f", {rows:,} rows" if rows is not None else "")
        print(f"\rreceiving: {what}", end="", file=sys.stderr, flush=True)

    return show


def run_fetch(args: argparse.Namespace) -> int:
    api_key = args.api_key or os.environ.get("DXG_API_KEY")
    if not api_key:
        raise ConfigError("no API key: pass --api-key or set DXG_API_KEY")
    filters = None
    if args.filters is not None:
        try:
            filters = json.loads(args.filters)
        except ValueError as exc:
            raise ConfigError("--filters is not JSON") from exc
        if not isinstance(filters, dict):
            raise ConfigError('--filters must be a JSON object such as {"status": {"eq": "enrolled"}}')
    progress = _progress(args.quiet)
    try:
        result = fetch(
            args.agreement,
            args.out,
            api_key=api_key,
            url=args.url or os.environ.get("DXG_URL") or DEFAULT_URL,
            filters=filters,
            fields=args.fields,
            format=args.format,
            limit=args.limit,
            public_key=args.public_key,
            progress=progress,
        )
    except FetchError as exc:
        if progress is not None:
            print(file=sys.stderr)
        print(f"fetch FAILED ({exc.check} check): {exc}", file=sys.stderr)
        print(f"nothing was written to {args.out}", file=sys.stderr)
        return 1
    if progress is not None:
        print(file=sys.stderr)
    print("fetch OK: " + result.statement())
    return 0
