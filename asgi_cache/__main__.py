"""``python -m asgi_cache``: the operators' command line (see :mod:`asgi_cache.cli`)."""

import sys

from asgi_cache.cli import main

sys.exit(main())
