"""The in-memory examples do what their docstrings promise, through real HTTP.

Each test starts the example's own ``app`` (its lifespan included) with a TestClient; the
memory store starts empty with each start, since the middleware closes it at shutdown.  The
examples' expensive sleeps are set to zero: calls are counted, never timed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest
from starlette.testclient import TestClient

from asgi_cache import Cache
from examples import (
    dashboard_app,
    json_values,
    language_app,
    memory_app,
    slow_memory,
    starlette_app,
)
from tests.helpers import MakeCache, is_hit
from tests.servers import ROOT


@contextmanager
def started(example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The example's app, running, with its call counts at zero, its cache empty and no delays.

    A memory store keeps its entries across lifespans, and an example's cache lives as
    long as its module: each test starts from an empty one.
    """
    if hasattr(example, "DELAY"):
        monkeypatch.setattr(example, "DELAY", 0.0)
    example.CALLS.clear()
    with TestClient(example.app) as client:
        cache = getattr(example, "cache", None)
        if isinstance(cache, Cache):
            assert client.portal is not None
            client.portal.call(cache.clear)
        yield client


# -- examples/memory_app.py: views and memoized functions in memory ------------------------


def test_time_second_call_is_a_hit_with_the_same_time(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(memory_app, monkeypatch) as client:
        first = client.get("/time")
        second = client.get("/time")
    assert is_hit(second)
    assert second.json() == first.json()
    assert memory_app.CALLS["time"] == 1


def test_search_is_cached_per_query_string(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(memory_app, monkeypatch) as client:
        client.get("/search", params={"q": "shoes", "page": 2})
        reordered = client.get("/search?page=2&q=shoes")
        other = client.get("/search", params={"q": "hats"})
    assert is_hit(reordered)
    assert reordered.json() == {"q": "shoes", "page": 2}
    assert not is_hit(other)
    assert other.json() == {"q": "hats", "page": 1}
    assert memory_app.CALLS["search"] == 2


def test_user_stats_are_computed_once_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(memory_app, monkeypatch) as client:
        first = client.get("/users/123/stats")
        second = client.get("/users/123/stats")
        client.get("/users/456/stats")
    assert first.json() == second.json() == {"user_id": 123, "score": 42}
    assert memory_app.CALLS["stats:123"] == 1
    assert memory_app.CALLS["stats:456"] == 1


def test_user_update_forgets_that_users_stats_only(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(memory_app, monkeypatch) as client:
        client.get("/users/123/stats")
        client.get("/users/456/stats")
        update = client.post("/users/123")
        client.get("/users/123/stats")
        client.get("/users/456/stats")
    assert update.json()["forgotten"] == 1
    assert memory_app.CALLS["stats:123"] == 2
    assert memory_app.CALLS["stats:456"] == 1


def test_forgetting_all_stats_recomputes_every_user(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(memory_app, monkeypatch) as client:
        client.get("/users/1/stats")
        client.get("/users/2/stats")
        forgotten = client.delete("/stats")
        client.get("/users/1/stats")
        client.get("/users/2/stats")
    assert forgotten.json() == {"forgotten": 2}
    assert memory_app.CALLS["stats:1"] == memory_app.CALLS["stats:2"] == 2


# -- examples/dashboard_app.py: per-user pages, query-keyed lists ---------------------------


def as_user(user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {user}"}


def test_dashboard_differs_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(dashboard_app, monkeypatch) as client:
        alice = client.get("/dashboard", headers=as_user("123"))
        bob = client.get("/dashboard", headers=as_user("456"))
        anonymous = client.get("/dashboard")
    assert alice.json() == {"hello": "123"}
    assert bob.json() == {"hello": "456"}
    assert anonymous.json() == {"hello": "anon"}


def test_dashboard_second_call_of_a_user_is_a_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(dashboard_app, monkeypatch) as client:
        client.get("/dashboard", headers=as_user("123"))
        second = client.get("/dashboard", headers=as_user("123"))
    assert is_hit(second)
    assert second.json() == {"hello": "123"}
    assert "private" in second.headers["cache-control"]
    assert dashboard_app.CALLS["dashboard:123"] == 1


def test_dashboard_refresh_of_one_user_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(dashboard_app, monkeypatch) as client:
        client.get("/dashboard", headers=as_user("123"))
        client.get("/dashboard", headers=as_user("456"))
        refresh = client.post("/users/123/refresh")
        mine = client.get("/dashboard", headers=as_user("123"))
        theirs = client.get("/dashboard", headers=as_user("456"))
    assert refresh.json() == {"user": "123", "removed": 1}
    assert not is_hit(mine)
    assert is_hit(theirs)
    assert dashboard_app.CALLS["dashboard:123"] == 2
    assert dashboard_app.CALLS["dashboard:456"] == 1


def test_items_are_keyed_on_the_canonical_query(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(dashboard_app, monkeypatch) as client:
        first = client.get("/items?page=2&size=10")
        reordered = client.get("/items?size=10&page=2")
        other = client.get("/items?page=3&size=10")
    assert is_hit(reordered)
    assert reordered.json() == first.json()
    assert not is_hit(other)
    assert dashboard_app.CALLS["items"] == 2


# -- examples/slow_memory.py: fastapi-cache2's in-memory app --------------------------------


def test_slow_memory_second_call_is_a_hit_with_the_same_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with started(slow_memory, monkeypatch) as client:
        first = client.get("/slow", params={"q": 42})
        second = client.get("/slow", params={"q": 42})
    assert is_hit(second)
    assert second.json() == first.json()
    assert slow_memory.CALLS["slow"] == 1


def test_slow_memory_clear_without_namespace_empties_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CACHE_PURGE_TOKEN", "secret")
    with started(slow_memory, monkeypatch) as client:
        client.get("/slow", params={"q": 42})
        cleared = client.delete("/cache/clear", headers={"authorization": "Bearer secret"})
        again = client.get("/slow", params={"q": 42})
    assert cleared.json()["cleared"] is True
    assert not is_hit(again)
    assert slow_memory.CALLS["slow"] == 2


def test_slow_memory_clear_refuses_a_request_without_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CACHE_PURGE_TOKEN", "secret")
    with started(slow_memory, monkeypatch) as client:
        client.get("/slow")
        refused = client.delete("/cache/clear", headers={"authorization": "Bearer guess"})
        still = client.get("/slow")
    assert refused.status_code == 403
    assert is_hit(still)


def test_slow_memory_clear_is_closed_when_no_token_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CACHE_PURGE_TOKEN", raising=False)
    with started(slow_memory, monkeypatch) as client:
        refused = client.delete("/cache/clear", headers={"authorization": "Bearer "})
    assert refused.status_code == 403


# -- examples/language_app.py: the accept-language + user key builder -----------------------


def greet(client: TestClient, user: str, language: str) -> dict[str, str]:
    response = client.get("/greeting", headers={"x-user-id": user, "accept-language": language})
    return {"hit": str(is_hit(response)), **response.json()}


def test_greeting_is_a_hit_for_the_same_user_and_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with started(language_app, monkeypatch) as client:
        greet(client, "7", "fr")
        second = greet(client, "7", "fr")
    assert second == {"hit": "True", "user": "7", "greeting": "Bonjour"}
    assert language_app.CALLS["7:fr"] == 1


def test_greeting_differs_per_language_and_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(language_app, monkeypatch) as client:
        french = greet(client, "7", "fr")
        english = greet(client, "7", "en")
        other_user = greet(client, "8", "fr")
    assert french["greeting"] == "Bonjour"
    assert english == {"hit": "False", "user": "7", "greeting": "Hello"}
    assert other_user == {"hit": "False", "user": "8", "greeting": "Bonjour"}


def test_greeting_invalidation_of_one_user_covers_every_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with started(language_app, monkeypatch) as client:
        greet(client, "7", "fr")
        greet(client, "7", "en")
        greet(client, "8", "fr")
        removed = client.portal.call(language_app.cache.invalidate, "greeting:user:7")
        french = greet(client, "7", "fr")
        other_user = greet(client, "8", "fr")
    assert removed == 2
    assert french["hit"] == "False"
    assert other_user["hit"] == "True"


# -- examples/starlette_app.py: Starlette only -----------------------------------------------


def test_starlette_time_second_call_is_a_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    with started(starlette_app, monkeypatch) as client:
        first = client.get("/time")
        second = client.get("/time")
    assert is_hit(second)
    assert second.json() == first.json()
    assert starlette_app.CALLS["time"] == 1


def test_starlette_put_makes_the_next_get_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(starlette_app.NAMES, 1, "apple")
    with started(starlette_app, monkeypatch) as client:
        client.get("/products/1")
        client.get("/products/01")  # another spelling of product 1, stored apart
        client.put("/products/1", params={"name": "pear"})
        fresh = client.get("/products/1")
        alias = client.get("/products/01")
    assert fresh.json() == alias.json() == {"id": 1, "name": "pear"}
    assert not is_hit(fresh)
    assert not is_hit(alias)


def test_starlette_http_endpoint_under_a_mount_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with started(starlette_app, monkeypatch) as client:
        client.get("/api/status")
        second = client.get("/api/status")
    assert is_hit(second)
    assert starlette_app.CALLS["status"] == 1


# -- examples/json_values.py: low-level JSON set / get ---------------------------------------


@pytest.mark.anyio
async def test_json_values_round_trip_on_every_store(make_cache: MakeCache) -> None:
    cache: Cache = make_cache()
    assert await json_values.main(cache) == ({"x": 1}, None)


def test_json_values_script_prints_the_value_then_none() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.json_values"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "", "ASGI_CACHE_URL": "memory://"},
    )
    assert result.stdout.splitlines() == ["{'x': 1}", "None"]


# -- every example says how to run it --------------------------------------------------------

EXAMPLES = sorted(
    path.stem
    for path in (ROOT / "examples").glob("*.py")
    if path.stem not in {"__init__", "purge"}  # purge is a helper of two examples
)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_docstring_gives_its_command_through_the_venv(name: str) -> None:
    doc = (ROOT / "examples" / f"{name}.py").read_text()
    commands = (
        f".venv/bin/python -m uvicorn examples.{name}:app",
        f".venv/bin/python -m examples.{name}",
    )
    assert any(command in doc for command in commands)
