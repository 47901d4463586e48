"""Production server settings: ``gunicorn -c gunicorn.conf.py wsgi:app`` (see README, Deployment)."""

import multiprocessing
import os

# Production unless said otherwise: Secure cookies, and no start without SECRET_KEY and a ledger key.
os.environ.setdefault("PBSCHOOL_ENV", "production")

bind = os.environ.get("PBSCHOOL_BIND", "127.0.0.1:8000")
# Pages are CPU-bound Python: a process per core plus one, two threads each to overlap database
# waits. On the 2-core benchmark machine (PostgreSQL on the same host) this served the member home
# page and the board ~30% faster, with a lower p95, than the classic 2 x cores + 1 workers x 4 threads,
# which only contend for the cores and the GIL. With the database on its own host, try more threads.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("PBSCHOOL_THREADS", "2"))
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never grows into an outage.
max_requests = 5000
max_requests_jitter = 500
# The app is made (and its templates compiled) once, in the master, and every worker is a fork of it:
# a recycled or replaced worker starts serving at once, warm, instead of spending ~0.75 s of CPU
# importing and its first pages compiling templates. Restart (not HUP) to run a new version.
preload_app = True
accesslog = os.environ.get("PBSCHOOL_ACCESS_LOG", "-")
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def when_ready(server):
    """Compile every template in the master, so that each worker inherits them compiled."""
    app = server.app.wsgi()
    for name in app.jinja_env.list_templates(filter_func=lambda n: n.endswith(".html")):
        app.jinja_env.get_template(name)


def post_fork(server, worker):
    """A worker must not share the master's database connections (the master should hold none)."""
    from pbschool.extensions import db

    app = server.app.wsgi()
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
