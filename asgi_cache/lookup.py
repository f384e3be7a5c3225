"""One request of a cached route, as the hit path keyed it.

The hit path reads the request's headers once; what it learnt travels on in
one :class:`Lookup` to the miss path, the responder and a background refresh,
so nothing is parsed or keyed twice.
"""

from __future__ import annotations

from asgi_cache.keys import path_tag, tag_key
from asgi_cache.routes import ReadRoute
from asgi_cache.status import Forward

__all__ = ["Lookup"]


class Lookup:
    """The route, key and request facts of one GET or HEAD of a cached route."""

    __slots__ = ("codings", "fwd", "head", "if_none_match", "key", "route", "route_path")

    def __init__(
        self,
        route: ReadRoute,
        route_path: str,
        key: str,
        *,
        codings: bytes,
        if_none_match: bytes | None,
        head: bool,
        fwd: Forward,
    ) -> None:
        self.route = route
        self.route_path = route_path  #: the path the router matches
        self.key = key  #: the entry's store key
        self.codings = codings  #: accepted content codings, as keyed
        self.if_none_match = if_none_match  #: the request's validator, if any
        self.head = head  #: a HEAD: answered from the GET entry, without body
        self.fwd = fwd  #: why a response computed for it went to the application

    def tags(self, prefix: str) -> list[str]:
        """The store tags of the entry: the route's own tags and its path's."""
        tags = [tag_key(prefix, tag) for tag in self.route.tags(self.route_path)]
        tags.append(path_tag(prefix, self.route_path))
        return tags
