"""Targeted cache-control fields (RFC 9213): directives meant for this cache.

A response can carry, besides ``Cache-Control``, fields whose directives are
meant for one class of cache only: ``CDN-Cache-Control`` for caches acting for
the origin, or a field of this very cache's own.  The cache keeps a *target
list* (``Cache(targeted_cache_control=...)``) and, RFC 9213 §2.2, uses the
first field of that list with a valid, non-empty value instead of
``Cache-Control`` *and* ``Expires``; without one it falls back on those.

:func:`cache_view` gives the response's headers as this cache reads them, so
every other rule (what may be stored, how long it is fresh, how long it may be
served stale) reads one ``Cache-Control`` whichever field it came from.  The
response itself is stored and forwarded unchanged: the targeted field is meant
for the caches downstream too.

Targeted fields are Dictionary Structured Fields (RFC 8941 §3.2): they are
parsed by that grammar, not the lenient ``Cache-Control`` one, and a field
that does not parse is ignored (RFC 9213 §2.1).
"""

from __future__ import annotations

import re
from typing import TypeAlias

__all__ = ["cache_view", "parse_dictionary", "targeted_directives"]

Headers = list[tuple[bytes, bytes]]


class Token(str):
    """An RFC 8941 §3.3.4 Token, told apart from a String (§3.3.3)."""


class Decimal(float):
    """An RFC 8941 §3.3.2 Decimal, told apart from an Integer."""


#: A bare item (RFC 8941 §3.3), or an inner list of them (§3.1.1).
Item: TypeAlias = "bool | int | Decimal | str | Token | bytes | list[Item]"

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
#: Directives whose value is a delta-seconds: RFC 9213 §2.1 maps it to an
#: Integer, and a value of another type is not consumed.
_SECONDS = frozenset({"max-age", "s-maxage", "stale-while-revalidate", "stale-if-error"})


class _Invalid(ValueError):
    """The field value is not a Dictionary (RFC 8941 §4.2: parsing fails)."""


def parse_dictionary(values: list[bytes]) -> dict[str, Item] | None:
    """The members of a Dictionary field's lines, or ``None`` if it does not parse.

    RFC 8941 §4.2: the lines are joined with commas, leading and trailing
    spaces dropped, and any error fails the whole field.  Parameters are read
    and dropped (RFC 9213 §2.1: they are ignored on directives).
    """
    try:
        text = ",".join(value.decode("ascii") for value in values)
    except UnicodeDecodeError:
        return None
    try:
        parser = _Parser(text.strip(" "))
        members = parser.dictionary()
    except _Invalid:
        return None
    return members


class _Parser:
    """RFC 8941 §4.2's algorithms over one string, keeping a position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def peek(self) -> str:
        return self.text[self.at : self.at + 1]

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.at += 1

    def match(self, pattern: re.Pattern[str]) -> re.Match[str]:
        found = pattern.match(self.text, self.at)
        if found is None:
            raise _Invalid(self.text)
        self.at = found.end()
        return found

    def dictionary(self) -> dict[str, Item]:
        """§4.2.2."""
        members: dict[str, Item] = {}
        while self.at < len(self.text):
            key = self.match(_KEY).group()
            if self.peek() == "=":
                self.at += 1
                members[key] = self.item_or_inner_list()
            else:
                members[key] = True
                self.parameters()
            self.skip(" \t")
            if self.at >= len(self.text):
                break
            if self.peek() != ",":
                raise _Invalid(self.text)
            self.at += 1
            self.skip(" \t")
            if self.at >= len(self.text):
                raise _Invalid(self.text)  # a trailing comma
        return members

    def item_or_inner_list(self) -> Item:
        """§4.2.1.1, §4.2.1.2, §4.2.3."""
        if self.peek() != "(":
            item = self.bare_item()
            self.parameters()
            return item
        self.at += 1
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.at += 1
                self.parameters()
                return items
            items.append(self.bare_item())
            self.parameters()
            if self.peek() not in (" ", ")"):
                raise _Invalid(self.text)

    def parameters(self) -> None:
        """§4.2.3.2, values dropped."""
        while self.peek() == ";":
            self.at += 1
            self.skip(" ")
            self.match(_KEY)
            if self.peek() == "=":
                self.at += 1
                self.bare_item()

    def bare_item(self) -> Item:
        """§4.2.3.1."""
        first = self.peek()
        if first == "-" or first.isdigit():
            number = self.match(_NUMBER)
            whole, fraction = number.group().lstrip("-"), number.group(1)
            if fraction is None:
                if len(whole) > 15:
                    raise _Invalid(self.text)
                return int(number.group())
            if len(whole) - len(fraction) > 12 or len(fraction) > 4:  # "." counted in fraction
                raise _Invalid(self.text)
            return Decimal(number.group())
        if first == '"':
            return self.string()
        if first == ":":
            return self.match(_BYTES).group(1).encode("ascii")
        if first == "?":
            flag = self.text[self.at + 1 : self.at + 2]
            if flag not in ("0", "1"):
                raise _Invalid(self.text)
            self.at += 2
            return flag == "1"
        if first == "*" or first.isalpha():
            return Token(self.match(_TOKEN).group())
        raise _Invalid(self.text)

    def string(self) -> str:
        """§4.2.5: printable ASCII, ``\\"`` and ``\\\\`` the only escapes."""
        self.at += 1
        chars: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            self.at += 1
            if char == "\\":
                escaped = self.text[self.at : self.at + 1]
                if escaped not in ('"', "\\"):
                    raise _Invalid(self.text)
                chars.append(escaped)
                self.at += 1
            elif char == '"':
                return "".join(chars)
            elif not " " <= char <= "~":
                raise _Invalid(self.text)
            else:
                chars.append(char)
        raise _Invalid(self.text)


def _directive(name: str, value: Item) -> str | None:
    """A member as ``Cache-Control`` spells it, or ``None`` to ignore it.

    RFC 9213 §2.1: a directive without value is Boolean true, a quoted-string
    a String, a token a Token or an Integer; values violating that mapping
    (a Decimal ``max-age``, ``no-store=?0``) are not consumed.
    """
    if value is True:
        return name
    if name in _SECONDS:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return f"{name}={value}"
        return None
    if isinstance(value, Token):
        return f"{name}={value}"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{name}="{escaped}"'
    if isinstance(value, int) and not isinstance(value, (bool, Decimal)) and value >= 0:
        return f"{name}={value}"
    return None


def targeted_directives(headers: Headers, targets: tuple[bytes, ...]) -> bytes | None:
    """The directives of the first valid, non-empty field of ``targets``, as a
    ``Cache-Control`` value; ``None`` when no field of the list applies.

    RFC 9213 §2.2: fields are tried in target-list order; an empty or
    unparseable one is as if absent.
    """
    for target in targets:
        values = [value for name, value in headers if name.lower() == target]
        if not values:
            continue
        members = parse_dictionary(values)
        if not members:
            continue
        spelled = [_directive(name, value) for name, value in members.items()]
        return ", ".join(d for d in spelled if d is not None).encode("ascii")
    return None


def cache_view(headers: Headers, targets: tuple[bytes, ...]) -> Headers:
    """``headers`` as this cache reads them for its own caching decisions.

    RFC 9213 §2.2: with a valid targeted field on the target list,
    ``Cache-Control`` and ``Expires`` are ignored and that field's directives
    stand in for them; otherwise the headers are returned unchanged.
    """
    if not targets:
        return headers
    directives = targeted_directives(headers, targets)
    if directives is None:
        return headers
    view = [(n, v) for n, v in headers if n.lower() not in (b"cache-control", b"expires")]
    if directives:
        view.append((b"cache-control", directives))
    return view
