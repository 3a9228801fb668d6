"""gunicorn's settings for the dashboard (`make serve`; gunicorn reads this file by itself when
started from this folder). Every value can be overridden on gunicorn's command line."""

from __future__ import annotations

import multiprocessing
import os

wsgi_app = "dashboard.wsgi:application"
bind = [os.environ.get("DASHBOARD_BIND", "127.0.0.1:8000")]
# Pages spend their time in the database and in Python: gunicorn's rule of thumb, two workers
# per core plus one, keeps every core busy while some workers wait on SQL.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1))
# Load the app once in the master: a missing SECRET_KEY or a bad setting stops gunicorn at once
# with its message, instead of every worker failing to boot in turn; workers share its memory.
preload_app = True
# A 100,000-service CSV export streams for a while; slower than this is a stuck worker.
timeout = 60
graceful_timeout = 20
# Recycle workers now and then, so a slow leak can never grow without bound.
max_requests = 2000
max_requests_jitter = 200
accesslog = os.environ.get("DASHBOARD_ACCESS_LOG") or None
errorlog = "-"
# gunicorn's control socket sits at one path in the home folder, shared by every gunicorn of the
# user (a test's, a load test's, the real one); nothing here uses it.
control_socket_disable = True
