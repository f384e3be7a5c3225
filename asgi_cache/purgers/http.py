"""A purge API described by a URL template: Fastly, Cloudflare, your own.

The request is built from templates (:class:`string.Template`, so JSON braces
need no escaping) where ``$keys`` is the keys space-separated, ``$keys_csv``
comma-separated, ``$keys_json`` a JSON array of them, and ``$token`` the
value of the environment variable ``token_env`` (read at each purge, so a
rotated secret is picked up; it never appears in a log line).  Keys are sent
``batch`` at a time.  A purge counts as applied when every request answers
2xx.  Paths are purged by their keys (every cached response carries its
path's), a ``clear`` by the cache's prefix key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from string import Template

from asgi_cache.purgers.base import HTTPClient, Purge, Purger

__all__ = ["HTTPPurger", "cloudflare", "fastly"]


class HTTPPurger(Purger):
    """Purge by surrogate key through an HTTP API.

    :param url: the purge endpoint (a template).
    :param method: the request method.
    :param headers: request headers (values are templates).
    :param body: the request body (a template), or ``None`` for none.
    :param token_env: the environment variable holding the API token.
    :param batch: most keys per request (Fastly takes 256, Cloudflare 100 on
        every plan, 500 on Enterprise).
    :param timeout: seconds one request may take.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
        token_env: str | None = None,
        batch: int = 256,
        timeout: float = 5.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"HTTPPurger: {url!r} is not an http(s) URL")
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"HTTPPurger: batch must be a positive integer, got {batch!r}")
        self.url = Template(url)
        self.method = method
        self.headers = {name: Template(value) for name, value in (headers or {}).items()}
        self.body = None if body is None else Template(body)
        self.token_env = token_env
        self.batch = batch
        self.timeout = float(timeout)
        self.name = f"{method} {url}"
        self._client = HTTPClient(self.timeout)

    def _token(self) -> str:
        if self.token_env is None:
            return ""
        token = os.environ.get(self.token_env)
        if not token:
            raise RuntimeError(f"the environment variable {self.token_env} is not set")
        return token

    async def purge(self, purge: Purge) -> None:
        client = self._client.get()
        keys = list(purge.keys)
        for start in range(0, len(keys), self.batch):
            group = keys[start : start + self.batch]
            values = {
                "keys": " ".join(group),
                "keys_csv": ",".join(group),
                "keys_json": json.dumps(group),
                "token": self._token(),
            }
            response = await client.request(
                self.method,
                self.url.substitute(values),
                headers={name: value.substitute(values) for name, value in self.headers.items()},
                content=None if self.body is None else self.body.substitute(values).encode(),
            )
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"{self.name} answered {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()


def fastly(service_id: str, *, token_env: str = "FASTLY_API_TOKEN") -> HTTPPurger:
    """Fastly's purge by surrogate key (``POST /service/{id}/purge``, keys in a
    ``Surrogate-Key`` header, 256 per request); responses carry
    ``Surrogate-Key`` (``Cache(surrogate_keys=True)``)."""
    return HTTPPurger(
        f"https://api.fastly.com/service/{service_id}/purge",
        headers={"Fastly-Key": "$token", "Surrogate-Key": "$keys", "Accept": "application/json"},
        token_env=token_env,
        batch=256,
    )


def cloudflare(zone_id: str, *, token_env: str = "CLOUDFLARE_API_TOKEN") -> HTTPPurger:
    """Cloudflare's purge by cache tag (``POST /zones/{id}/purge_cache`` with
    ``{"tags": [...]}``, 100 tags per request); responses carry ``Cache-Tag``
    (``Cache(surrogate_keys="Cache-Tag")``)."""
    return HTTPPurger(
        f"https://api.cloudflare.com/client/v4/zones/{zone_id}/purge_cache",
        headers={"Authorization": "Bearer $token", "Content-Type": "application/json"},
        body='{"tags": $keys_json}',
        token_env=token_env,
        batch=100,
    )
