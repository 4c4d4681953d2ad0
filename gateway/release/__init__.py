"""Releasing registry data: the one pipeline every disclosure goes through, free of any web framework.

- :mod:`~gateway.release.prepare`: quotas, redaction setup, k-anonymity, compiled transforms (nothing logged yet);
- :mod:`~gateway.release.terms`: who asks, under which agreement version; the write-ahead entry;
- :mod:`~gateway.release.stream`: extracts, streamed batch by batch (subjects indexed before each batch leaves);
- :mod:`~gateway.release.single`: one record or one claim check, buffered;
- :mod:`~gateway.release.buffered`: previews, re-identification answers, aggregate tables.

Each runs one :class:`gateway.audit.session.DisclosureSession`: write-ahead entry before the registry is read,
subjects indexed before bytes leave, exactly one final entry.
"""

from __future__ import annotations

from gateway.release.buffered import Produced, buffered_disclosure
from gateway.release.logged import plan_for_log
from gateway.release.prepare import DuplicateSubjectError, KAnonymityRefusedError, Row, k_anonymity_for
from gateway.release.single import NOT_FOUND_DETAIL, SingleRender, release_one
from gateway.release.stream import GROUP_ROWS, MEDIA_TYPES, Release, release_rows
from gateway.release.terms import AgreementTerms, Requester

__all__ = [
    "GROUP_ROWS",
    "MEDIA_TYPES",
    "NOT_FOUND_DETAIL",
    "AgreementTerms",
    "DuplicateSubjectError",
    "KAnonymityRefusedError",
    "Produced",
    "Release",
    "Requester",
    "Row",
    "SingleRender",
    "buffered_disclosure",
    "k_anonymity_for",
    "plan_for_log",
    "release_one",
    "release_rows",
]
