"""The editors' workflow: draft, review by another person, publication (the bot answers the new text
at once), history, import and export."""

from __future__ import annotations

import pytest
from bianjie.assistant import kb
from bianjie.assistant.api import KbReviewRequest, MessageRequest
from bianjie.assistant.kb import EntryBody
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError

from tests.unit.assistant.conftest import HOSPITAL, World

EDITOR = Actor(kind="staff", id="E01", org=HOSPITAL, roles=("kb-editor",))
REVIEWER = Actor(kind="staff", id="R01", org=HOSPITAL, roles=("kb-reviewer",))


def parking_body(answer: str) -> EntryBody:
    base = next(e for e in kb.base() if e.id == "faq.parking")
    return EntryBody.model_validate({**base.model_dump(include=set(EntryBody.model_fields)), "answer": answer})


def test_the_seed_has_every_id_the_issue_names() -> None:
    ids = {e.id for e in kb.base()}
    assert set(kb.INTENTS) <= ids
    faqs = {i for i in ids if i.startswith("faq.")}
    assert len(faqs) == 28 and all(e.source and e.answer for e in kb.base())
    assert all(e.link for e in kb.base() if e.id.startswith("svc."))


def test_publish_after_review_changes_the_answer(world: World) -> None:
    view = world.editor.save_draft(EDITOR, "faq.parking", parking_body("停车场已改建，收费 8 元/小时。"))
    assert view.draft and view.draft["review"] == "draft" and view.draft["version"] == 2
    world.editor.submit(EDITOR, "faq.parking")
    with pytest.raises(AppError) as exc:
        world.editor.review(
            EDITOR.__class__(**{**EDITOR.__dict__, "roles": ("kb-reviewer",)}),
            "faq.parking",
            KbReviewRequest(decision="approve"),
        )
    assert exc.value.code == "KB_REVIEWER_IS_AUTHOR"
    published = world.editor.review(REVIEWER, "faq.parking", KbReviewRequest(decision="approve"))
    assert published.published and published.published["version"] == 2 and published.draft is None
    assert [h["version"] for h in published.history] == [2]
    world.clock.now += 10  # past the knowledge cache's refresh
    answer = world.conversations.message(None, MessageRequest(text="停车怎么收费"))
    assert "8 元/小时" in answer.reply and answer.source == "kb:faq.parking@v2"


def test_reject_keeps_the_published_answer(world: World) -> None:
    world.editor.save_draft(EDITOR, "faq.parking", parking_body("草稿"))
    world.editor.submit(EDITOR, "faq.parking")
    view = world.editor.review(REVIEWER, "faq.parking", KbReviewRequest(decision="reject", note="不准确"))
    assert view.draft and view.draft["review"] == "rejected"
    assert "10 元/小时" in str(view.published)
    with pytest.raises(AppError) as exc:
        world.editor.review(REVIEWER, "faq.parking", KbReviewRequest(decision="approve"))
    assert exc.value.code == "KB_NOT_IN_REVIEW"


def test_import_export_round_trip(world: World) -> None:
    csv_text = kb.to_csv(list(kb.base())[:3])
    assert kb.parse_csv(csv_text) == list(kb.base())[:3]
    assert kb.parse_jsonl(kb.to_jsonl(list(kb.base()))) == list(kb.base())
    line = (
        '{"id": "hosp.canteen", "question": "食堂在哪", "answer": "食堂在行政楼二楼。", "source": "总务处 2026-12"}\n'
    )
    answer = world.editor.import_(EDITOR, "jsonl", line)
    assert answer.drafts == ["hosp.canteen"]
    exported = world.editor.export(EDITOR, "csv", world.knowledge)
    assert exported.count == len(kb.base()) and "hosp.canteen" not in exported.content  # not yet published


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        ('{"id": "svc.unknown", "question": "x", "answer": "y", "source": "z"}', "jsonl"),
        ("id,question\nfaq.x,y\n", "csv"),
    ],
)
def test_bad_imports_say_which_line(world: World, content: str, fmt: str) -> None:
    with pytest.raises(AppError) as exc:
        world.editor.import_(EDITOR, fmt, content)
    assert exc.value.code == "KB_IMPORT_INVALID" and exc.value.status == 422


def test_only_the_widget_may_be_framed_and_only_by_https_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    from bianjie.assistant import page

    monkeypatch.setenv("ASSISTANT_FRAME_ANCESTORS", "https://wx.hospital.example https://m.hospital.example:8443")
    assert page.frame_ancestors("chat") == "https://wx.hospital.example https://m.hospital.example:8443"
    assert page.frame_ancestors("desk") == "'none'"
    monkeypatch.setenv("ASSISTANT_FRAME_ANCESTORS", "https://ok.example *")
    assert page.frame_ancestors("chat") == "'none'"
    response = page.render(
        '<html><head><meta charset="utf-8"><script src="a.js"></script></head></html>', stage="local"
    )
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert 'nonce="' in response.body


def test_hospitals_without_entries_of_their_own_share_the_base_index(world: World) -> None:
    a = world.knowledge.understander("hospital-a")
    b = world.knowledge.understander("made-up-id")
    assert a is b is world.knowledge.base_understander()
