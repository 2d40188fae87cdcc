"""The assistant through its Chalice app and moto, each route as the function the template declares for
it (its own environment and role): the chat, the agent desk, the knowledge-base editor."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from tests.functional.conftest import app_of, token_issuer


@pytest.fixture
def client(aws_stack: Any) -> Client:
    with Client(app_of("assistant")) as c:
        yield c


def staff(code: str, *roles: str, hospital: str = "demo-hospital") -> dict[str, str]:
    token = token_issuer().issue(code, "staff", roles=list(roles), hospital=hospital)
    return {"Authorization": "Bearer " + token, "Content-Type": "application/json"}


JSON = {"Content-Type": "application/json"}


def say(client: Client, text: str, session: str | None = None, headers: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"text": text}
    if session:
        body["session"] = session
    return client.http.post("/assistant/messages", body=json.dumps(body, ensure_ascii=False), headers=headers or JSON)


def test_chat_handoff_and_agent_reply(client: Client) -> None:
    first = say(client, "b超在哪")
    assert first.status_code == 200, first.body
    answer = json.loads(first.body)
    assert answer["intent"] == "svc.navigate" and answer["links"]
    session = answer["session"]
    hours = json.loads(say(client, "几点开门", session).body)
    weekend = json.loads(say(client, "那周末呢", session).body)
    assert hours["faq"] == weekend["faq"] == "faq.hours" and "周六" in weekend["reply"]
    handoff = json.loads(say(client, "转人工", session).body)
    assert handoff["handoff"]["status"] == "waiting"

    desk = staff("A01", "assistant-agent")
    queue = json.loads(client.http.get("/assistant/desk/queue", headers=desk).body)
    conv = next(i["conversation"] for i in queue["items"])
    taken = client.http.post(f"/assistant/desk/conversations/{conv}/take", headers=desk)
    assert taken.status_code == 200, taken.body
    transcript = json.loads(taken.body)
    assert transcript["messages"][0]["text"] == "b超在哪" and transcript["suggestions"]
    reply = client.http.post(
        f"/assistant/desk/conversations/{conv}/reply", body=json.dumps({"text": "您好，这里是人工客服"}), headers=desk
    )
    assert reply.status_code == 200, reply.body
    polled = client.http.post(
        "/assistant/sessions/poll", body=json.dumps({"session": session, "after": handoff["seq"]}), headers=JSON
    )
    messages = json.loads(polled.body)["messages"]
    assert messages[-1] == {**messages[-1], "role": "agent", "text": "您好，这里是人工客服"}
    again = client.http.post(f"/assistant/desk/conversations/{conv}/take", headers=staff("A02", "assistant-agent"))
    assert again.status_code == 409 and json.loads(again.body)["error"]["code"] == "CONVERSATION_NOT_WAITING"
    other = client.http.get(
        f"/assistant/desk/conversations/{conv}", headers=staff("B01", "assistant-agent", hospital="other-hospital")
    )
    assert other.status_code == 404
    closed = client.http.post(f"/assistant/desk/conversations/{conv}/close", headers=desk)
    assert json.loads(closed.body)["status"] == "bot"


def test_bad_input(client: Client) -> None:
    too_long = say(client, "停" * 501)
    assert too_long.status_code == 400 and json.loads(too_long.body)["error"]["code"] == "VALIDATION_FAILED"
    binary = say(client, "停车\x01")
    assert binary.status_code == 422 and json.loads(binary.body)["error"]["code"] == "MESSAGE_BINARY"
    nul = say(client, "停车\x00")
    assert nul.status_code == 400 and json.loads(nul.body)["error"]["code"] == "INVALID_CHARACTER"
    blank = say(client, "   ")
    assert blank.status_code == 422 and json.loads(blank.body)["error"]["code"] == "MESSAGE_EMPTY"
    unknown = say(client, "停车", "s" * 30)
    assert unknown.status_code == 404 and json.loads(unknown.body)["error"]["code"] == "SESSION_NOT_FOUND"
    nobody = client.http.get("/assistant/desk/queue")
    assert nobody.status_code == 401
    patient = {"Authorization": "Bearer " + token_issuer().issue("p-1", "patient"), **JSON}
    assert client.http.get("/assistant/desk/queue", headers=patient).status_code == 403


def test_a_patient_session_is_the_patients_own(client: Client) -> None:
    patient = {"Authorization": "Bearer " + token_issuer().issue("p-1", "patient"), **JSON}
    first = json.loads(say(client, "停车怎么收费", headers=patient).body)
    assert first["faq"] == "faq.parking"
    stranger = say(client, "停车", first["session"])
    assert stranger.status_code == 403 and json.loads(stranger.body)["error"]["code"] == "SESSION_FORBIDDEN"


def test_editor_workflow(client: Client) -> None:
    editor, reviewer = staff("E01", "kb-editor"), staff("R01", "kb-reviewer")
    listing = json.loads(client.http.get("/assistant/kb/entries", headers=editor).body)
    assert len(listing["entries"]) == 41
    entry = json.loads(client.http.get("/assistant/kb/entries/faq.parking", headers=editor).body)["published"]
    body = {
        k: entry[k]
        for k in ("question", "alternatives", "examples", "stage", "tags", "source", "details", "follow_ups")
    }
    body["answer"] = "停车场收费 8 元/小时，当日封顶 50 元。"
    put = client.http.put(
        "/assistant/kb/entries/faq.parking/draft", body=json.dumps(body, ensure_ascii=False), headers=editor
    )
    assert put.status_code == 200, put.body
    assert client.http.post("/assistant/kb/entries/faq.parking/submit", headers=editor).status_code == 200
    own = client.http.post(
        "/assistant/kb/entries/faq.parking/review", body=json.dumps({"decision": "approve"}), headers=editor
    )
    assert own.status_code == 403  # an editor is not a reviewer
    ok = client.http.post(
        "/assistant/kb/entries/faq.parking/review", body=json.dumps({"decision": "approve"}), headers=reviewer
    )
    assert ok.status_code == 200, ok.body
    assert json.loads(ok.body)["published"]["version"] == 2
    exported = json.loads(client.http.get("/assistant/kb/export?format=csv", headers=reviewer).body)
    assert exported["count"] == 41 and "8 元/小时" in exported["content"]
    bad = client.http.post(
        "/assistant/kb/import", body=json.dumps({"format": "csv", "content": "id,question\nx,y\n"}), headers=editor
    )
    assert bad.status_code == 422 and json.loads(bad.body)["error"]["code"] == "KB_IMPORT_INVALID"
