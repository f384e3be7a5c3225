"""``@cached`` / ``@invalidates``: return the function as callers read it, reject bad
arguments by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from asgi_cache import cached, invalidates
from asgi_cache.markers import CacheRule, cache_rule, invalidation_rule

# The same function, as callers and frameworks read it


def make_plain() -> Callable[..., Any]:
    def endpoint() -> str:
        return "plain"

    return endpoint


def make_coroutine() -> Callable[..., Any]:
    async def endpoint() -> str:
        return "coroutine"

    return endpoint


@pytest.mark.parametrize("make", [make_plain, make_coroutine], ids=["def", "async-def"])
@pytest.mark.parametrize(
    "marker",
    [cached(), cached(30, tags=("products",), vary=("accept-language",)), invalidates("products")],
    ids=["cached", "cached-with-arguments", "invalidates"],
)
def test_a_marker_returns_the_function_as_it_reads_and_runs(
    make: Callable[[], Callable[..., Any]], marker: Callable[[Any], Any]
) -> None:
    fn = make()
    marked = marker(fn)
    assert inspect.unwrap(marked) is fn
    assert inspect.signature(marked) == inspect.signature(fn)
    assert (marked.__name__, marked.__qualname__, marked.__module__, marked.__doc__) == (
        fn.__name__,
        fn.__qualname__,
        fn.__module__,
        fn.__doc__,
    )
    assert marked.__globals__ is fn.__globals__
    assert inspect.iscoroutinefunction(marked) is inspect.iscoroutinefunction(fn)
    result = marked()
    if inspect.iscoroutine(result):
        result.close()
    else:
        assert result == "plain"


def test_a_marked_class_is_returned_as_it_is() -> None:
    class Page:
        pass

    assert cached()(Page) is Page


def test_a_marked_async_function_is_still_a_coroutine_function() -> None:
    @cached(10)
    async def endpoint() -> None: ...

    assert inspect.iscoroutinefunction(endpoint)


def test_cached_records_its_arguments() -> None:
    @cached(30, tags=("product:{pid}",), vary=("Accept-Language",), cache_control="public")
    def endpoint() -> None: ...

    rule = cache_rule(endpoint, "GET")
    assert isinstance(rule, CacheRule)
    assert rule.ttl == 30.0
    assert rule.tags == ("product:{pid}",)
    assert rule.vary == ("accept-language",)
    assert rule.cache_control == "public"


def test_invalidates_records_its_tags() -> None:
    @invalidates("products", "product:{pid}")
    def endpoint() -> None: ...

    rule = invalidation_rule(endpoint, "POST")
    assert rule is not None
    assert rule.tags == ("products", "product:{pid}")


def test_an_unmarked_function_has_no_rule() -> None:
    endpoint = make_plain()
    assert cache_rule(endpoint, "GET") is None
    assert invalidation_rule(endpoint, "POST") is None


@pytest.mark.parametrize("ttl", [1, 0.5, 3600, 1e9])
def test_a_positive_ttl_is_accepted(ttl: float) -> None:
    @cached(ttl)
    def endpoint() -> None: ...

    rule = cache_rule(endpoint, "GET")
    assert rule is not None
    assert rule.ttl == ttl


@pytest.mark.parametrize(
    "tag", ["products", "product:{pid}", "shop:{shop_id}:item:{item_id}", "{{literal}}"]
)
def test_well_formed_tags_are_accepted(tag: str) -> None:
    @cached(tags=(tag,))
    def endpoint() -> None: ...

    assert cache_rule(endpoint, "GET") is not None


# Errors at decoration time, naming the function


def untyped(value: object) -> Any:
    """``value`` typed as ``Any``, to hand a marker an argument of the wrong type."""
    return value


def decorate(marker: Callable[[], Callable[[Any], Any]]) -> None:
    """Apply ``marker()`` to a function called ``list_products``, as ``@marker`` would."""

    @marker()
    def list_products() -> None: ...


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        pytest.param(lambda: cached(-1), ValueError, id="negative-ttl"),
        pytest.param(lambda: cached(0), ValueError, id="zero-ttl"),
        pytest.param(lambda: cached(float("nan")), ValueError, id="nan-ttl"),
        pytest.param(lambda: cached(untyped("60")), TypeError, id="string-ttl"),
        pytest.param(lambda: cached(True), TypeError, id="bool-ttl"),
        pytest.param(lambda: cached(vary=("accept language",)), ValueError, id="vary-with-space"),
        pytest.param(lambda: cached(vary=("x:y",)), ValueError, id="vary-with-colon"),
        pytest.param(lambda: cached(vary=("",)), ValueError, id="vary-empty"),
        pytest.param(lambda: cached(vary="accept-language"), TypeError, id="vary-one-string"),
        pytest.param(lambda: cached(statuses=(200, 500)), ValueError, id="status-500"),
        pytest.param(lambda: cached(statuses=(503,)), ValueError, id="status-503"),
        pytest.param(lambda: cached(statuses=(200, 600)), ValueError, id="status-600"),
        pytest.param(lambda: cached(cache_control="public\nx: y"), ValueError, id="cc-newline"),
        pytest.param(lambda: cached(cache_control="public\r"), ValueError, id="cc-return"),
        pytest.param(lambda: cached(max_body_size=0), ValueError, id="max-body-size-zero"),
        pytest.param(lambda: cached(max_body_size=-1), ValueError, id="max-body-size-negative"),
        pytest.param(
            lambda: cached(max_body_size=untyped(1.5)), ValueError, id="max-body-size-float"
        ),
        pytest.param(
            lambda: cached(max_body_size=untyped("1MB")), ValueError, id="max-body-size-str"
        ),
        pytest.param(lambda: cached(shared=untyped("yes")), TypeError, id="shared-not-bool"),
        pytest.param(lambda: cached(shared=True), ValueError, id="shared-without-key"),
        pytest.param(
            lambda: cached(key=str, cache_control="public, max-age=60"),
            ValueError,
            id="key-route-public-without-shared",
        ),
        pytest.param(
            lambda: cached(key=str, cache_control="s-maxage=60"),
            ValueError,
            id="key-route-s-maxage-without-shared",
        ),
    ],
)
def test_a_bad_cached_argument_fails_at_decoration_naming_the_function(
    marker: Callable[[], Callable[[Any], Any]], error: type[Exception]
) -> None:
    with pytest.raises(error, match="list_products"):
        decorate(marker)


@pytest.mark.parametrize(
    "marker",
    [
        pytest.param(lambda: cached(tags=("",)), id="empty-tag"),
        pytest.param(lambda: cached(tags=("product:{pid.x}",)), id="attribute-placeholder"),
        pytest.param(lambda: cached(tags=("product:{0}",)), id="positional-placeholder"),
        pytest.param(lambda: cached(tags=("product:{}",)), id="empty-placeholder"),
        pytest.param(lambda: cached(tags=("product:{pid!r}",)), id="conversion-placeholder"),
        pytest.param(lambda: cached(tags=("product:{pid:>5}",)), id="format-spec-placeholder"),
        pytest.param(lambda: cached(tags=("product:{pid[0]}",)), id="index-placeholder"),
        pytest.param(lambda: cached(tags=("product:{pid",)), id="unclosed-placeholder"),
        pytest.param(lambda: invalidates(""), id="invalidates-empty-tag"),
        pytest.param(lambda: invalidates("product:{pid.x}"), id="invalidates-attribute"),
        pytest.param(lambda: invalidates("product:{0}"), id="invalidates-positional"),
        pytest.param(lambda: invalidates("product:{pid!r}"), id="invalidates-conversion"),
    ],
)
def test_a_bad_tag_fails_at_decoration_naming_the_function(
    marker: Callable[[], Callable[[Any], Any]],
) -> None:
    with pytest.raises(ValueError, match="list_products"):
        decorate(marker)


def test_a_key_route_may_be_public_when_it_says_shared() -> None:
    @cached(key=str, cache_control="public, max-age=60", shared=True)
    def page() -> None: ...

    rule = cache_rule(page, "GET")
    assert rule is not None
    assert rule.shared


def test_a_key_route_is_not_shared_unless_it_says_so() -> None:
    @cached(key=str, cache_control="max-age=60")
    def page() -> None: ...

    rule = cache_rule(page, "GET")
    assert rule is not None
    assert not rule.shared


def test_tags_given_as_one_string_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="list_products"):
        decorate(lambda: cached(tags="products"))


def test_a_tag_that_is_not_a_string_fails_naming_the_function() -> None:
    with pytest.raises(ValueError, match="list_products"):
        decorate(lambda: cached(tags=("products", untyped(1))))


def test_the_error_names_a_method_by_its_qualified_name() -> None:
    with pytest.raises(ValueError, match=r"ProductPage\.get"):

        class ProductPage:
            @cached(tags=("",))
            def get(self) -> None: ...
