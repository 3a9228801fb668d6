"""The production entry point (gunicorn dashboard.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

application = get_wsgi_application()

from dashboard.web.security import require_production_secret_key  # noqa: E402 (needs settings)

require_production_secret_key()
