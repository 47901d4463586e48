"""GET /api/v1/search?q= (CONTRACT.md)."""

from flask import request

from pbschool.api import api_route, ok
from pbschool.search import services
from pbschool.search.text import MAX_QUERY_CHARS

RESULT = {
    "type": "object", "required": ["results"],
    "properties": {"results": {"type": "array", "items": {
        "type": "object", "required": ["type", "id", "title", "snippet_html"],
        "properties": {"type": {"type": "string", "enum": ["course", "lesson"]}, "id": {"type": "integer"},
                       "title": {"type": "string"},
                       "snippet_html": {"type": "string",
                                        "description": "escaped text around the first match, matches in <mark>"}}}}},
}


@api_route("/search", tag="search", response=RESULT,
           summary="Published courses and lessons matching every word of q (Chinese needs no spaces), best "
                   f"first, at most {services.MAX_RESULTS}; an empty q finds nothing, a q over "
                   f"{MAX_QUERY_CHARS} characters is a 400",
           query=[{"name": "q", "in": "query", "required": False,
                   "schema": {"type": "string"}}])
def search():
    results = services.search(request.args.get("q", ""))
    return ok({"results": [{"type": r["type"], "id": r["id"], "title": r["title"],
                            "snippet_html": str(r["snippet_html"])} for r in results]})
