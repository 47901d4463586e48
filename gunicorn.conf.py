"""Production server settings: ``gunicorn -c gunicorn.conf.py wsgi:app`` (see README, Deployment)."""

import multiprocessing
import os

# Production unless said otherwise: Secure cookies, and no start without SECRET_KEY.
os.environ.setdefault("PBSCHOOL_ENV", "production")

bind = os.environ.get("PBSCHOOL_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("PBSCHOOL_THREADS", "4"))
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never grows into an outage.
max_requests = 5000
max_requests_jitter = 500
accesslog = os.environ.get("PBSCHOOL_ACCESS_LOG", "-")
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
