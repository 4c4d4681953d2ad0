"""The ``gateway`` command line (a face: nothing in the gateway imports it)."""

from gateway.cli.main import main

__all__ = ["main"]
