"""The pages function's two halves: publishing a Vite build to the bucket and serving a page with a
per-response nonce and its Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from bianjie.kit.errors import NotFound
from bianjie.kit.objects import MemoryObjectStore
from bianjie.pages import assets, page

HTML = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>首页</title>
  <script type="module" crossorigin src="./assets/home-abc123.js"></script>
  <link rel="stylesheet" crossorigin href="./assets/ui-def456.css">
</head>
<body><div id="app"></div></body>
</html>"""


@pytest.fixture()
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "home.html").write_text(HTML, encoding="utf-8")
    (tmp_path / "Not A Page.html").write_text("x", encoding="utf-8")
    (tmp_path / "assets" / "home-abc123.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path / "assets" / "ui-def456.css").write_text("body{}", encoding="utf-8")
    return tmp_path


def test_publish_puts_pages_and_assets_where_the_functions_read_them(dist: Path) -> None:
    store = MemoryObjectStore()
    assert assets.publish(store, "web", dist) == 3  # the odd file name is not a page
    assert "首页" in assets.page_html(store, "web", "home")
    assert assets.asset(store, "web", "home-abc123.js") == b"console.log(1)"
    assert assets.content_type("ui-def456.css").startswith("text/css")


@pytest.mark.parametrize("name", ["nope", "../home", "HOME", "a" * 41])
def test_unknown_or_odd_page_names_are_not_found(dist: Path, name: str) -> None:
    store = MemoryObjectStore()
    assets.publish(store, "web", dist)
    with pytest.raises(NotFound) as raised:
        assets.page_html(store, "web", name)
    assert raised.value.code == "PAGE_NOT_FOUND"
    with pytest.raises(NotFound):
        assets.asset(store, "web", "../html/home.html")


def test_render_puts_a_fresh_nonce_on_every_script_and_style_and_names_it_in_the_policy() -> None:
    first, second = page.render(HTML, stage="local"), page.render(HTML, stage="local")
    policy = first.headers["Content-Security-Policy"]
    assert isinstance(policy, str)
    nonce = policy.split("'nonce-")[1].split("'")[0]
    body = str(first.body)
    assert body.count(f'nonce="{nonce}"') == 2 and body.count("<script") == 1 and body.count("<link") == 1
    assert policy != second.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in policy
    assert "unsafe" not in policy
    # the stage meta follows the charset, so the charset stays within the first bytes
    assert '<meta charset="utf-8"><meta name="bianjie-stage" content="local">' in body
    assert first.headers["Referrer-Policy"] == "no-referrer" and first.headers["Cache-Control"] == "no-store"


def test_not_found_is_a_chinese_page_that_runs_nothing() -> None:
    answer = page.not_found()
    assert answer.status_code == 404 and "页面不存在" in str(answer.body)
    assert "script-src" not in str(answer.headers["Content-Security-Policy"])


def test_the_e_credential_stand_in_knows_rx_demo_patient() -> None:
    from bianjie_dev.rx.demo import PATIENT_ID, PATIENT_NAME
    from bianjie_dev.rx.ecredential import demo_people

    assert [(p.cert_no, p.name) for p in demo_people()] == [(PATIENT_ID, PATIENT_NAME)]
