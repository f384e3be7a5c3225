"""Purgers: how an invalidation reaches the cache in front (Varnish, a CDN).

:class:`Purger` is the interface (one ``purge`` method); :class:`VarnishPurger`
speaks to Varnish with vmod xkey, :class:`HTTPPurger` to any purge API
described by a URL template (Fastly's and Cloudflare's are configurations of
it, see :func:`fastly` and :func:`cloudflare`).  The cache calls its purgers
on every invalidation, as :mod:`asgi_cache.purging` describes.
"""

from asgi_cache.purgers.base import Purge, Purger
from asgi_cache.purgers.http import HTTPPurger, cloudflare, fastly
from asgi_cache.purgers.varnish import VarnishPurger

__all__ = ["HTTPPurger", "Purge", "Purger", "VarnishPurger", "cloudflare", "fastly"]
