"""Points in the JSON API: my points, and the monthly boards (晒分)."""

import gzip
import hashlib
import json

from flask import current_app, g, request
from sqlalchemy import select

from pbschool.accounts.models import User
from pbschool.accounts.services import find_branch
from pbschool.api import api_route, field, json_body, ok, require_roles
from pbschool.clock import isoformat
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import keys, queries, services
from pbschool.points.models import LedgerEntry

ME_POINTS_SCHEMA = {
    "type": "object",
    "required": ["balance", "this_month", "entries"],
    "properties": {
        "balance": {"type": "number"},
        "this_month": {"type": "number"},
        "entries": {"type": "array", "items": {
            "type": "object", "required": ["id", "points", "category", "reason", "created_at"],
            "properties": {"id": {"type": "integer"}, "points": {"type": "number"},
                           "category": {"type": "string"}, "reason": {"type": "string"},
                           "created_at": {"type": "string", "format": "date-time"}}}},
    },
}

BOARD_SCHEMA = {
    "type": "object",
    "required": ["period", "published", "rows"],
    "properties": {
        "period": {"type": "string"},
        "published": {"type": "boolean"},
        "total": {"type": "integer", "description": "how many rows the whole board has"},
        "seal": {"type": "string", "nullable": True,
                 "description": "a published month's seal (first 16 hex), as on the board page and its .xlsx"},
        "rows": {"type": "array", "items": {
            "type": "object", "required": ["rank", "username", "name", "branch", "points"],
            "properties": {"rank": {"type": "integer"}, "username": {"type": "string"},
                           "name": {"type": "string"}, "branch": {"type": "string", "nullable": True},
                           "points": {"type": "number"}}}},
    },
}


def _num(value):
    return float(value)


@api_route("/me/points", summary="My points: balance, this month, and my ledger entries (newest first)",
           response=ME_POINTS_SCHEMA, tag="points")
def me_points():
    user = g.api_user
    try:
        limit = min(max(int(request.args.get("limit", 100)), 1), 1000)
    except ValueError as exc:
        raise DomainError("limit 应为整数", "invalid_limit", 400) from exc
    entries = queries.entries_of(user, limit=limit)
    return ok({
        "balance": _num(services.balance(user)),
        "this_month": _num(queries.sum_points(user, [services.current_period()])),
        "entries": [{"id": e.id, "points": _num(e.points), "category": e.category, "reason": e.reason,
                     "created_at": isoformat(e.created_at), "kind": e.kind, "period": e.period,
                     "is_veto": e.is_veto, "reverses": e.reverses_id} for e in entries],
    })


@api_route("/leaderboard", summary="A month's board (晒分): the committee's, or one branch's with ?branch=CODE. "
           "Optional ?limit=N&offset=M pages the rows (total gives their number). Sent gzip-compressed to "
           "clients that accept it, with an ETag: If-None-Match answers 304 while the board is unchanged.",
           response=BOARD_SCHEMA, statuses=(404,), tag="points")
def leaderboard():
    raw = request.args.get("period") or services.current_period()
    period = services.parse_period(raw)
    branch = None
    if request.args.get("branch"):
        branch = find_branch(request.args["branch"])
        if branch is None:
            raise DomainError("找不到该支部", "branch_not_found", 404)
    limit, offset = _page_args()

    branch_id = branch.id if branch else None

    def build():
        publication, rows = queries.board(period, branch_id)
        head = {"period": period, "published": publication is not None, "seal": keys.short(publication) or None,
                "total": len(rows)}
        rows = [{"rank": r["rank"], "username": r["username"], "name": r["name"], "branch": r["branch"],
                 "points": _num(r["points"])} for r in rows]
        return _Board(head, rows)

    board = queries.cached("api", period, branch_id, build)
    if limit is not None or offset:
        end = None if limit is None else offset + limit
        return _json_response({**board.head, "rows": board.rows[offset:end]})
    if request.if_none_match.contains(board.etag):
        response = current_app.response_class(status=304)
    elif board.gzipped is not None and "gzip" in request.accept_encodings:
        response = current_app.response_class(board.gzipped, mimetype="application/json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = current_app.response_class(board.body, mimetype="application/json")
    response.set_etag(board.etag)
    response.vary.add("Accept-Encoding")
    return response


GZIP_ABOVE = 2048


class _Board:
    """A board as the API sends it, serialised once: the cache keeps this, not a session's objects."""

    def __init__(self, head, rows):
        self.head, self.rows = head, rows
        self.body = _dumps({**head, "rows": rows})
        # a committee board of 10,000 members is about 1 MB of JSON and 150 kB compressed; a small one
        # is not worth compressing
        self.gzipped = gzip.compress(self.body, compresslevel=6, mtime=0) if len(self.body) > GZIP_ABOVE else None
        self.etag = hashlib.sha256(self.body).hexdigest()[:32]


def _dumps(data):
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _json_response(data):
    return current_app.response_class(_dumps(data), mimetype="application/json")


def _page_args():
    """(limit or None, offset) from the query string; a 400 for anything but whole numbers in range."""
    try:
        limit = request.args.get("limit")
        limit = None if limit in (None, "") else int(limit)
        offset = int(request.args.get("offset") or 0)
    except ValueError as exc:
        raise DomainError("limit 和 offset 应为整数", "invalid_page", 400) from exc
    if (limit is not None and not 1 <= limit <= 10000) or not 0 <= offset <= 10**7:
        raise DomainError("limit 应在 1–10000 之间，offset 不能为负", "invalid_page", 400)
    return limit, offset


AWARD_BODY = {
    "type": "object", "required": ["username", "points", "reason"],
    "properties": {"username": {"type": "string"}, "points": {"type": "number"}, "reason": {"type": "string"},
                   "category": {"type": "string"}, "veto": {"type": "boolean"},
                   "key": {"type": "string", "description": "one-time key: the same key twice writes once"}},
}
ENTRY_SCHEMA = {
    "type": "object", "required": ["id", "points", "category", "reason", "created_at"],
    "properties": {"id": {"type": "integer"}, "points": {"type": "number"}, "category": {"type": "string"},
                   "reason": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                   "is_veto": {"type": "boolean"}},
}


@api_route("/points/awards", methods=("POST",), summary="Award (positive) or deduct (negative) a member's points "
           "with a reason (secretary: own branch; admin: anyone)", body=AWARD_BODY, response=ENTRY_SCHEMA,
           statuses=(404,), tag="points")
def award_points():
    require_roles("secretary", "admin")
    data = json_body()
    username = field(data, "username", str)
    points = field(data, "points", (int, float))
    reason = field(data, "reason", str)
    category = field(data, "category", str, required=False, default="作用发挥")
    veto = field(data, "veto", bool, required=False, default=False)
    key = field(data, "key", str, required=False)
    if key is not None and not 1 <= len(key) <= 64:
        raise DomainError("key 应为 1–64 个字符", "invalid_field", 400, field="key")
    member = db.session.scalar(select(User).where(User.username == username))
    if member is None:
        raise DomainError("找不到该用户", "user_not_found", 404, field="username")
    source_key = f"api:{g.api_user.id}:{key}" if key else None
    entry = services.award(member, str(points), reason, actor=g.api_user, category=category, is_veto=veto,
                           source_key=source_key)
    if entry is None:  # the same key again: the entry it wrote the first time
        entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.source_key == source_key))
    return ok({"id": entry.id, "points": _num(entry.points), "category": entry.category, "reason": entry.reason,
               "created_at": isoformat(entry.created_at), "is_veto": entry.is_veto})
