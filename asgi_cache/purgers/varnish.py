"""Purging Varnish: xkey purges by surrogate key, bans by URL.

It speaks to the VCL in ``examples/varnish/default.vcl`` (any VCL doing the
same works): ``PURGE /`` with the keys in an ``xkey-purge`` header
(``xkey.purge``), and ``BAN /`` with a URL regex in a ``ban-url`` header
(``ban("obj.http.x-url ~ ...")``).  Keys reach every response of a cached
route, of any query or variant; the ban also reaches what Varnish stored of
the same paths from routes that are not cached here.  Every instance must
answer ``200`` for the purge to count as applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from asgi_cache.purgers.base import HTTPClient, Purge, Purger

__all__ = ["VarnishPurger", "ban_expression"]

#: Keys per ``xkey-purge`` header: well within Varnish's 8 KB header limit
#: (``http_req_hdr_len``) for keys of up to 64 bytes; longer keys are sent in
#: smaller groups.
_HEADER_BYTES = 6000


def ban_expression(paths: Iterable[str], root_path: str = "") -> str:
    """A regex matching the URLs of ``paths`` with any query (or none).

    Paths are matched as a client usually sends them, percent-encoded (RFC 3986
    §2.1), which also keeps spaces and quotes out of the ban expression.
    """
    alternatives = "|".join(re.escape(quote(root_path + path)) for path in paths)
    return f"^({alternatives})([?]|$)"


class VarnishPurger(Purger):
    """Purge a list of Varnish instances.

    :param urls: each instance's base URL (``"http://127.0.0.1:6081"``).
    :param root_path: what the application is mounted under in the URLs
        Varnish sees, prefixed to the paths it bans.
    :param headers: added to every purge request (a shared secret the VCL
        checks, say).
    :param timeout: seconds one purge request may take.
    """

    def __init__(
        self,
        urls: Iterable[str],
        *,
        root_path: str = "",
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> None:
        if isinstance(urls, str):
            urls = [urls]
        self.urls = [url.rstrip("/") for url in urls]
        if not self.urls:
            raise ValueError("VarnishPurger: give at least one Varnish URL")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"VarnishPurger: {url!r} is not an http(s) URL")
        self.root_path = root_path
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.name = "Varnish " + ", ".join(self.urls)
        self._client = HTTPClient(self.timeout)

    async def purge(self, purge: Purge) -> None:
        client = self._client.get()
        for url in self.urls:
            for group in _groups(purge.keys):
                await _send(client, "PURGE", url, {**self.headers, "xkey-purge": group})
            if purge.paths:
                ban = ban_expression(purge.paths, self.root_path)
                await _send(client, "BAN", url, {**self.headers, "ban-url": ban})

    async def aclose(self) -> None:
        await self._client.aclose()


def _groups(keys: tuple[str, ...]) -> list[str]:
    """``keys`` as space-separated header values of at most :data:`_HEADER_BYTES`."""
    groups: list[str] = []
    current: list[str] = []
    size = 0
    for key in keys:
        if current and size + len(key) + 1 > _HEADER_BYTES:
            groups.append(" ".join(current))
            current, size = [], 0
        current.append(key)
        size += len(key) + 1
    if current:
        groups.append(" ".join(current))
    return groups


async def _send(client: Any, method: str, url: str, headers: dict[str, str]) -> None:
    response = await client.request(method, url + "/", headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{method} {url}/ answered {response.status_code}")
