"""An independent C2SP tlog witness (``gateway witness ...``): its own key, its own state, no gateway database.

- :mod:`~gateway.witness.state`: the witness's key file and its durable per-log state (SQLite), with the
  serialized check-and-update that ``add-checkpoint`` needs.
- :mod:`~gateway.witness.server`: the HTTP face (``POST /add-checkpoint``), a small Starlette app.

Run by someone other than the gateway's operator (e.g. the supervising education authority), it cosigns a
checkpoint only if it extends the last one it cosigned, so a log cut back or forked after the fact is refused.
"""

from __future__ import annotations

from gateway.witness.state import WitnessRefusal, WitnessState, init_witness

__all__ = ["WitnessRefusal", "WitnessState", "init_witness"]
