"""The search page: /search?q=."""

from flask import render_template, request
from flask_login import login_required

from pbschool.errors import DomainError
from pbschool.search import bp, services
from pbschool.search.text import MAX_QUERY_CHARS


@bp.route("/search")
@login_required
def results():
    q = request.args.get("q", "")
    error, found = None, []
    try:
        found = services.search(q)
    except DomainError as exc:
        error = exc.message
    return render_template("search/results.html", q=q[:MAX_QUERY_CHARS], found=found, error=error,
                           max_chars=MAX_QUERY_CHARS)
