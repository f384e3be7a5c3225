"""``python -m asgi_cache`` / ``asgi-cache``: look into and purge a cache's store.

For operators: what a store holds under a prefix (``stats``), removing entries by
tag, path or all at once (``purge``), and whether a page is stored, and how
(``inspect``).  Exit status: 0 done, 1 the store failed (the message names its URL
without the password), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import IO, Any, TypeVar

import anyio

from asgi_cache.cache import Cache
from asgi_cache.entry import CorruptEntry, VaryRecord, decode, decode_record
from asgi_cache.keys import key_kind, namespace, page_key, variant_key
from asgi_cache.pending import InvalidationPending
from asgi_cache.stores.base import StoreError
from asgi_cache.stores.urls import redact_url
from asgi_cache.variants import request_values

__all__ = ["Spinner", "main"]

T = TypeVar("T")

_REDIS_SCHEMES = ("redis", "rediss", "unix")

_INSPECT_HELP = """\
Whether a GET of PATH is stored under the key the middleware gives it: a route
without key= and keyed on no request header (no vary=, no Cache(vary=...)).  A
route keyed on headers needs each with --header (accept-encoding too, when the
route keys on content codings); a page that varies on headers outside its key
says which ones to give."""

_PURGE_PATH_HELP = """\
remove every stored variant of this path, as spelled: without the application's
routes the CLI cannot know a path's aliases (/items/01 for /items/1 with an int
parameter), which Cache.invalidate_path inside the app removes too"""


class Spinner:
    """A one-line activity display for work that cannot report its progress.

    Each :meth:`tick` rewrites the line in place (``\\r``); :meth:`done` ends it.
    """

    FRAMES = "|/-\\"

    def __init__(self, stream: IO[str], label: str) -> None:
        self.stream = stream
        self.label = label
        self._frames = itertools.cycle(self.FRAMES)

    def tick(self, elapsed: float) -> None:
        self.stream.write(f"\r{next(self._frames)} {self.label} ({elapsed:.1f}s)")
        self.stream.flush()

    def done(self, result: str) -> None:
        self.stream.write(f"\r{self.label}: {result}\n")
        self.stream.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgi-cache",
        description="Look into and purge an asgi-cache store.",
        epilog="Exit status: 0 done, 1 the store failed, 2 wrong usage.",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("ASGI_CACHE_URL"),
        help="the store's URL (redis://host:port/0, rediss://, unix://, ?cluster=true); "
        "default: $ASGI_CACHE_URL",
    )
    parser.add_argument(
        "--prefix", default="asgi-cache", help="the Cache's prefix (default: asgi-cache)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds each store round trip may take (default: 5)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "stats",
        help="count what is stored under the prefix",
        description="Count the keys under the prefix by kind, with their bytes "
        "(Redis: SCAN and STRLEN, never KEYS).",
    )
    purge = commands.add_parser(
        "purge", help="remove entries by tag, by path or all", description="Remove entries."
    )
    what = purge.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--tag", action="append", metavar="TAG", help="remove entries tagged TAG (repeatable)"
    )
    what.add_argument("--path", metavar="PATH", help=_PURGE_PATH_HELP)
    what.add_argument("--all", action="store_true", help="remove everything under the prefix")
    purge.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show activity on stderr while purging (default: when stderr is a terminal)",
    )
    inspect = commands.add_parser(
        "inspect", help="show the stored response of a GET of a path", description=_INSPECT_HELP
    )
    inspect.add_argument("path", metavar="PATH", help="the path the routes see (/items/1)")
    inspect.add_argument("--query", default="", help="the query string, without '?'")
    inspect.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        type=_header,
        help="a request header the route keys on (repeatable)",
    )
    return parser


def _header(text: str) -> tuple[bytes, bytes]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text!r}")
    try:
        return name.lower().encode("ascii"), value.strip().encode("latin-1")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a header field") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no store: give --url or set ASGI_CACHE_URL")
    if not args.timeout > 0:
        parser.error(f"--timeout must be positive, got {args.timeout}")
    options: dict[str, Any] = {"prefix": args.prefix}
    if args.url.partition("://")[0].lower() in _REDIS_SCHEMES:
        options["timeout"] = args.timeout
    try:
        cache = Cache.from_url(args.url, **options)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    try:
        return anyio.run(_run, cache, args)
    except (StoreError, InvalidationPending, NotImplementedError) as exc:
        url = redact_url(args.url)
        said = str(exc) if url in str(exc) else f"{url}: {exc}"
        print(f"asgi-cache: {said}", file=sys.stderr)
        return 1


async def _run(cache: Cache, args: argparse.Namespace) -> int:
    try:
        await cache.store.check()
        if args.command == "stats":
            await _stats(cache)
        elif args.command == "purge":
            await _purge(cache, args)
        else:
            await _inspect(cache, args.path, args.query, args.header)
        return 0
    finally:
        await cache.aclose()


async def _stats(cache: Cache) -> None:
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()

    def visit(key: str, size: int) -> None:
        kind = key_kind(cache.prefix, key) or "other"
        counts[kind] += 1
        sizes[kind] += size

    await cache.store.scan(namespace(cache.prefix), visit)
    print(f"prefix: {cache.prefix}")
    print(f"keys: {sum(counts.values())}")
    print(f"bytes: {sum(sizes.values())}")
    for kind in ("page", "variant", "memo", "data", "lock", "other"):
        print(f"{kind}: {counts[kind]} ({sizes[kind]} bytes)")


async def _purge(cache: Cache, args: argparse.Namespace) -> None:
    work: Callable[[], Awaitable[int]]
    if args.all:
        label, work = f"clearing {cache.prefix}", cache.clear
    elif args.path is not None:
        label = f"purging path {args.path}"
        work = partial(cache.invalidate_path, args.path)
    else:
        label = f"purging tags {', '.join(args.tag)}"
        work = partial(cache.invalidate, *args.tag)

    show = sys.stderr.isatty() if args.progress is None else args.progress
    removed = await _with_spinner(work, Spinner(sys.stderr, label) if show else None)
    print(f"removed: {removed}")


async def _with_spinner(work: Callable[[], Awaitable[T]], spinner: Spinner | None) -> T:
    """``await work()``, ticking ``spinner`` every tenth of a second meanwhile.

    The stores' purges report no progress as they go, so activity is all there is
    to show.
    """
    if spinner is None:
        return await work()
    result: list[T] = []
    async with anyio.create_task_group() as group:

        async def ticking() -> None:
            started = anyio.current_time()
            while True:
                spinner.tick(anyio.current_time() - started)
                await anyio.sleep(0.1)

        group.start_soon(ticking)
        try:
            result.append(await work())
        finally:
            group.cancel_scope.cancel()
    spinner.done(f"{result[0]} removed")
    return result[0]


async def _inspect(cache: Cache, path: str, query: str, headers: list[tuple[bytes, bytes]]) -> None:
    key = page_key(cache.prefix, path, query.encode("latin-1", "replace"), headers)
    print(f"key: {key}")
    data = await cache.store.get(key)
    if data is not None and data.startswith(b"AV"):
        try:
            record: VaryRecord | None = decode_record(data)
        except CorruptEntry:
            record = None
        if record is not None:
            names = ", ".join(name.decode() for name in record.names)
            print(f"varies on: {names}")
            key = variant_key(key, record.names, request_values(headers, record.names))
            print(f"variant key: {key}")
            data = await cache.store.get(key)
    if data is None:
        print("stored: no")
        return
    try:
        entry = decode(data)
    except CorruptEntry as exc:
        print(f"stored: unreadable ({exc})")
        return
    now = cache.clock()
    age = entry.age(now)
    left = entry.fresh_for - age
    print("stored: yes")
    print(f"status: {entry.status}")
    print(f"age: {age:.0f}")
    print(f"fresh for: {max(left, 0.0):.0f}" + ("" if left > 0 else " (stale)"))
    print(f"size: {len(data)}")
    print(f"body bytes: {len(entry.body)}")
    print("headers:")
    for name, value in entry.headers:
        print(f"  {name.decode('latin-1')}: {value.decode('latin-1')}")
