"""Notifications and announcements in the JSON API."""

from flask import g, request

from pbschool.api import api_route, field, json_body, ok
from pbschool.clock import isoformat
from pbschool.extensions import db
from pbschool.notices import derived, services

NOTIFICATIONS_SCHEMA = {
    "type": "object",
    "required": ["unread", "items"],
    "properties": {
        "unread": {"type": "integer"},
        "page": {"type": "integer"},
        "pages": {"type": "integer"},
        "items": {"type": "array", "items": {
            "type": "object", "required": ["id", "kind", "title", "url", "created_at", "read"],
            "properties": {"id": {"type": "integer"}, "kind": {"type": "string", "enum": list(services.TITLES)},
                           "title": {"type": "string"}, "url": {"type": "string"},
                           "created_at": {"type": "string", "format": "date-time"}, "read": {"type": "boolean"}}}},
    },
}
READ_SCHEMA = {
    "type": "object",
    "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "maxItems": services.MAX_IDS},
                   "all": {"type": "boolean"}},
}
ANNOUNCEMENT_BODY = {
    "type": "object",
    "required": ["title", "body"],
    "properties": {"title": {"type": "string"}, "body": {"type": "string"},
                   "audience": {"type": "string", "enum": ["all", "branches"]},
                   "branches": {"type": "array", "items": {"type": "string"}, "description": "branch codes"},
                   "pinned": {"type": "boolean"}, "key": {"type": "string"}},
}


@api_route("/me/notifications", summary="My notifications, newest first (?page=, 20 a page)",
           response=NOTIFICATIONS_SCHEMA, tag="notices")
def my_notifications():
    user = g.api_user
    derived.sync(user)
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), 10_000)
    found = services.notifications_page(user, page)
    return ok({"unread": services.unread_count(user), "page": found.page, "pages": found.pages,
               "items": [services.as_json(n) for n in found.items]})


@api_route("/me/notifications/read", methods=("POST",), summary="Mark my notifications read: ids, or all",
           body=READ_SCHEMA, response={"type": "object", "required": ["marked", "unread"],
                                       "properties": {"marked": {"type": "integer"}, "unread": {"type": "integer"}}},
           tag="notices")
def read_my_notifications():
    ids, everything = services.parse_read_request(json_body())
    marked = services.mark_read(g.api_user, ids, everything)
    return ok({"marked": marked, "unread": services.unread_count(g.api_user)})


@api_route("/announcements", methods=("POST",), summary="Publish an announcement (admin; secretary: own branch)",
           body=ANNOUNCEMENT_BODY, statuses=(403,), tag="notices",
           response={"type": "object", "required": ["id", "recipients"],
                     "properties": {"id": {"type": "integer"}, "recipients": {"type": "integer"}}})
def create_announcement():
    from pbschool.accounts.services import find_branch
    from pbschool.errors import DomainError

    user = g.api_user
    if not services.can_publish(user):
        raise DomainError("没有权限发布通知公告", "forbidden", 403)
    data = json_body()
    title = field(data, "title", str)
    body = field(data, "body", str)
    audience = field(data, "audience", str, required=False, default="all" if user.is_admin else "branches")
    codes = field(data, "branches", list, required=False, default=[])
    if len(codes) > 500 or not all(isinstance(c, str) and len(c) <= 64 for c in codes):
        raise DomainError("branches 应为支部代码的数组", "invalid_field", 400, field="branches")
    if not codes and audience == "branches" and user.branch_id is not None and not user.is_admin:
        ids = [user.branch_id]
    else:
        branches = [find_branch(c) for c in codes]
        if any(b is None for b in branches):
            raise DomainError("找不到所选的支部", "invalid_field", 400, field="branches")
        ids = [b.id for b in branches]
    pinned = field(data, "pinned", bool, required=False, default=False)
    key = field(data, "key", str, required=False)
    item = services.publish_announcement(user, title=title, body=body, audience=audience, branch_ids=ids,
                                         pinned=pinned, key=key)
    db.session.flush()
    return ok({"id": item.id, "recipients": item.recipient_count, "published_at": isoformat(item.published_at)})
