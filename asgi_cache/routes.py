"""Marked routes, compiled from the application's routing table.

The middleware must know which route a request belongs to *without running the
router* (a hit runs nothing of the application) and without learning anything
per process (a fresh worker must serve what another one stored).  So the routing
table is flattened once, in the router's own order, into one regular expression
per method class: the first alternative that matches is the route the router
would pick, and a path claimed first by an unmarked route is never served from
the cache.  Mounted routers and FastAPI's included routers are walked with their
prefixes; anything opaque (a mounted ASGI app, a ``Host`` route, an unknown
route class, a path that cannot be compiled) claims the paths it could match,
so nothing after it is cached where it might answer.

Each level of a path is compiled on its own, as Starlette does, so a name may
repeat across levels (``Mount("/users/{id}")`` over ``Route("/posts/{id}")``).
Such a route claims its paths like any other but is not cached: which ``{id}``
a tag would mean is ambiguous.  An ``@invalidates`` tag using the name is a
:class:`CacheConfigError` instead, since dropping an invalidation would leave
stale entries served.  Whatever the table holds, compiling it raises nothing
but a :class:`CacheConfigError` naming a misused marker.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from starlette.convertors import Convertor, PathConvertor, StringConvertor
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute, compile_path
from starlette.types import Scope

from asgi_cache.checks import tag_fields
from asgi_cache.conditional import ORIGIN_PRECONDITIONS
from asgi_cache.front import Front
from asgi_cache.invalidation import SAFE_METHODS
from asgi_cache.markers import (
    CacheRule,
    InvalidationRule,
    cache_rule,
    cached_method,
    invalidation_rule,
)
from asgi_cache.policy import UNSAFE_METHODS

if TYPE_CHECKING:
    from asgi_cache.cache import Cache

__all__ = [
    "CacheConfigError",
    "ReadRoute",
    "RouteTable",
    "WriteRoute",
    "compile_routes",
    "find_routes",
    "route_path",
]

logger = logging.getLogger("asgi_cache")

_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


#: What the hit path does with a request header, the second item of a
#: :attr:`ReadRoute.header_roles` value (the first is its index in the key, or -1).
NOT_SPECIAL = 0
IF_NONE_MATCH = 1
ACCEPT_ENCODING = 2
CREDENTIAL = 3
CACHE_CONTROL = 4
PRAGMA = 5
IF_MODIFIED_SINCE = 6
PRECONDITION = 7  # evaluated by the application only (asgi_cache.conditional)

_SPECIAL_HEADERS = {
    b"if-none-match": IF_NONE_MATCH,
    b"if-modified-since": IF_MODIFIED_SINCE,
    b"accept-encoding": ACCEPT_ENCODING,
    b"cache-control": CACHE_CONTROL,
    b"pragma": PRAGMA,
    **dict.fromkeys(ORIGIN_PRECONDITIONS, PRECONDITION),
}


def route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path``."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest[0] == "/":
            return rest
    return path


class CacheConfigError(ValueError):
    """A marker does not fit its route (raised at startup, naming the route)."""


@dataclass(frozen=True, slots=True)
class _Prefix:
    """The levels of mounts above a route, compiled one level at a time.

    Each level is compiled on its own, as Starlette does, so a parameter name
    may repeat across levels (``Mount("/users/{id}")`` over ``Route("/posts/{id}")``)
    where compiling the joined path would refuse it.
    """

    path: str = ""  # the joined path, for labels
    pattern: str = ""  # the joined regex, without anchors
    names: tuple[str, ...] = ()  # parameter names of every level, repeats included
    convertors: tuple[Convertor[Any], ...] = ()  # the convertor of each name
    # The path below the innermost mount: FastAPI reads a route's parameters from it.
    mounted: str = ""

    def join(self, path: str) -> _Prefix:
        """One level deeper; raises if Starlette could not route ``path`` this way."""
        if not path:
            return self
        if not path.startswith("/"):  # compile_path would take it for a host name
            raise ValueError(f"a routed path must start with '/': {path!r}")
        regex, _, convertors = compile_path(path)
        return _Prefix(
            self.path + path,
            self.pattern + regex.pattern[1:-1],
            (*self.names, *convertors),
            (*self.convertors, *convertors.values()),
            self.mounted + path,
        )


@dataclass(slots=True)
class _Flat:
    prefix: _Prefix
    methods: frozenset[str] | None  # None: any method (an opaque app)
    endpoint: Any  # None for opaque apps
    api_route: Any = None  # a FastAPI route
    api_prefix: str = ""  # its routers' prefixes, below the innermost mount
    path: str = field(init=False)
    regex: re.Pattern[str] = field(init=False)
    params: tuple[str, ...] = field(init=False)  # the names a tag may use
    repeated: frozenset[str] = field(init=False)  # names given by more than one level

    def __post_init__(self) -> None:
        names = self.prefix.names
        self.path = self.prefix.path
        self.repeated = frozenset(name for name in names if names.count(name) > 1)
        self.params = tuple(name for name in dict.fromkeys(names) if name not in self.repeated)
        pattern = self.prefix.pattern
        if self.repeated:  # a regex cannot name two groups alike: these stay anonymous
            alternatives = "|".join(sorted(self.repeated))
            pattern = re.sub(rf"\(\?P<(?:{alternatives})>", "(", pattern)
        self.regex = re.compile(f"^{pattern}$")


def _claim(prefix: _Prefix) -> _Flat:
    """A route that may answer any path below ``prefix`` (an opaque app)."""
    below = prefix.pattern + ("/(?P<path>.*)" if prefix.pattern else "(?P<path>.*)")
    names = (*prefix.names, "path")
    convertors = (*prefix.convertors, PathConvertor())
    return _Flat(_Prefix(prefix.path + "/{path:path}", below, names, convertors), None, None)


def _label(method: str, flat: _Flat) -> str:
    name = getattr(flat.endpoint, "__qualname__", None) or getattr(flat.endpoint, "__name__", "?")
    return f"{method} {flat.path} ({name})"


#: The placeholder a ``@cached(key=...)`` route's tags fill with the key part.
KEY_FIELD = "key"


def _fill_tags(
    flat: _Flat, templates: Sequence[str], label: str, *, keyed: bool = False
) -> tuple[str, ...]:
    """Check ``templates`` against the route; ``keyed``: it has a key function,
    whose result fills ``{key}`` (then no path parameter may be named ``key``)."""
    for template in templates:
        fields = tag_fields(template)
        if keyed and KEY_FIELD in fields and KEY_FIELD in flat.prefix.names:
            raise CacheConfigError(
                f"route {label}: tag {template!r}: {{key}} would mean both the path "
                "parameter 'key' and the result of key=; rename the path parameter"
            )
        repeated = [name for name in fields if name in flat.repeated]
        if repeated:
            raise CacheConfigError(
                f"route {label}: tag {template!r} uses path parameter {repeated[0]!r}, "
                "which more than one level of the path names"
            )
        unknown = [
            name for name in fields if name not in flat.params and not (keyed and name == KEY_FIELD)
        ]
        if unknown:
            known = ", ".join((*flat.params, *((KEY_FIELD,) if keyed else ()))) or "none"
            hint = "" if keyed or unknown[0] != KEY_FIELD else "; {key} needs @cached(key=...)"
            raise CacheConfigError(
                f"route {label}: tag {template!r} uses unknown path parameter "
                f"{unknown[0]!r} (known: {known}){hint}"
            )
    return tuple(templates)


#: A parameter's text in the path -> the canonical text of the value the application sees.
_Canon = Callable[[str], str]


@dataclass(slots=True)
class _Tagged:
    regex: re.Pattern[str]
    tag_templates: tuple[str, ...]
    # The parameters whose value the application sees apart from their text, in path order.
    canons: dict[str, _Canon]

    def tags(self, path: str, key_part: str | None = None) -> list[str]:
        """The route's tag templates filled from ``path``'s parameters, as the
        application sees them: ``/products/01`` fills ``{pid}`` of an ``int``
        parameter with ``1``, as ``/products/1`` does, so both are invalidated.
        ``key_part``, the result of a ``key=`` function, fills ``{key}``."""
        if not self.tag_templates:
            return []
        match = self.regex.match(path)
        params = match.groupdict() if match else {}
        for name, canon in self.canons.items():
            text = params.get(name)
            if text is not None:
                params[name] = canon(text)
        if key_part is not None:
            params[KEY_FIELD] = key_part
        return [template.format_map(params) for template in self.tag_templates]

    def canonical_path(self, path: str) -> str:
        """``path`` with each parameter spelled as the canonical text of its value.

        Every spelling the route reads as the same values (``/products/01``,
        ``/products/+1`` for an ``int``) gives one path, whose tag all of their
        stored variants carry and a write of any of them invalidates.
        """
        if not self.canons:
            return path
        match = self.regex.match(path)
        if match is None:
            return path
        pieces: list[str] = []
        end = 0
        for name, canon in self.canons.items():
            start, stop = match.span(name)
            if start >= end:
                pieces.append(path[end:start])
                pieces.append(canon(path[start:stop]))
                end = stop
        pieces.append(path[end:])
        return "".join(pieces)


@dataclass(slots=True)
class ReadRoute(_Tagged):
    """A ``@cached`` route with everything the hit path needs precomputed."""

    label: str
    rule: CacheRule
    key_headers: tuple[bytes, ...]  # sorted, lower-case: cache vary + route vary
    # Every request header the hit path reads: (index in key_headers or -1, role).
    # One dict lookup per request header, whatever the request carries.
    header_roles: dict[bytes, tuple[int, int]]
    statuses: frozenset[int]
    max_body_size: int
    cache_control: bytes | None
    # What selects the entry already, so a Vary naming it needs no variant: the
    # key headers, keyed codings, and the credential headers that a request
    # reaching the store never carries (it bypasses).
    key_header_names: frozenset[str]
    key_codings: bool  # whether accepted content codings split the key
    # Lifetimes: the route's own setting (None: the response's directives),
    # and the cache's defaults behind it.
    ttl: float | None
    default_ttl: float | None  # None: no heuristic freshness
    targets: tuple[bytes, ...]  # the targeted fields obeyed (RFC 9213), in order
    stale_while_revalidate: float | None
    stale_if_error: float | None
    stale_defaults: tuple[float, float]
    # RFC 9111 §4.1: every request header that selects what this route answers
    # with (key headers, keyed codings, credential headers deciding a bypass),
    # named in the Vary of its responses.
    vary_names: tuple[bytes, ...]
    private: bool  # keyed by a key= callable, not shared=True: Cache-Control: private
    # What its responses say to the cache in front (keys, freshness); None: nothing.
    front: Front | None
    # The key= callable failed and that was logged; cleared when it works again,
    # so a failing key function is reported once per route and outage.
    key_failing: bool = False
    # The page keys of recent requests, by exactly what was digested into them
    # (see :func:`asgi_cache.lookup.look_up`): a repeated request skips the
    # query canonicalisation and the digest.  Bounded by ``KEY_MEMO_SIZE``.
    key_memo: dict[tuple[object, ...], str] = field(default_factory=dict, compare=False)


@dataclass(slots=True)
class WriteRoute(_Tagged):
    """A route answering an unsafe method, with its ``@invalidates`` tags (if any)."""

    label: str


class RouteTable:
    """Resolves a request path to the route the router would pick."""

    #: Paths remembered by :meth:`for_read` (a pure function of the path).
    MEMO_SIZE = 4096

    def __init__(
        self,
        flats: list[_Flat],
        reads: list[ReadRoute | None],
        writes: list[dict[str, WriteRoute]],
    ) -> None:
        self._flats = flats
        #: The ``@cached`` FastAPI routes of the application's own OpenAPI
        #: document, as ``(path as the document writes it, route)``.
        self.documented: list[tuple[str, ReadRoute]] = []
        self._writes = writes  # per flat route: method -> its write route
        readable = [flat for flat in flats if flat.methods is None or "GET" in flat.methods]
        dynamic = [i for i, flat in enumerate(readable) if flat.regex.groups]
        # Static paths: resolved now against the whole table, in order; other
        # paths can only be matched by routes with parameters.
        self._dynamic = _PrefixIndex([readable[i] for i in dynamic], [reads[i] for i in dynamic])
        whole = _alternation(readable)
        self._static: dict[str, ReadRoute | None] = {}
        for flat in readable:
            if not flat.regex.groups and flat.path not in self._static:
                match = whole.match(flat.path) if whole else None
                self._static[flat.path] = reads[_index(match)] if match else None
        self._memo: dict[str, ReadRoute | None] = {}

    def for_read(self, path: str) -> ReadRoute | None:
        """The ``@cached`` route a GET/HEAD of ``path`` reaches, if any."""
        try:
            return self._static[path]
        except KeyError:
            pass
        memo = self._memo
        try:
            return memo[path]
        except KeyError:
            pass
        route = self._dynamic.match(path)
        if len(memo) >= self.MEMO_SIZE:
            memo.clear()
        memo[path] = route
        return route

    def for_write(self, method: str, path: str) -> WriteRoute | None:
        """The route an unsafe ``method`` on ``path`` reaches, marked or not.

        A linear scan in router order: writes are rare next to reads."""
        for flat, writes in zip(self._flats, self._writes, strict=True):
            if flat.methods is not None and method not in flat.methods:
                continue
            if flat.regex.match(path):
                return writes.get(method)
        return None

    def canonical_paths(self, path: str, write: WriteRoute | None) -> list[str]:
        """The canonical paths whose tags a write of ``path`` (reaching ``write``)
        invalidates, which every stored alias of its resource carries.

        Spelled as the ``@cached`` route a GET of ``path`` reaches reads it (its
        entries carry that tag, whatever the write's route declares), and as the
        write's own route reads it where that differs: ``PUT /products/+1`` with
        ``pid: int`` writes product 1, which ``GET /products/{pid:int}`` shows at
        ``/products/1`` but does not route at ``/products/+1``.
        """
        read = self.for_read(path)
        paths = [path if read is None else read.canonical_path(path)]
        if write is not None:
            own = write.canonical_path(path)
            if own != paths[0]:
                paths.append(own)
        return paths


class _PrefixIndex:
    """The routes with parameters, by the literal segments their paths begin with.

    A path can only match a route whose pattern's leading literal segments are
    its own leading segments, so each path is matched against one alternation
    of those routes only (in router order), not the whole table: with hundreds
    of routes, a path past the routing memo costs about what it does with a few.
    """

    def __init__(self, flats: list[_Flat], reads: list[ReadRoute | None]) -> None:
        self._routes = [
            (_literal_segments(flat.regex.pattern), flat, read)
            for flat, read in zip(flats, reads, strict=True)
        ]
        #: Every key some route has, and the compiled alternation of each key's
        #: candidates (built at its first use).
        self._keys = {key for key, _, _ in self._routes}
        self._compiled: dict[str, tuple[re.Pattern[str] | None, list[ReadRoute | None]]] = {}

    def match(self, path: str) -> ReadRoute | None:
        keys = self._keys
        end = len(path)
        key = ""
        while (end := path.rfind("/", 0, end)) > 0:
            if path[:end] in keys:
                key = path[:end]
                break
        try:
            regex, reads = self._compiled[key]
        except KeyError:
            regex, reads = self._compiled[key] = self._compile(key)
        match = regex.match(path) if regex is not None else None
        return reads[_index(match)] if match else None

    def _compile(self, key: str) -> tuple[re.Pattern[str] | None, list[ReadRoute | None]]:
        """The routes whose literal segments lead ``key`` (a path's deepest key), in order."""
        chosen = [
            (flat, read)
            for own, flat, read in self._routes
            if not own or own == key or key.startswith(own + "/")
        ]
        return _alternation([flat for flat, _ in chosen]), [read for _, read in chosen]


def _literal_segments(pattern: str) -> str:
    """The whole path segments a compiled route pattern (``^...$``) begins with
    literally, as a path spells them (``/api/v1`` of ``^/api/v1/items/(?P<id>...)$``);
    ``""`` when its first segment is not literal."""
    literal: list[str] = []
    index = 1  # past the "^"
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            following = pattern[index + 1 : index + 2]
            if not following or following.isalnum():  # a class (\d) or a back-reference
                break
            literal.append(following)
            index += 2
        elif char in ".^$*+?{}[]|()":
            break
        else:
            literal.append(char)
            index += 1
    text = "".join(literal)
    return text[: text.rfind("/")] if text.startswith("/") else ""


def _alternation(flats: list[_Flat]) -> re.Pattern[str] | None:
    """One regex whose first matching alternative is the first matching route.

    Each route's pattern becomes a group named ``r<index>``; its own parameter
    groups become anonymous, and ``match.lastgroup`` names the route even when
    a convertor's pattern holds groups of its own (``float`` does).
    """
    if not flats:
        return None
    alternatives = "|".join(
        f"(?P<r{i}>" + _NAMED_GROUP.sub("(", flat.regex.pattern[1:-1]) + ")"
        for i, flat in enumerate(flats)
    )
    return re.compile(f"^(?:{alternatives})$")


def _index(match: re.Match[str]) -> int:
    """The route index of a match of :func:`_alternation`'s regex."""
    name = match.lastgroup
    if name is None or name[0] != "r":  # an inner group closed last: find the route's
        name = next(key for key, value in match.groupdict().items() if value is not None)
    return int(name[1:])


def _write_route(
    flat: _Flat, method: str, rule: InvalidationRule | None, canons: dict[str, _Canon]
) -> WriteRoute:
    label = _label(method, flat)
    tags = () if rule is None else _fill_tags(flat, rule.tags, label)
    return WriteRoute(flat.regex, tags, canons, label)


def _canons(flat: _Flat) -> dict[str, _Canon]:
    """How ``flat`` turns each parameter's text into the value its endpoint sees.

    A Starlette convertor converts (``{pid:int}``: ``01`` is ``1``); a FastAPI
    endpoint validates the text with its signature (``pid: int``, wrapped in
    ``Annotated`` or ``Path`` or not) after the convertor.  FastAPI is only
    consulted for its own routes, so it is imported by then.
    """
    fields = {} if flat.api_route is None else _fastapi_fields(flat)
    canons: dict[str, _Canon] = {}
    for name, convertor in zip(flat.prefix.names, flat.prefix.convertors, strict=True):
        if name in flat.repeated:
            continue
        found = fields.get(name)
        if found is not None:
            canons[name] = partial(_validated, convertor, found)
        elif not isinstance(convertor, (StringConvertor, PathConvertor)):
            canons[name] = partial(_converted, convertor)
    return canons


def _fastapi_fields(flat: _Flat) -> dict[str, Any]:
    """The FastAPI fields validating each path parameter of ``flat``'s route, by name.

    The route's own, unless a router prefix adds parameters: then built as
    FastAPI builds them for the whole path.  The endpoint's parameters come
    before those of its dependencies.  Unreadable, the parameters keep their text.
    """
    fields: dict[str, Any] = {}
    route = flat.api_route
    try:
        dependant = route.dependant
        if "{" in flat.api_prefix:
            from fastapi.dependencies.utils import get_dependant

            path = compile_path(flat.api_prefix + route.path)[1]
            dependant = get_dependant(path=path, call=route.endpoint)
        dependants = [dependant]
        while dependants:
            dependant = dependants.pop(0)
            for found in dependant.path_params:
                fields.setdefault(found.alias, found)
            dependants[:0] = dependant.dependencies
    except Exception as exc:
        logger.warning(
            "asgi-cache: cannot read the path parameter types of %s (%s); "
            "its tags and path tag use the parameters' text",
            _label("", flat).lstrip(),
            exc,
        )
        return {}
    return fields


def _converted(convertor: Convertor[Any], text: str) -> str:
    """What ``url_path_for`` writes for the value the convertor reads in ``text``."""
    try:
        return str(convertor.to_string(convertor.convert(text)))
    except Exception:  # a custom convertor failing: the router fails the request too
        return text


def _validated(convertor: Convertor[Any], field: Any, text: str) -> str:
    """The canonical text of the value a FastAPI endpoint receives for ``text``.

    Text that does not validate stays as it is: the application answers 422
    to it, which is neither stored nor invalidates.
    """
    try:
        value, errors = field.validate(convertor.convert(text), {}, loc=("path", field.alias))
    except Exception:
        return text
    if errors:
        return text
    canonical = _value_text(value)
    return text if canonical is None else canonical


def _value_text(value: object) -> str | None:
    """A path parameter's value as text, the same for equal values of one type.

    ``int``, ``float`` and ``UUID`` as Starlette's convertors write them in a URL
    (so ``{x:float}`` and ``x: float`` agree), ``str`` as is, ``bool`` as
    ``true`` / ``false``, an ``Enum`` member as its value; ``None`` for other types.
    """
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return ("%0.20f" % (value + 0.0)).rstrip("0").rstrip(".")  # + 0.0: no "-0"
    if isinstance(value, UUID):
        return str(value)
    return None


def _read_route(
    flat: _Flat, rule: CacheRule, canons: dict[str, _Canon], cache: Cache, compressed: bool
) -> ReadRoute:
    label = _label("GET", flat)
    names = set(cache.vary) | set(rule.vary)
    key_codings = compressed or "accept-encoding" in names
    names.discard("accept-encoding")  # keyed in normalised form, see accepted_codings
    keyed = names if rule.key is None else names | set(cache.credential_headers)
    key_headers = tuple(name.encode("latin-1") for name in sorted(names))
    bypass = [name.encode("latin-1") for name in cache.credential_headers if name not in keyed]
    private = rule.key is not None and not rule.shared
    front = _front(rule, cache, per_user=private or bool(names & set(cache.credential_headers)))
    targets = tuple(name.encode("latin-1") for name in cache.targeted_cache_control)
    if front is not None and front.directives is not None:
        # The field is then this route's word to the tier in front, not the
        # application's to this cache.
        targets = tuple(name for name in targets if name != front.field)
    return ReadRoute(
        regex=flat.regex,
        tag_templates=_fill_tags(flat, rule.tags, label, keyed=rule.key is not None),
        canons=canons,
        label=label,
        rule=rule,
        key_headers=key_headers,
        header_roles=_header_roles(key_headers, bypass),
        statuses=rule.statuses if rule.statuses is not None else cache.statuses,
        max_body_size=rule.max_body_size or cache.max_body_size,
        cache_control=None if rule.cache_control is None else rule.cache_control.encode("latin-1"),
        key_header_names=frozenset(
            names
            | ({"accept-encoding"} if key_codings else set())
            | {name for name in cache.credential_headers if name not in keyed}
        ),
        key_codings=key_codings,
        ttl=rule.ttl,
        default_ttl=cache.default_ttl if cache.heuristic_freshness else None,
        targets=targets,
        stale_while_revalidate=rule.stale_while_revalidate,
        stale_if_error=rule.stale_if_error,
        stale_defaults=(cache.stale_while_revalidate, cache.stale_if_error),
        vary_names=_vary_names(names, key_codings, cache.credential_headers),
        private=private,
        front=front,
    )


def _front(rule: CacheRule, cache: Cache, *, per_user: bool) -> Front | None:
    """What a route's responses say to the cache in front, if anything
    (see :mod:`asgi_cache.front`)."""
    directives = rule.cdn_cache_control or cache.cdn_cache_control
    if cache.surrogate_keys is None and directives is None:
        return None
    return Front(cache.prefix, cache.surrogate_keys, cache.cdn_field, directives, per_user)


def _vary_names(
    key_headers: set[str], key_codings: bool, credentials: tuple[str, ...]
) -> tuple[bytes, ...]:
    """The names a route's responses list in ``Vary`` (RFC 9111 §4.1), sorted.

    The key headers, ``accept-encoding`` when the codings are keyed, and the
    credential headers: a request carrying one is answered by the application
    rather than from the cache (or, on a ``key=`` route, by what the key
    function reads), so their presence selects the response too.
    """
    names = key_headers | set(credentials)
    if key_codings:
        names.add("accept-encoding")
    return tuple(sorted(name.encode("latin-1") for name in names))


def _header_roles(
    key_headers: tuple[bytes, ...], credentials: list[bytes]
) -> dict[bytes, tuple[int, int]]:
    """The :attr:`ReadRoute.header_roles` of a route keyed on ``key_headers``
    that bypasses requests carrying one of ``credentials``."""
    roles = {name: (-1, role) for name, role in _SPECIAL_HEADERS.items()}
    for name in credentials:  # never a key header: those are not credentials here
        if roles.get(name, (-1, NOT_SPECIAL))[1] not in (
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            ACCEPT_ENCODING,
        ):
            roles[name] = (-1, CREDENTIAL)
    for index, name in enumerate(key_headers):
        roles[name] = (index, roles.get(name, (-1, NOT_SPECIAL))[1])
    return roles


def _flatten(routes: Sequence[BaseRoute], prefix: _Prefix) -> Iterator[_Flat]:
    """The routes in router order, mounts and included routers walked into.

    A route that cannot be read (an odd path, an unknown class, a table that
    is not one) claims every path below ``prefix``: nothing after it is cached
    where it might answer, and the application itself is left to judge it.
    """
    for route in routes:
        try:
            flats = list(_flatten_one(route, prefix))
        except Exception as exc:
            logger.warning(
                "asgi-cache: cannot read route %r (%s); no route after it is cached below %r",
                route,
                exc,
                prefix.path or "/",
            )
            flats = [_claim(prefix)]
        yield from flats


def _flatten_one(route: BaseRoute, prefix: _Prefix) -> Iterator[_Flat]:
    if isinstance(route, Route):
        methods = None if route.methods is None else frozenset(route.methods)
        flat = _Flat(prefix.join(route.path), methods, route.endpoint)
        fastapi = sys.modules.get("fastapi.routing")  # imported if any route is FastAPI's
        if fastapi is not None and isinstance(route, fastapi.APIRoute):
            flat.api_route, flat.api_prefix = route, prefix.mounted
        yield flat
    elif isinstance(route, WebSocketRoute):
        return
    elif isinstance(route, Mount):
        mounted = replace(prefix.join(route.path), mounted="")
        children = route.routes  # the mounted app's, when it has any
        if children and isinstance(children, Sequence):
            yield from _flatten(children, mounted)
        else:
            yield _claim(mounted)
    elif hasattr(route, "original_router") and hasattr(route, "include_context"):
        # FastAPI keeps an included router nested, with its prefix in a context.
        included = prefix.join(route.include_context.prefix)
        yield from _flatten(route.original_router.routes, included)
    else:
        if not isinstance(route, Host):
            logger.warning(
                "asgi-cache: cannot see inside route %r; no route after it is cached", route
            )
        yield _claim(prefix)


def find_routes(app: Any) -> tuple[Sequence[BaseRoute] | None, bool]:
    """The routing table below ``app``, following the ``.app`` chain of
    middleware, and whether a compressing middleware (a class named like
    ``GZipMiddleware`` or ``BrotliMiddleware``) stands on the way."""
    compressed = False
    for _ in range(100):
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes, compressed
        name = type(app).__name__.lower()
        compressed = compressed or any(word in name for word in _COMPRESSORS)
        app = getattr(app, "app", None)
        if app is None:
            break
    return None, compressed


_COMPRESSORS = ("gzip", "brotli", "compress", "zstd", "deflate")


def _check_cached_without_get(flats: Sequence[_Flat]) -> None:
    """Fail startup for ``@cached`` on a route that serves no GET.

    Only GET responses are cached, so the marker would silently do nothing: an
    error naming the route is what its author needs (``@invalidates`` is the
    marker for write routes).  An endpoint that some other route serves for GET
    is fine: the marker works there.
    """
    read_endpoints = [
        flat.endpoint for flat in flats if flat.methods is None or "GET" in flat.methods
    ]
    for flat in flats:
        endpoint = flat.endpoint
        if endpoint is None or (
            not isinstance(endpoint, type) and any(endpoint is e for e in read_endpoints)
        ):
            continue
        method = cached_method(endpoint, flat.methods)
        if method is not None:
            raise CacheConfigError(
                f"route {_label(method, flat)}: @cached only caches GET (and HEAD) "
                f"responses, not {method}; remove @cached there, or use @invalidates(...) "
                f"to drop cached pages after a write"
            )


def compile_routes(
    routes: Sequence[BaseRoute], cache: Cache, *, compressed: bool = False
) -> RouteTable:
    """Flatten and check the markers; :class:`CacheConfigError` names a bad route.

    ``compressed`` says a compressing middleware sits between the cache and the
    routes: bodies then depend on ``Accept-Encoding``, which joins every key.
    """
    flats = list(_flatten(routes, _Prefix()))
    _check_cached_without_get(flats)
    reads: list[ReadRoute | None] = []
    writes: list[dict[str, WriteRoute]] = []
    documented: list[tuple[_Flat, ReadRoute]] = []
    for flat in flats:
        found: dict[str, WriteRoute] = {}
        rule = None
        canons: dict[str, _Canon] = {}
        if flat.endpoint is not None:
            if flat.methods is None or "GET" in flat.methods:
                rule = cache_rule(flat.endpoint, "GET")
            # Every unsafe method gets a write route, marked or not (its path's aliases).
            invalidations = {
                method: invalidation_rule(flat.endpoint, method)
                for method in sorted(UNSAFE_METHODS if flat.methods is None else flat.methods)
            }
            invalidations = {
                method: invalidation
                for method, invalidation in invalidations.items()
                if invalidation is not None or method not in SAFE_METHODS
            }
            if rule is not None or invalidations:
                canons = _canons(flat)
            for method, invalidation in invalidations.items():
                found[method] = _write_route(flat, method, invalidation, canons)
        writes.append(found)
        if flat.methods is None or "GET" in flat.methods:
            if rule is not None and flat.repeated:
                logger.warning(
                    "asgi-cache: route %s names path parameter %s at more than one level; "
                    "it is not cached",
                    _label("GET", flat),
                    ", ".join(sorted(flat.repeated)),
                )
                rule = None
            read = None if rule is None else _read_route(flat, rule, canons, cache, compressed)
            reads.append(read)
            if read is not None and flat.api_route is not None:
                documented.append((flat, read))
    table = RouteTable(flats, reads, writes)
    table.documented = [
        (compile_path(flat.path)[1], read)
        for flat, read in documented
        if flat.prefix.mounted == flat.prefix.path  # a mounted app documents itself
    ]
    return table
