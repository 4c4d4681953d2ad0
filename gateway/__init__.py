"""The imperative shell of the data exchange gateway: everything that does I/O around the pure packages.

Sub-packages, from the faces down (the import rule of docs/design.md §2, enforced by ``make lint``): ``cli``;
``web`` and ``demo``; ``release`` and ``wiring``; ``services``; ``agreements`` and ``controls``; ``audit``,
``connectors``, ``auth``, ``keystore``, ``keysource``; ``db``; ``settings``, ``errors``, ``applog``.
"""
