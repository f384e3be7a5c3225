"""Misuse fails loudly and early, with a message naming the route or setting to fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI

from asgi_cache import cached, invalidates

# -- markers used without parentheses --------------------------------------------


def test_cached_used_bare_fails_at_import_naming_the_function() -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match=r"@cached on .*listing is used without parentheses: write @cached\(\)"):

        @app.get("/listing")
        @cached  # type: ignore[arg-type]
        async def listing() -> dict[str, str]:
            return {}


def test_invalidates_used_bare_fails_at_import_naming_the_function() -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match=r"@invalidates on .*update is used without parentheses: write @invalidates\(\)"):

        @app.put("/items")
        @invalidates  # type: ignore[arg-type]
        async def update() -> dict[str, str]:
            return {}


# -- arguments of other caching libraries ---------------------------------------


@pytest.mark.parametrize(
    ("argument", "hint"),
    [
        ("expire", "asgi-cache calls it ttl="),
        ("timeout", "asgi-cache calls it ttl="),
        ("key_builder", "asgi-cache calls it key="),
        ("namespace", "Cache\\(prefix=...\\)"),
        ("key_prefix", "Cache\\(prefix=...\\)"),
        ("coder", "no coder to choose"),
        ("query_string", "query string is always part of the key"),
    ],
)
def test_an_argument_of_another_library_is_answered_with_what_to_write(
    argument: str, hint: str
) -> None:
    with pytest.raises(TypeError, match=rf"@cached: unexpected keyword argument '{argument}'; "):
        cached(**{argument: 60})
    with pytest.raises(TypeError, match=hint):
        cached(**{argument: 60})


def test_an_unknown_argument_lists_the_accepted_ones() -> None:
    with pytest.raises(TypeError, match=r"'tll'.*accepted: ttl, tags, vary, key"):
        cached(tll=60)


def _endpoint() -> None:
    pass


def test_a_duration_string_ttl_is_refused_with_its_seconds() -> None:
    with pytest.raises(TypeError, match=r"not a duration string: write ttl=3600 for '1h'"):
        cached("1h")(_endpoint)  # type: ignore[arg-type]


def test_a_duration_string_in_minutes_gives_its_seconds() -> None:
    with pytest.raises(TypeError, match=r"write ttl=300 for '5m'"):
        cached(ttl="5m")(_endpoint)  # type: ignore[arg-type]
