"""asgi-cache: an HTTP response cache for Starlette and FastAPI, as a pure ASGI middleware."""

__version__ = "0.1.0"
