"""One request of a cached route, keyed: what the hit path learnt about it.

The hit path reads the request's headers once (:func:`look_up`); what it learnt
travels on in one :class:`Lookup` to the miss path, the responder and a
background refresh, so nothing is parsed or keyed twice.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import Receive, Scope

from asgi_cache.checks import key_failure_hint
from asgi_cache.headers import accepted_codings
from asgi_cache.keys import canonical_query, entry_key, path_tag, tag_key, variant_key
from asgi_cache.policy import RequestDirectives, request_directive
from asgi_cache.routes import (
    ACCEPT_ENCODING,
    CACHE_CONTROL,
    CREDENTIAL,
    IF_MODIFIED_SINCE,
    IF_NONE_MATCH,
    PRAGMA,
    PRECONDITION,
    ReadRoute,
)
from asgi_cache.status import Detail, Forward
from asgi_cache.variants import request_values

__all__ = ["Lookup", "look_up", "request_tags"]

logger = logging.getLogger("asgi_cache")

_URI_MISS = Forward.URI_MISS  # bound once: read on every request


class Lookup:
    """The route, key and request facts of one GET or HEAD of a cached route."""

    __slots__ = (
        "codings",
        "directives",
        "fwd",
        "head",
        "if_modified_since",
        "if_none_match",
        "key",
        "key_part",
        "primary",
        "route",
        "route_path",
        "varied",
    )

    def __init__(
        self,
        route: ReadRoute,
        route_path: str,
        key: str,
        codings: bytes,
        if_none_match: bytes | None,
        head: bool,
        fwd: Forward,
        if_modified_since: bytes | None = None,
        directives: RequestDirectives | None = None,
        key_part: str | None = None,
    ) -> None:
        self.route = route
        self.route_path = route_path  #: the path the router matches
        self.key = key  #: the entry's store key
        self.codings = codings  #: accepted content codings, as keyed
        self.if_none_match = if_none_match  #: the request's validator, if any
        self.head = head  #: a HEAD: answered from the GET entry, without body
        self.fwd = fwd  #: why a response computed for it went to the application
        self.if_modified_since = if_modified_since  #: the request's date validator, if any
        #: the client's request directives, when honoured and it sent some
        self.directives = directives
        self.key_part = key_part  #: what the route's key function returned, as keyed
        self.primary = key  #: the page key: holds the entry, or the vary record
        self.varied: tuple[bytes, ...] = ()  #: the vary record's names, once one is found

    def select(
        self, names: tuple[bytes, ...], request_headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        """Key the variant the vary record ``names`` selects (RFC 9111 §4.1):
        :attr:`key` becomes its secondary key, under :attr:`primary`."""
        self.varied = names
        self.key = variant_key(self.primary, names, request_values(request_headers, names))

    def tags(self, prefix: str) -> list[str]:
        """The store tags of the entry: the route's own tags and its path's.

        The path's tag is its canonical path's, which every alias of the path
        carries and a write of any of them invalidates; an alias carries its
        own path's tag too, for ``Cache.invalidate_path`` of that very spelling.
        """
        route_path = self.route_path
        tags = [tag_key(prefix, tag) for tag in self.route.tags(route_path, self.key_part)]
        canonical = self.route.canonical_path(route_path)
        tags.append(path_tag(prefix, canonical))
        if canonical != route_path:
            tags.append(path_tag(prefix, route_path))
        return tags


def _key_failed(route: ReadRoute, exc: Exception) -> None:
    """Log a failing ``key=`` function once per route until it works again.

    Its requests bypass the cache meanwhile; a traceback per request would
    bury everything else in the log.  A failure for want of a middleware in
    front of the cache gets the fix instead of a traceback.
    """
    if route.key_failing:
        logger.debug("asgi-cache: key function of %s failed again: %r", route.label, exc)
        return
    route.key_failing = True
    hint = key_failure_hint(exc)
    if hint is not None:
        logger.warning(
            "asgi-cache: key function of %s failed: %s; its requests bypass the cache",
            route.label,
            hint,
        )
        return
    logger.warning(
        "asgi-cache: key function of %s failed; its requests bypass the cache until it "
        "works again (logged once)",
        route.label,
        exc_info=exc,
    )


async def look_up(
    route: ReadRoute,
    route_path: str,
    scope: Scope,
    receive: Receive,
    prefix: str,
    honor_request_cache_control: bool,
) -> Lookup | str:
    """Key the request in one pass over its headers.

    A ``str`` instead is why the request bypasses the cache: a :class:`Detail`,
    or the name of a credential header the route does not key on.
    :attr:`Detail.ONLY_IF_CACHED` says the client forbade going to the
    application (RFC 9111 §5.2.1.7) for a request no entry may answer: it gets
    ``504``.
    """
    key_headers = route.key_headers
    values: list[list[bytes] | None] = [None] * len(key_headers)
    role_of = route.header_roles.get
    if_none_match = if_modified_since = accept_encoding = None
    request_cc: list[bytes] | None = None
    pragma: list[bytes] | None = None
    bypass: str | None = None
    for name, value in scope["headers"]:
        role = role_of(name)
        if role is None:
            continue
        index, special = role
        if index >= 0:
            found = values[index]
            if found is None:
                values[index] = [value]
            else:
                found.append(value)
        if special == IF_NONE_MATCH:
            # A list field: repeated lines are one list (RFC 9110 §5.3).
            if_none_match = value if if_none_match is None else if_none_match + b", " + value
        elif special == IF_MODIFIED_SINCE:
            # RFC 9110 §13.1.3: more than one member is ignored; b"" is no date.
            if_modified_since = value if if_modified_since is None else b""
        elif special == ACCEPT_ENCODING:
            accept_encoding = value
        elif special == CREDENTIAL:
            bypass = bypass or name.decode("latin-1")
        elif special == PRECONDITION:
            bypass = bypass or Detail.PRECONDITION
        elif special == CACHE_CONTROL:
            request_cc = [*(request_cc or ()), value]
        elif special == PRAGMA:
            pragma = [*(pragma or ()), value]

    fwd = _URI_MISS
    directives = None
    if honor_request_cache_control and (request_cc or pragma):
        directives = request_directive(request_cc, pragma)
        if directives is not None:
            if directives.only_if_cached and bypass is not None:
                return Detail.ONLY_IF_CACHED  # nothing stored may answer it
    if bypass is not None:
        return bypass

    custom = b""
    key_part = None
    if route.rule.key is not None:
        try:
            part = route.rule.key(Request(scope, receive))
            if inspect.isawaitable(part):
                part = await part
            key_part = str(part)
            custom = key_part.encode("utf-8", "surrogatepass")
        except Exception as exc:
            _key_failed(route, exc)
            if directives is not None and directives.only_if_cached:
                return Detail.ONLY_IF_CACHED
            return Detail.KEY_ERROR
        if route.key_failing:
            route.key_failing = False
            logger.info("asgi-cache: key function of %s works again", route.label)

    codings = accepted_codings(accept_encoding) if route.key_codings else b""
    key = _page_key(
        route, prefix, scope.get("root_path", ""), route_path, scope, codings, custom, values
    )
    head = scope["method"] == "HEAD"
    return Lookup(
        route,
        route_path,
        key,
        codings,
        if_none_match,
        head,
        fwd,
        if_modified_since,
        directives,
        key_part,
    )


#: Page keys remembered per route (see :attr:`ReadRoute.key_memo`), and the most
#: bytes of query, key part and key header values remembered for one: a memo of
#: a few megabytes per route at most.
KEY_MEMO_SIZE = 1024
KEY_MEMO_INPUT = 2048


def _page_key(
    route: ReadRoute,
    prefix: str,
    root_path: str,
    route_path: str,
    scope: Scope,
    codings: bytes,
    custom: bytes,
    values: list[list[bytes] | None],
) -> str:
    """The page key of a request with these components (:func:`entry_key`).

    Remembered per route by the components themselves, compared exactly, so a
    repeated request (every hit of a hot page) skips canonicalising its query
    and the digest; the memo is emptied when full, like the routing memo.
    """
    query: bytes = scope.get("query_string", b"")
    seen: tuple[object, ...] = (prefix, root_path, route_path, query, codings, custom)
    size = len(query) + len(custom)
    if values:
        fields = tuple(None if found is None else tuple(found) for found in values)
        seen += fields
        size += sum(len(value) for found in fields if found for value in found)
    memo = route.key_memo
    key = memo.get(seen)
    if key is not None:
        return key
    parts = (
        root_path.encode("utf-8", "surrogatepass") if root_path else b"",
        route_path.encode("utf-8", "surrogatepass"),
        canonical_query(query) if query else b"",
        codings,
        custom,
    )
    key = entry_key(prefix, parts, values)
    if size <= KEY_MEMO_INPUT:
        if len(memo) >= KEY_MEMO_SIZE:
            memo.clear()
        memo[seen] = key
    return key


async def request_tags(route: ReadRoute, scope: Scope) -> list[str] | None:
    """The tags the route's ``tags=`` callable gives this request, or ``None``
    when it raised or returned anything but strings (logged as a warning).

    Called on a miss only, so a hit never runs it.  The request it receives
    cannot read the body: the application has yet to.
    """
    function = route.rule.tag_function
    if function is None:
        return []
    try:
        found = function(Request(scope))
        if inspect.isawaitable(found):
            found = await found
        if isinstance(found, (str, bytes)):
            raise TypeError(f"expected an iterable of tags, got the one value {found!r}")
        tags = list(found)
        for tag in tags:
            if not isinstance(tag, str) or not tag:
                raise TypeError(f"every tag must be a non-empty string, got {tag!r}")
    except Exception:
        logger.warning("asgi-cache: tags function of %s failed", route.label, exc_info=True)
        return None
    return tags
