"""Pydantic models of the HTTP API's JSON bodies: the source of ``components/schemas`` in /openapi.json.

They live in ``gateway.web`` because they are the web face's contract (the CLI and the services never see them), one
module per area, named like the route modules they serve: ``ops`` (problems, readiness), ``releases`` (extract,
aggregate, verify, risk, the agreement list), ``compliance`` (disclosure log, receipts, the log's public face) and
``lifecycle`` (agreement governance, re-identification).

Request models check the envelope of a body (a JSON object, which keys, which are required, plain types where the
route has no finer rule) and are validated with :func:`gateway.web.models.base.parse_body`; what a value means under
an agreement (fields, filters, tokens, measures) stays with the domain (``policies``, ``transforms``,
``gateway.controls``), so their schemas may say more than the model enforces (``WithJsonSchema``). Response models
only describe: the routes build their bodies as before, and schemathesis checks every response against these schemas
(tests/reliability/test_schemathesis.py).
"""
