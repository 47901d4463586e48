"""The save path's ceiling (issue 13): a bare Flask app whose one endpoint reads a JSON body, upserts
one row and answers JSON — no auth, no checks, no extensions but Flask-SQLAlchemy. `make bench`
serves it under the repository's gunicorn.conf.py, on the same PostgreSQL server and database as the
real app (same engine options), and compares the answer save with it side by side.

    gunicorn -c gunicorn.conf.py tests.perf.bare_upsert:app     # DATABASE_URL=postgresql://...
"""

import json
import os

from flask import Flask, jsonify, request
from sqlalchemy import text

from pbschool import config
from pbschool.extensions import db  # the one gunicorn.conf.py's post_fork disposes of in each worker

TABLE = "bench_bare_upsert"
CREATE = text(f"CREATE TABLE IF NOT EXISTS {TABLE} (k integer PRIMARY KEY, v json, n integer NOT NULL)")  # noqa: S608
UPSERT = text(f"INSERT INTO {TABLE} (k, v, n) VALUES (:k, CAST(:v AS json), 1) "  # noqa: S608
              f"ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = {TABLE}.n + 1")


def create_app():
    app = Flask(__name__)
    url = config.load(os.environ.get("PBSCHOOL_INSTANCE_DIR", "/tmp"))["SQLALCHEMY_DATABASE_URI"]  # noqa: S108
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = config._engine_options(url)  # the app's own pool settings
    db.init_app(app)

    @app.put("/upsert/<int:k>")
    def upsert(k):
        data = request.get_json()
        db.session.execute(UPSERT, {"k": k, "v": json.dumps(data["answer"])})
        db.session.commit()
        return jsonify({"saved": data["answer"]})

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    with app.app_context():
        db.session.execute(CREATE)
        db.session.commit()
    return app


app = create_app()
