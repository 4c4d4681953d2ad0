"""The HTTP face: the Starlette app (``app.create_app``, ``asgi.create`` for uvicorn), RFC 9457 problems, the API
routes (``routes``), the compliance dashboard (``ui``) and the OpenAPI document (``openapi``). Routes parse and plan;
the release pipeline (``gateway.release``) does the disclosing. Nothing is imported here, so that importing one
route does not build the whole app."""
