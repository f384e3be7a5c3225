"""Parsing of the few HTTP header fields the cache reads, on raw ``bytes``.

Headers stay a raw ``list[tuple[bytes, bytes]]`` everywhere (repeated fields such
as ``Set-Cookie`` or ``Link`` must survive), so these helpers take the values of
one field name and never build a dict of the whole header list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "accepted_codings",
    "etag_matches",
    "is_token",
    "parse_cache_control",
    "parse_vary",
]

Headers = list[tuple[bytes, bytes]]

# RFC 9110 §5.6.2: token = 1*tchar
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# One Cache-Control directive: name, then an optional token or quoted-string value.
_DIRECTIVE = re.compile(rb'\s*([^\s=,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?\s*(?:,|$)')
_QUOTED_PAIR = re.compile(rb"\\(.)")
# Content codings a cached variant is split on (see :func:`accepted_codings`).
_CODINGS = (b"br", b"deflate", b"gzip", b"zstd")


def is_token(name: str) -> bool:
    """Whether ``name`` is a valid HTTP field name / token (RFC 9110 §5.1, §5.6.2)."""
    return bool(_TOKEN.fullmatch(name))  # not match(): "$" would admit a trailing "\n"


#: Parsed ``Cache-Control`` values, by the field values themselves: an application
#: sends a few distinct ones, parsed on every miss and store otherwise.  Emptied
#: when full, and only short values are remembered, so values that change per
#: message (a ``max-age`` counting down, a client's own) cost at most a few
#: hundred kilobytes.
_CACHE_CONTROL_MEMO: dict[tuple[bytes, ...], dict[str, str]] = {}
CACHE_CONTROL_MEMO_SIZE = 512
CACHE_CONTROL_MEMO_INPUT = 256


def parse_cache_control(values: Iterable[bytes]) -> dict[str, str]:
    """Directives of the ``Cache-Control`` field values (RFC 9111 §5.2).

    Names are lower-cased; a directive without argument maps to ``""``; quotes
    around a quoted-string argument are removed.  Unparseable junk is skipped
    rather than raised on: a malformed header must never break a response.
    Each call returns a dict of its own (the parse is remembered).
    """
    seen = tuple(values)
    found = _CACHE_CONTROL_MEMO.get(seen)
    if found is None:
        found = _parse_cache_control(seen)
        if sum(map(len, seen)) > CACHE_CONTROL_MEMO_INPUT:
            return found
        if len(_CACHE_CONTROL_MEMO) >= CACHE_CONTROL_MEMO_SIZE:
            _CACHE_CONTROL_MEMO.clear()
        _CACHE_CONTROL_MEMO[seen] = found
    return found.copy()


def _parse_cache_control(values: tuple[bytes, ...]) -> dict[str, str]:
    directives: dict[str, str] = {}
    for value in values:
        for match in _DIRECTIVE.finditer(value):
            name = match.group(1).decode("latin-1").lower()
            if not name:
                continue
            arg = match.group(2) or b""
            if arg[:1] == b'"':
                arg = _QUOTED_PAIR.sub(rb"\1", arg[1:-1])
            directives.setdefault(name, arg.decode("latin-1"))
    return directives


def parse_vary(values: Iterable[bytes]) -> frozenset[str]:
    """Lower-cased field names listed by ``Vary`` values (``*`` kept as is)."""
    names: set[str] = set()
    for value in values:
        for part in value.split(b","):
            name = part.strip().decode("latin-1").lower()
            if name:
                names.add(name)
    return frozenset(names)


def _opaque(tag: bytes) -> bytes:
    tag = tag.strip()
    return tag[2:] if tag[:2] == b"W/" else tag


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """``If-None-Match`` evaluation with weak comparison (RFC 9110 §13.1.2)."""
    if if_none_match.strip() == b"*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(candidate) == wanted for candidate in if_none_match.split(b","))


def accepted_codings(value: bytes | None) -> bytes:
    """The known content codings a client accepts, as a short canonical string.

    A compressing middleware below the cache (Starlette's ``GZipMiddleware``)
    makes the body depend on ``Accept-Encoding``; keying on the raw field would
    split the cache per browser version, so the key uses only which known
    codings are acceptable (``q=0`` refuses one).
    """
    if not value:
        return b""
    known = _ACCEPTED.get(value)
    if known is not None:
        return known
    if len(_ACCEPTED) >= 256:  # clients send few distinct values; bound it anyway
        _ACCEPTED.clear()
    known = _ACCEPTED[value] = _accepted_codings(value.lower())
    return known


_ACCEPTED: dict[bytes, bytes] = {}


def _accepted_codings(value: bytes) -> bytes:
    """RFC 9110 §12.5.3: a listed coding is accepted unless its weight is 0; ``*``
    accepts every coding not listed otherwise (``*;q=0`` accepts none of them)."""
    if b";" not in value and b"*" not in value:
        return b",".join(coding for coding in _CODINGS if coding in value)
    accepted: set[bytes] = set()
    refused: set[bytes] = set()
    anything = False
    for part in value.split(b","):
        coding, _, params = part.partition(b";")
        coding = coding.strip()
        zero = bool(_ZERO_WEIGHT.match(params))
        if coding == b"*":
            anything = not zero
        elif coding in _CODINGS:
            (refused if zero else accepted).add(coding)
    if anything:
        accepted.update(_CODINGS)
    return b",".join(sorted(accepted - refused))  # a coding listed twice: refusal wins


_ZERO_WEIGHT = re.compile(rb"\s*q\s*=\s*0(\.0*)?\s*$", re.IGNORECASE)
