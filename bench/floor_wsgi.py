"""``annotate.wsgi`` with ``bench/floor_urls.py`` as the URLconf (the benchmark's floor view added)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
settings.ROOT_URLCONF = "bench.floor_urls"
