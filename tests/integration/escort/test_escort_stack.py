"""Accompanied visits on the real local stack (``make run``'s code path, per-function isolation, IAM
enforced): the demo patient's visit reaches escort through guide's outbox, the topic and escort's queue;
invite by SMS, open the link from the SMS stand-in's outbox, phone code, invitation code, the room moves
when a guidance event arrives, an unshared report stays hidden, revocation shuts the room at once; five
wrong codes lock a second invitation."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.escort.cli import next_event
from bianjie_dev.runtime.child import StackProcess

VISIT = "V-DEMO-TODAY"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("escort-stack"), env={"BIANJIE_RETRY_DELAY": "1"}, seed=["escort"])
    yield s
    s.stop()


def call(
    stack: StackProcess,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    session: str | None = None,
    signed: bool = False,
) -> tuple[int, Any, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if session:
        headers["X-Escort-Session"] = session
    if signed:
        partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
        key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
        headers.update(sign_request(key, method, path, "", raw, "demo-hospital", partner["key_serial"]))
    request = urllib.request.Request(stack.url + path, data=raw or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read()), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), {k.lower(): v for k, v in exc.headers.items()}


def demo(stack: StackProcess) -> dict[str, Any]:
    return json.loads((stack.state_dir / "escort" / "demo.json").read_text())


def until(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.5)


def sms(stack: StackProcess, pattern: str) -> list[str]:
    status, body, _ = call(stack, "GET", "/escort/outbox?limit=100", token=demo(stack)["operator_token"])
    assert status == 200, body
    return [m["text"] for m in body["messages"] if re.search(pattern, m["text"])]


def invite(stack: StackProcess, phone: str, **scope: bool) -> dict[str, Any]:
    body = {"visit_id": VISIT, "companion_name": "王芳", "companion_phone": phone, "relation": "child", "scope": scope}

    def created() -> Any:
        status, answer, _ = call(stack, "POST", "/escort/invitations", body, token=demo(stack)["token"])
        if status == 404 and answer["error"]["code"] == "VISIT_NOT_FOUND":
            return None  # guide's events are still on their way through the topic and the queue
        assert status == 201, answer
        return answer

    return until(created)


def phone_code(stack: StackProcess, handle: str, phone: str) -> str:
    before = len(sms(stack, "验证码为"))
    status, body, _ = call(stack, "POST", "/escort/join/otp", {"handle": handle, "phone": phone})
    assert status == 202, body
    texts = until(lambda: (lambda t: t if len(t) > before else None)(sms(stack, "验证码为")))
    found = re.search(r"验证码为(\d{6})", texts[0])
    assert found
    return found.group(1)


def test_invite_join_follow_revoke_and_lock(stack: StackProcess) -> None:
    created = invite(stack, "13912345678", prescriptions=True)
    assert created["sms_sent"] is True and created["qr_svg"].startswith("<svg")
    texts = until(lambda: sms(stack, "邀请您参加云陪诊"))
    link = re.search(r"https?://\S+#h=[A-Za-z0-9_-]{22}", texts[0])
    assert link and link.group(0) == created["link"]
    handle = link.group(0).split("#h=")[1]

    status, preview, headers = call(stack, "POST", "/escort/join/preview", {"handle": handle})
    assert status == 200 and headers.get("referrer-policy") == "no-referrer"
    assert preview["companion_name"] == "王*" and preview["relation"] == "child"
    code = phone_code(stack, handle, "13912345678")
    join = {"handle": handle, "phone": "13912345678", "otp": code, "invitation_code": created["invitation_code"]}
    status, joined, _ = call(stack, "POST", "/escort/join", join)
    assert status == 201, joined
    session = joined["session"]

    status, room, _ = call(stack, "GET", "/escort/room", session=session)
    assert status == 200, room
    assert room["reports"] is None  # the patient did not share reports (the demo visit has one)
    assert room["prescriptions"] == []
    first_state = room["state"]

    status, answer, _ = call(stack, "POST", "/guide/events", next_event(VISIT, 2, "queue.updated"), signed=True)
    assert status == 200 and answer["accepted"] == 1, answer

    def moved() -> Any:
        s, r, _ = call(stack, "GET", "/escort/room", session=session)
        assert s == 200, r
        return r if r["state"] == "waiting" and r["queue_position"] == 2 else None

    room = until(moved)
    assert room["notices"][0]["text"].startswith("候诊中，前面还有2人")
    assert first_state != "waiting"

    status, listed, _ = call(stack, "GET", f"/escort/visits/{VISIT}/companions", token=demo(stack)["token"])
    mine = next(i for i in listed["invitations"] if i["invitation_id"] == created["invitation"]["invitation_id"])
    assert mine["status"] == "active" and mine["in_room"] is True
    status, _, _ = call(
        stack, "POST", f"/escort/invitations/{mine['invitation_id']}/revoke", token=demo(stack)["token"]
    )
    assert status == 200
    status, refused, _ = call(stack, "GET", "/escort/room", session=session)
    assert status == 403 and refused["error"]["code"] == "GRANT_REVOKED"

    second = invite(stack, "13700001111")
    handle2 = second["link"].split("#h=")[1]
    code2 = phone_code(stack, handle2, "13700001111")
    wrong = "ZZZZZZZZ" if second["invitation_code"] != "ZZZZZZZZ" else "YYYYYYYY"
    codes = []
    for _ in range(5):
        _, body, _ = call(
            stack,
            "POST",
            "/escort/join",
            {"handle": handle2, "phone": "13700001111", "otp": code2, "invitation_code": wrong},
        )
        codes.append(body["error"]["code"])
    assert codes == ["INVITATION_CODE_WRONG"] * 4 + ["INVITATION_LOCKED"]
    status, listed, _ = call(stack, "GET", f"/escort/visits/{VISIT}/companions", token=demo(stack)["token"])
    locked = next(i for i in listed["invitations"] if i["invitation_id"] == second["invitation"]["invitation_id"])
    assert locked["status"] == "locked"
