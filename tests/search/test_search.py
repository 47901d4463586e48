"""Search (issue 14 part 7): published courses and lessons by title and text, Chinese without
spaces, every role sees only what members may read, sanitised highlighted snippets, bounded input;
on SQLite and on PostgreSQL (every test runs on both backends)."""

import pytest

from pbschool.courses import services as courses
from pbschool.extensions import db
from pbschool.search import services, text
from pbschool.search.models import SearchDoc

BODY = "## 导读\n\n学习党史教育是一堂必修课。**新时代**的党员要把学习成果转化为工作动力。"


def titles(api, q):
    response = api.get("/search", query_string={"q": q})
    assert response.status_code == 200, response.get_json()
    return [r["title"] for r in response.get_json()["results"]]


@pytest.fixture
def member_api(make, api):
    api.token(make.user("searcher"))
    return api


def test_chinese_without_spaces_two_characters_and_several_words(member_api, cm):
    course = cm.course("党的建设")
    cm.lesson(course, "第一讲 学习党史", body=BODY)
    cm.lesson(course, "第二讲 安全生产", body="班前会讲安全，讲责任落实。")
    assert titles(member_api, "党史") == ["第一讲 学习党史"]
    assert titles(member_api, "党史 学习") == ["第一讲 学习党史"]       # both words, anywhere
    assert titles(member_api, "  学习   党史  ") == ["第一讲 学习党史"]
    assert titles(member_api, "党史 安全") == []                       # no lesson has both
    assert titles(member_api, "新时代") == ["第一讲 学习党史"]          # in the text, not the title
    assert titles(member_api, "落实") == ["第二讲 安全生产"]            # two characters in the text only
    assert sorted(titles(member_api, "讲")) == ["第一讲 学习党史", "第二讲 安全生产"]  # one character
    assert titles(member_api, "党的建设") == ["党的建设"]               # the course by its title
    assert titles(member_api, "时代党") == []                          # its grams are there, it is not


def test_the_text_not_the_markup_is_searched(member_api, cm):
    cm.lesson(cm.course("课程"), "第一讲", body="**重点**：[链接](https://example.org/strong) `代码`")
    assert titles(member_api, "重点") == ["第一讲"]
    assert titles(member_api, "strong") == []  # the link's address is markup, not text a reader sees
    assert titles(member_api, "**") == []
    assert titles(member_api, "example") == []


def test_latin_letters_match_in_any_case_and_width(member_api, cm):
    cm.lesson(cm.course("课程"), "Marxism 导读", body="ＰＤＦ 讲义")
    assert titles(member_api, "marxism") == ["Marxism 导读"]
    assert titles(member_api, "MARX") == ["Marxism 导读"]
    assert titles(member_api, "pdf") == ["Marxism 导读"]


def test_title_matches_come_first(member_api, cm):
    course = cm.course("课程")
    cm.lesson(course, "第一讲", body="这里讲党史。")
    cm.lesson(course, "党史专题", body="正文。")
    assert titles(member_api, "党史") == ["党史专题", "第一讲"]


@pytest.mark.parametrize("role", ["member", "secretary", "lecturer", "admin"])
def test_only_what_members_may_read_for_every_role(make, api, cm, role):
    """Drafts, submitted and returned lessons, pending edits, lessons of unpublished courses, and
    unpublished courses never appear, not even to their author or an admin."""
    lecturer = make.user("author", role="lecturer")
    seen = cm.course("公开课程 党史")
    hidden = cm.course("未发布课程 党史", published=False)
    cm.lesson(seen, "已发布 党史")
    for state in ("draft", "submitted", "returned"):
        cm.lesson(seen, f"{state} 党史", state=state, author=lecturer)
    cm.lesson(hidden, "未发布课程的课时 党史")
    edited = cm.lesson(seen, "旧标题", body="旧正文", author=lecturer)
    courses.update_lesson(edited, title="新标题 党史", minutes=20, body="待审核的 党史 正文", actor=lecturer)
    db.session.commit()
    viewer = lecturer if role == "lecturer" else make.user(f"viewer-{role}", role=role)
    api.token(viewer)
    assert titles(api, "党史") == ["公开课程 党史", "已发布 党史"]
    assert titles(api, "旧正文") == ["旧标题"]  # members still read the published version
    # the pending edit is published: its text is found now, the old text no longer
    courses.submit_lesson(edited, lecturer)
    admin = make.user("publisher", role="admin")
    courses.publish_lesson(edited, admin, edited.revision)
    db.session.commit()
    assert "新标题 党史" in titles(api, "党史")
    assert titles(api, "旧正文") == []
    # withdrawn: gone at once
    courses.withdraw_lesson(edited, admin, "过时")
    db.session.commit()
    assert "新标题 党史" not in titles(api, "党史")


def test_snippets_are_escaped_then_marked(member_api, cm):
    body = "前言 <script>alert('x')</script> 党史 & <b>粗</b> <img src=x onerror=alert(1)>"
    cm.lesson(cm.course("课程"), "<i>标题</i>", body=body)
    results = member_api.get("/search", query_string={"q": "党史"}).get_json()["results"]
    assert len(results) == 1
    snippet = results[0]["snippet_html"]
    assert "<mark>党史</mark>" in snippet
    assert "<script" not in snippet and "<img" not in snippet and "<b>" not in snippet
    assert results[0]["title"] == "<i>标题</i>"  # plain text: the client escapes it
    # markup in the query is text: it is escaped, never echoed as HTML
    results = member_api.get("/search", query_string={"q": "<b>粗</b>"}).get_json()["results"]
    assert all("<b>" not in r["snippet_html"] for r in results)


def test_the_snippet_is_a_window_around_the_first_match(cm, app):
    long = "甲" * 500 + "党史学习" + "乙" * 500
    snippet = text.snippet_html(long, ["党史"])
    assert "<mark>党史</mark>" in snippet and snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < text.SNIPPET_CHARS + 40
    assert str(text.highlight("a<b>党史", ["党史", "<b"])) == "a<mark>&lt;b</mark>&gt;<mark>党史</mark>"


@pytest.mark.parametrize("q", ["%", "_", "\\", "%%", "党%史", "党_史", "\\%", "'", "\"; DROP TABLE lesson; --"])
def test_like_wildcards_and_quotes_are_plain_characters(member_api, cm, q):
    cm.lesson(cm.course("课程"), "第一讲 党史", body="普通文字。")
    assert titles(member_api, q) == []


def test_wildcard_characters_in_the_text_are_found_as_themselves(member_api, cm):
    cm.lesson(cm.course("课程"), "完成率 100%", body="字段 a_b 和 c\\d")
    assert titles(member_api, "100%") == ["完成率 100%"]
    assert titles(member_api, "a_b") == ["完成率 100%"]
    assert titles(member_api, "axb") == []
    assert titles(member_api, "c\\d") == ["完成率 100%"]


def test_bounds(member_api, cm):
    cm.lesson(cm.course("课程"), "第一讲 党史")
    assert member_api.get("/search").get_json() == {"results": []}
    assert member_api.get("/search", query_string={"q": "   "}).get_json() == {"results": []}
    assert titles(member_api, "党" * text.MAX_QUERY_CHARS) == []
    response = member_api.get("/search", query_string={"q": "党" * (text.MAX_QUERY_CHARS + 1)})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "too_long"
    # at most MAX_TERMS words count; many words never fail
    assert member_api.get("/search", query_string={"q": " ".join("党史" for _ in range(33))}).status_code == 200
    assert member_api.get("/search", query_string={"q": " ".join(chr(0x4e00 + i) for i in range(50))}) \
        .status_code == 200


def test_results_are_at_most_twenty(member_api, cm):
    course = cm.course("课程")
    for n in range(25):
        cm.lesson(course, f"第{n}讲", body="党史学习。")
    assert len(titles(member_api, "党史")) == services.MAX_RESULTS


def test_signed_out_is_refused(client):
    assert client.get("/api/v1/search?q=党史").status_code == 401


def test_the_index_follows_edits_sync_and_deletion(app, make, cm, backend):
    lecturer = make.user("lect", role="lecturer")
    lesson = courses.create_lesson(cm.course("课程"), "草稿", 20, "初稿 党史", lecturer)
    db.session.commit()
    doc = db.session.scalar(db.select(SearchDoc).where(SearchDoc.lesson_id == lesson.id))
    assert "党史" in doc.folded
    assert ("党史" in doc.grams) == (backend == "postgresql")
    courses.update_lesson(lesson, title="草稿", minutes=20, body="改稿 团史", actor=lecturer)
    db.session.commit()
    db.session.refresh(doc)
    assert "团史" in doc.folded and "党史" not in doc.folded
    courses.delete_lesson(lesson, lecturer)
    db.session.commit()
    assert db.session.scalar(db.select(SearchDoc).where(SearchDoc.lesson_id == lesson.id)) is None


def test_reindex_all_rewrites_every_row(app, cm):
    cm.lesson(cm.course("课程"), "第一讲 党史")
    db.session.execute(db.update(SearchDoc).values(folded="", grams="", title_folded=""))
    assert services.search("党史") == []
    assert services.reindex_all() == 2
    assert [r["title"] for r in services.search("党史")] == ["第一讲 党史"]


def test_a_longer_term_is_checked_past_the_first_candidates(member_api, cm):
    """On PostgreSQL the grams of 新时代 (新时, 时代) are in every lesson below, the term in one only,
    and the oldest: the check goes on past the first batch of candidates."""
    course = cm.course("课程")
    cm.lesson(course, "真的", body="迈进新时代。")
    for n in range(services.BATCH + 5):
        cm.lesson(course, f"第{n}讲", body="新时期，时代的要求。")
    assert titles(member_api, "新时代") == ["真的"]
    assert titles(member_api, "新时代 迈进") == ["真的"]


def test_a_course_edit_is_found_only_once_published(make, member_api, cm):
    author = make.user("courseauthor", role="lecturer")
    course = cm.course("旧课程名", author_id=author.id)
    courses.update_course(course, title="新课程名 党史", summary="简介", programme=None, body="", actor=author)
    db.session.commit()
    assert titles(member_api, "党史") == []
    assert titles(member_api, "旧课程名") == ["旧课程名"]
    courses.publish_course(course, make.user("courseadmin", role="admin"), course.revision)
    db.session.commit()
    assert titles(member_api, "党史") == ["新课程名 党史"]
    assert titles(member_api, "旧课程名") == []
