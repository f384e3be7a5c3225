"""Store URLs as they may be shown: in a log line or an error, never with a password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """``url`` without its password (``redis://user:***@host/0``), fit for a log or an error."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:  # not a URL at all: say nothing of it but its scheme
        return url.partition("://")[0] + "://..."
