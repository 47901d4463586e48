"""Redirects stay on the site (issue 12, item 3): every redirect target taken from the request goes
through web.safe_next, which allows a local path only; no trick gives another host or a 500."""

import pytest

from pbschool.courses import services as courses
from pbschool.extensions import db
from tests.courses.conftest import CourseMaker
from tests.factories import PASSWORD

# Each would leave the site in some browser, or break the Location header.
TRICKS = ["//evil.example", "/%09/evil.example", "/\t/evil.example", "/%0a/x", "/\n/x", "/%0d%0aSet-Cookie:x=1",
          "/\\evil.example", "/%5cevil.example", "/%2F/evil.example", "https://evil.example/", "javascript:alert(1)",
          "http:/evil.example", " /evil", "/ /evil.example", "/%20/evil.example", "/\u3000/evil", "/%E2%80%8B/x",
          "\x00/x", "evil.example", "", "/" + "a" * 3000]
LOCAL = ["/", "/courses", "/courses?q=a%20b", "/lessons/3#comments", "/exams/1/results?branch=2&state=x"]


@pytest.mark.parametrize("target", TRICKS)
def test_safe_next_refuses_every_trick(app, target):
    from pbschool.web import safe_next

    with app.test_request_context():
        assert safe_next(target) == "/"


def test_safe_next_keeps_a_local_path(app):
    from pbschool.web import safe_next

    with app.test_request_context():
        for target in LOCAL:
            assert safe_next(target) == target


def _login(client, next_):
    return client.post("/login", query_string={"next": next_}, data={"username": "liuzq", "password": PASSWORD})


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0a/x", "/%5C%5Cevil.example", "//evil.example",
                                    "/%0d%0aLocation:%20https://evil.example"])
def test_login_next_never_leaves_the_site_nor_fails(client, make, target):
    """Reproduction: /login?next=/%09/evil.example then a good sign-in answered 302 //evil.example,
    and /login?next=/%0a/x answered 500."""
    make.user("liuzq")
    response = client.post("/login?next=" + target, data={"username": "liuzq", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/", response.headers["Location"]


def test_login_next_to_a_local_page_is_followed(client, make):
    make.user("liuzq")
    response = _login(client, "/courses?q=a%20b")
    assert response.status_code == 302 and response.headers["Location"].startswith("/courses?q=a")


def test_comment_moderation_next_stays_on_the_site(client, auth, make):
    """Reproduction: the comment-moderation form's `next` took /%09/evil.example as well."""
    admin = make.user(role="admin")
    lesson = CourseMaker().lesson()
    comment = courses.add_comment(make.user(), lesson, "井下心得一则")
    db.session.commit()
    auth.login(admin.username)
    for target in ("/\t/evil.example", "//evil.example", "/\\evil.example", "/\n/x"):
        response = client.post(f"/admin/comments/{comment.id}", data={"action": "approve", "next": target})
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/comments", target
    response = client.post(f"/admin/comments/{comment.id}",
                           data={"action": "approve", "next": "/admin/comments?show=all"})
    assert response.headers["Location"] == "/admin/comments?show=all"


def test_language_switch_goes_back_only_to_a_page_of_ours(client):
    assert client.get("/lang/en", headers={"Referer": "http://localhost/courses?x=1"}).headers["Location"] \
        == "/courses?x=1"
    for referrer in ("http://evil.example/", "http://localhost.evil.example/x", "http://localhost/\t/evil.example",
                     "javascript:alert(1)", "http://localhost//evil.example"):
        response = client.get("/lang/en", headers={"Referer": referrer})
        assert response.status_code == 302 and response.headers["Location"] == "/", referrer
