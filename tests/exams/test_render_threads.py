"""Exam starts render many questions in parallel threads (gunicorn gthread workers)."""

import threading

from pbschool.markup import render_markdown

SOURCES = [f"第{i}题：**党章**规定 <b>加粗</b> [链接](https://example.org/{i}) 与 `代码`\n\n- 一\n- 二"
           for i in range(40)]


def test_render_markdown_is_thread_safe():
    expected = [str(render_markdown(s)) for s in SOURCES]
    failures = []
    barrier = threading.Barrier(8)

    def run():
        barrier.wait()
        for _ in range(10):
            for source, want in zip(SOURCES, expected, strict=True):
                try:
                    if str(render_markdown(source)) != want:
                        failures.append("different output")
                except Exception as exc:  # an html5lib parser shared between threads breaks here
                    failures.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
