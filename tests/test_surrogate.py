"""Surrogate keys: how tags are spelled in each CDN's header, within its limits."""

from __future__ import annotations

import pytest

from asgi_cache.keys import path_tag, tag_key
from asgi_cache.surrogate import FORMATS, key_field, key_format, keys_of_tags, surrogate_key

FASTLY, CLOUDFLARE, AKAMAI, XKEY = (
    FORMATS[name] for name in ("surrogate-key", "cache-tag", "edge-cache-tag", "xkey")
)


def test_true_names_surrogate_key_and_other_choices_are_case_insensitive() -> None:
    assert key_format("Cache", True) is FASTLY
    assert key_format("Cache", "Cache-Tag") is CLOUDFLARE
    assert key_format("Cache", "Edge-Cache-Tag") is AKAMAI
    assert key_format("Cache", "XKey") is XKEY
    assert key_format("Cache", False) is None


def test_an_unknown_header_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="'surrogate-key', 'cache-tag'"):
        key_format("Cache", "X-Tags")


def test_a_plain_tag_is_its_own_key() -> None:
    assert surrogate_key("product:1", FASTLY) == "product:1"
    assert surrogate_key("/products/1", CLOUDFLARE) == "/products/1"


def test_separators_percent_and_non_ascii_are_percent_encoded() -> None:
    assert surrogate_key("a b,c%d", FASTLY) == "a%20b%2Cc%25d"
    assert surrogate_key("café", FASTLY) == "caf%C3%A9"
    assert surrogate_key("", FASTLY) == "%00"


def test_akamai_keys_keep_to_its_token_characters() -> None:
    assert surrogate_key("product:1", AKAMAI) == "product%3A1"
    assert surrogate_key("/products/1", AKAMAI) == "%2Fproducts%2F1"


def test_a_key_longer_than_the_header_allows_becomes_a_stable_digest() -> None:
    long = "x" * 1025
    key = surrogate_key(long, FASTLY)
    assert key.startswith("h-") and len(key) == 34
    assert key == surrogate_key(long, FASTLY)
    assert surrogate_key("x" * 1024, FASTLY) == "x" * 1024
    assert surrogate_key("x" * 129, AKAMAI).startswith("h-")


def test_store_tags_give_the_keys_of_tags_and_paths_only() -> None:
    tags = [tag_key("shop", "product:1"), path_tag("shop", "/products/1"), "other:tag:x"]
    assert keys_of_tags("shop", tags, FASTLY) == ["product:1", "/products/1"]


def test_the_field_starts_with_the_prefix_key_and_uses_the_header_separator() -> None:
    tags = [tag_key("shop", "a"), tag_key("shop", "b"), tag_key("shop", "a")]
    assert key_field("shop", tags, FASTLY) == b"shop a b"
    assert key_field("shop", tags, CLOUDFLARE) == b"shop,a,b"


def test_keys_that_do_not_fit_give_no_field() -> None:
    too_many = [tag_key("shop", f"t{i}") for i in range(128)]  # + the prefix key
    assert key_field("shop", too_many, AKAMAI) is None
    assert key_field("shop", too_many[:127], AKAMAI) is not None
    too_long = [tag_key("shop", f"{i:04d}" + "x" * 1000) for i in range(17)]
    assert key_field("shop", too_long, FASTLY) is None
    assert key_field("shop", too_long[:15], FASTLY) is not None
