"""The public surface: every name exported, sorted and documented."""

from __future__ import annotations

import inspect

import asgi_cache


def test_all_is_sorted_and_unique() -> None:
    assert asgi_cache.__all__ == sorted(set(asgi_cache.__all__))


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name, value in vars(asgi_cache).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(asgi_cache.__all__)


def test_every_exported_name_resolves() -> None:
    for name in asgi_cache.__all__:
        assert getattr(asgi_cache, name) is not None


def test_the_redis_store_is_exported_lazily() -> None:
    from asgi_cache.stores.redis import RedisStore

    assert asgi_cache.RedisStore is RedisStore


def test_every_export_is_documented() -> None:
    undocumented = [
        name for name in asgi_cache.__all__ if not inspect.getdoc(getattr(asgi_cache, name))
    ]
    assert undocumented == []


def test_version_is_a_string() -> None:
    assert isinstance(asgi_cache.__version__, str)
