"""Content negotiation on ``Accept`` (RFC 9110 section 12.5.1): which of the media types a resource is offered in the
client prefers.

Quality values decide; among equal qualities the more specific range (``application/ld+json`` over ``*/*``) wins,
then the order the resource offers them in. No header, or an empty one, accepts anything. Nothing matching, or only
with ``q=0``, is 406 (problem+json).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import NotAcceptableError

__all__ = ["negotiate"]

#: an Accept header longer than this is cut here: no client needs more ranges, and parsing stays bounded
_MAX_RANGES = 32


def _ranges(header: str) -> list[tuple[str, str, float]]:
    found = []
    for item in header.split(",")[:_MAX_RANGES]:
        media, *params = (part.strip() for part in item.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue  # not a media range: ignored, like a range of a type nobody offers
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0  # a malformed weight accepts nothing rather than everything
                if not 0.0 <= quality <= 1.0:
                    quality = 0.0
        found.append((kind, sub, quality))
    return found


def _match(offered: str, ranges: list[tuple[str, str, float]]) -> tuple[float, int]:
    """Quality and specificity of the most specific range matching ``offered`` ((0, 0) when none does)."""
    kind, _, sub = offered.partition("/")
    best = (0.0, 0)
    best_specificity = -1
    for r_kind, r_sub, quality in ranges:
        if (r_kind, r_sub) == (kind, sub):
            specificity = 3
        elif r_kind == kind and r_sub == "*":
            specificity = 2
        elif (r_kind, r_sub) == ("*", "*"):
            specificity = 1
        else:
            continue
        if specificity > best_specificity:
            best, best_specificity = (quality, specificity), specificity
    return best


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The media type of ``offered`` that ``accept`` prefers; NotAcceptableError when it accepts none of them."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _ranges(accept)
    scored = [(_match(media, ranges), -i, media) for i, media in enumerate(offered)]
    (quality, _), _, media = max(scored)
    if quality <= 0.0:
        raise NotAcceptableError(f"this resource is offered as {' or '.join(offered)}; send Accept with one of them")
    return media
