"""The search page: /search?q= lists what the API finds, with links and highlighted, escaped text;
the courses page carries the search box."""

import re

from pbschool.search import text


def test_the_page_lists_links_with_highlights(make, auth, client, cm):
    course = cm.course("党的建设")
    lesson = cm.lesson(course, "第一讲 学习党史", body="学习党史教育。<script>alert(1)</script>")
    hidden = cm.lesson(course, "草稿 党史", state="draft")
    auth.login(make.user("reader").username)
    page = client.get("/search?q=党史").get_data(as_text=True)
    assert f'href="/lessons/{lesson.id}"' in page
    assert f'href="/lessons/{hidden.id}"' not in page
    assert "第一讲 学习<mark>党史</mark>" in page
    assert "学习<mark>党史</mark>教育" in page
    assert "<script>alert(1)</script>" not in page
    assert 'value="党史"' in page  # the box keeps what was asked
    page = client.get("/search?q=党的建设").get_data(as_text=True)
    assert f'href="/courses/{course.id}"' in page


def test_markup_in_the_query_is_shown_as_text(make, auth, client, cm):
    auth.login(make.user("reader").username)
    response = client.get('/search?q="><script>alert(1)</script>')
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in page
    assert "没有找到" in page


def test_empty_and_too_long_queries_are_answered_in_chinese(make, auth, client):
    auth.login(make.user("reader").username)
    assert "输入一个或几个词" in client.get("/search").get_data(as_text=True)
    response = client.get("/search?q=" + "党" * (text.MAX_QUERY_CHARS + 1))
    assert response.status_code == 200
    assert f"搜索内容不能超过 {text.MAX_QUERY_CHARS} 个字" in response.get_data(as_text=True)


def test_signed_out_goes_to_login(client):
    response = client.get("/search?q=党史")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_courses_page_has_the_search_box(make, auth, client):
    auth.login(make.user("reader").username)
    page = client.get("/courses").get_data(as_text=True)
    assert re.search(r'<form class="search-box" method="get" action="/search"', page)
