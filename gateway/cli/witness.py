"""``gateway witness ...``: an independent C2SP tlog witness (wired into ``gateway.cli.main``).

    gateway witness init --state DIR --name NAME        create its key (0600) and state; prints its vkey
    gateway witness vkey --state DIR                     print its vkey (give it to the gateway's operator)
    gateway witness serve --state DIR --log-vkey VKEY... [--host H --port P]

The witness needs nothing of the gateway but the log's vkey (``gateway log vkey``, ``GET /v1/log/vkey``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_witness_commands", "run_witness_command"]


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

    from gateway.witness.server import witness_app

    state = WitnessState(args.state, parse_log_vkeys(args.log_vkey))
    print(f"witness {state.name} serving on http://{args.host}:{args.port}/add-checkpoint", flush=True)
    try:
        uvicorn.run(witness_app(state), host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        state.close()
    return 0
