"""``gateway agreements export-odrl PATH``: an agreement file as the ODRL 2.2 policy GET /v1/agreements/{id} serves.

Reads the file against the catalog (the deployment's, or ``--catalog``), like ``agreements check``; a file that does
not load fails with its file, line, path and reason (exit 2, from main). Prints the JSON-LD on stdout.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

__all__ = ["EXPORT_COMMAND", "add_export_command", "run_export_command"]

EXPORT_COMMAND = "export-odrl"


def add_export_command(
    agreements_sub: argparse._SubParsersAction[argparse.ArgumentParser],
    deployment_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    export = agreements_sub.add_parser(EXPORT_COMMAND, help="print an agreement file as an ODRL 2.2 policy (JSON-LD)")
    export.add_argument("path", type=Path, help="an agreement YAML file")
    export.add_argument("--catalog", type=Path, default=None, help="catalog file (default: the deployment's)")
    deployment_args(export)


def run_export_command(args: argparse.Namespace) -> int:
    from gateway.settings import settings_for
    from policies import load_agreement, load_catalog
    from policies.odrl import to_odrl

    catalog_path = args.catalog or settings_for(args.data_dir, args.config).catalog_path
    agreement = load_agreement(args.path, load_catalog(catalog_path))
    print(json.dumps(to_odrl(agreement), indent=2, ensure_ascii=False))
    return 0
