"""The edges of every request (issue 12, item 7): JSON nesting and numbers bounded before anything
reads them, ids and numbers in a query range-checked, personal answers never cached."""

import re

import pytest

from pbschool.extensions import db
from tests.accounts.test_api import error_code
from tests.exams.conftest import make_bank, make_exam


def _deep(levels, inner="1"):
    return "[" * levels + inner + "]" * levels


@pytest.mark.parametrize("levels", [33, 400, 5000])
def test_deeply_nested_json_is_a_clear_400_at_every_json_endpoint(api, make, levels):
    """Reproduction: a JSON body nested ~400 levels deep made every JSON endpoint answer 500."""
    make.user("liuzq")
    api.token("liuzq")
    body = '{"username": ' + _deep(levels) + ', "password": "x"}'
    writes = [(rule, method) for rule in api.client.application.url_map.iter_rules()
              if rule.rule.startswith("/api/") for method in rule.methods & {"POST", "PUT"}]
    assert len(writes) > 10
    for rule, method in writes:
        path = re.sub(r"<(?:int:)?[a-z_]+>", "1", rule.rule)
        response = api.client.open(path, method=method, data=body, content_type="application/json",
                                   headers=api.headers)
        assert response.status_code == 400, (path, response.status_code)
        assert error_code(response) == "too_deep"


def test_nesting_within_the_bound_and_brackets_inside_strings_are_fine(api, make):
    make.user("liuzq")
    api.token("liuzq")
    response = api.client.post("/api/v1/tokens", content_type="application/json",
                               data='{"username": "liuzq", "password": "' + "[" * 500 + '", "x": ' + _deep(30) + "}")
    assert response.status_code == 401 and error_code(response) == "invalid_credentials"


def test_the_bound_is_32_levels_and_brackets_in_strings_do_not_count(client):
    def post(levels, inner="1"):
        body = '{"username": ' + _deep(levels - 1, inner) + ', "password": "x"}'
        return client.post("/api/v1/tokens", data=body, content_type="application/json")

    assert error_code(post(32)) == "invalid_field"  # parsed: 32 levels are allowed
    assert error_code(post(33)) == "too_deep"
    assert error_code(post(32, inner='"' + "[{" * 100 + '\\"]"')) == "invalid_field"
    assert error_code(post(33, inner='"]]]]]"')) == "too_deep"


def test_a_body_over_the_form_limit_is_refused_before_parsing(app_factory):
    app = app_factory(MAX_FORM_KB=1)
    response = app.test_client().post("/api/v1/tokens", data="[" * 5000, content_type="application/json")
    assert response.status_code == 413 and error_code(response) == "too_large"


@pytest.mark.parametrize("number", ["2147483648", "-2147483648", "99999999999999999999999", "1e400", "NaN",
                                    "Infinity", "3.5e10"])
def test_numbers_beyond_a_database_integer_in_a_body_are_400(api, make, app, number):
    """Reproduction: a bank id of 2**31 in POST /api/v1/exams was a database error."""
    make.user("boss", role="admin")
    make_bank()
    api.token("boss")
    body = ('{"title": "测试", "time_limit_seconds": 600, "max_attempts": 1, "pass_score": 60, '
            '"points_on_pass": 1, "sections": [{"bank": ' + number + ', "count": 1, "points_each": 1}]}')
    response = api.client.post("/api/v1/exams", data=body, content_type="application/json", headers=api.headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert error_code(response) in ("out_of_range", "bad_json")


def test_ids_beyond_a_database_integer_in_urls_and_queries(api, client, auth, make):
    """Reproduction: ?branch=2147483648 on the results page was a 500."""
    admin = make.user("boss", role="admin")
    exam = make_exam(make_bank())
    api.token("boss")
    assert api.get("/attempts/2147483648").status_code == 404
    assert api.get("/me/points?limit=99999999999999999999").status_code in (200, 400)
    api.headers.clear()
    auth.login(admin.username)
    assert client.get(f"/admin/exams/{exam.id}/results?branch=2147483648").status_code == 400
    assert client.get(f"/admin/exams/{exam.id}/results?branch=-2147483649").status_code == 400
    assert client.get(f"/admin/exams/{exam.id}/results?branch=1").status_code in (200, 403)
    assert client.get("/admin/exams/2147483648/results").status_code == 404
    assert client.get("/admin/users?page=99999999999").status_code in (200, 400)


def _attempt(api, make):
    exam = make_exam(make_bank())
    make.user("liuzq")
    api.token("liuzq")
    return api.post(f"/exams/{exam.id}/attempts").get_json()["attempt_id"]


def test_personal_api_answers_are_never_cached(api, make):
    """Reproduction: /me/points, /attempts/{id} and the leaderboard carried no Cache-Control."""
    attempt = _attempt(api, make)
    for path in ("/me", "/me/points", f"/attempts/{attempt}", "/leaderboard", "/exams",
                 "/me/learning"):
        response = api.get(path)
        assert response.status_code == 200, path
        assert response.headers.get("Cache-Control") == "no-store", path
    assert api.get("/attempts/999").headers.get("Cache-Control") == "no-store"  # errors too


def test_signed_in_pages_and_downloads_are_never_cached(client, auth, make):
    user = make.user("boss", role="admin")
    exam = make_exam(make_bank())
    db.session.commit()
    auth.login(user.username)
    for path in ("/", "/points", "/account/password"):
        response = client.get(path)
        assert response.headers.get("Cache-Control") == "no-store", path
    sheet = client.get(f"/admin/exams/{exam.id}/results?format=xlsx")
    assert sheet.status_code == 200 and sheet.headers.get("Cache-Control") == "no-store"


# -- a CSP without 'unsafe-inline' --------------------------------------------------------------

def test_the_csp_allows_no_inline_style_or_script(client):
    """Reproduction: the CSP allowed inline styles ('unsafe-inline' in style-src)."""
    policy = client.get("/login").headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "style-src 'self';" in policy and "script-src 'self';" in policy


def test_no_template_or_script_writes_an_inline_style():
    """What the CSP would block (tests/e2e/test_csp.py watches the pages in Chromium): a style
    attribute or element in a template, an inline script, or a script writing a style attribute."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "pbschool"
    found = []
    for path in root.glob("**/templates/**/*.html"):
        text = path.read_text(encoding="utf-8")
        found += [f"{path}: {m.group()}" for m in re.finditer(r"\sstyle\s*=|<style", text)]
        for script in re.finditer(r"<script\b[^>]*>", text):
            if "src=" not in script.group() and 'type="application/json"' not in script.group():
                found.append(f"{path}: {script.group()}")
    for path in root.glob("static/js/*.js"):
        text = path.read_text(encoding="utf-8")
        found += [f"{path}: {m.group()}" for m in re.finditer(r"setAttribute\(\s*['\"]style|style=|cssText", text)]
    assert found == []


def test_bars_take_their_width_from_a_class(app):
    from pbschool.web import pct_class

    assert [pct_class(v) for v in (0, 37.5, 100, 140, -3, None, "x", float("nan"))] == \
        ["pct-0", "pct-38", "pct-100", "pct-100", "pct-0", "pct-0", "pct-0", "pct-0"]
    from pathlib import Path

    text = (Path(app.static_folder) / "css" / "app.css").read_text(encoding="utf-8")
    assert all(f".pct-{i} {{ width: {i}%; }}" in text for i in range(101))


def test_ids_beyond_a_database_integer_in_forms(client, auth, make):
    admin = make.user("boss", role="admin")
    make.user("liuzq")
    auth.login(admin.username)
    assert client.get("/points/award?member=99999999999").status_code == 200
    response = client.post("/points/award", data={"member": "99999999999", "points": "1", "reason": "测试",
                                                  "key": "k" * 32, "rule": "99999999999"})
    assert response.status_code in (200, 400)
    exam = make_exam(make_bank())
    response = client.post(f"/admin/exams/{exam.id}/marking", data={"score-99999999999": "1", "score-²": "1"})
    assert response.status_code in (200, 302)
    from tests.courses.conftest import CourseMaker

    course = CourseMaker().course()
    response = client.post(f"/admin/courses/{course.id}/required", data={"branches": ["99999999999", "²"]})
    assert response.status_code in (200, 302)
