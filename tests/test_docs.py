"""The docs site's API reference covers every public name (tox -e docs builds it)."""

from __future__ import annotations

import re
from pathlib import Path

import asgi_cache

DOCS = Path(__file__).parent.parent / "docs"


def test_the_api_reference_documents_every_exported_name() -> None:
    text = (DOCS / "reference.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: asgi_cache\.(\w+)$", text, re.MULTILINE))
    assert set(asgi_cache.__all__) - documented == set()
