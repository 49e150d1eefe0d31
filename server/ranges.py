"""Parsing of the HTTP ``Range`` request header for a single byte range (RFC 9110, section 14).

Only the ``bytes`` unit and a single range are supported. Anything else returns ``None``,
so the caller sends the whole representation, which RFC 9110 section 14.2 allows.
"""

from __future__ import annotations

import re

# first-pos "-" [ last-pos ], or "-" suffix-length. Both positions are ASCII decimal digits.
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")


class UnsatisfiableRange(ValueError):
    """A well-formed byte range that selects no byte of a representation of ``total`` bytes (HTTP 416)."""

    def __init__(self, header: str, total: int) -> None:
        super().__init__(f"range {header!r} selects no byte of a representation of {total} bytes")
        self.header = header
        self.total = total


def parse_range(header: str, total: int) -> tuple[int, int] | None:
    """Parse a ``Range`` header value into an inclusive ``(start, end)`` byte range of ``total`` bytes.

    Returns ``None`` for a malformed header, another range unit or more than one range.
    A last position at or past the end is clamped to ``total - 1``, and a suffix longer than the
    representation selects all of it. Raises ``UnsatisfiableRange`` when the first position is
    ``total`` or more, when the suffix length is 0, or when ``total`` is 0.
    """
    unit, separator, range_set = header.partition("=")
    if not separator or unit.strip().lower() != "bytes":
        return None

    # The range set is a comma-separated list, and RFC 9110 section 5.6.1 requires recipients to accept empty elements.
    specs = [spec.strip() for spec in range_set.split(",") if spec.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()

    if not first:
        if not last:
            return None
        return _suffix_range(header, int(last), total)

    start = int(first)
    if last and int(last) < start:
        return None
    if start >= total:
        raise UnsatisfiableRange(header, total)
    end = min(int(last), total - 1) if last else total - 1
    return start, end


def _suffix_range(header: str, length: int, total: int) -> tuple[int, int]:
    if length == 0 or total == 0:
        raise UnsatisfiableRange(header, total)
    return max(total - length, 0), total - 1
