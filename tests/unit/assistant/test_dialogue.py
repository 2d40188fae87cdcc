"""The conversation as the issue's 'done when' walks it, on in-memory tables with real SM4 and audit."""

from __future__ import annotations

import pytest
from bianjie.assistant.api import MessageRequest
from bianjie.kit.errors import AppError

from tests.unit.assistant.conftest import World, agent


def say(world: World, text: str, session: str | None = None):
    return world.conversations.message(None, MessageRequest(session=session, text=text))


def test_done_when_routes(world: World) -> None:
    nav = say(world, "b超在哪")
    assert (nav.intent, nav.kind) == ("svc.navigate", "intent")
    assert nav.links and nav.links[0].url
    assert say(world, "报告出来没").intent == "svc.report"
    parking = say(world, "停车怎么收费")
    assert (parking.faq, parking.intent) == ("faq.parking", None)
    assert "元/小时" in parking.reply and parking.source.startswith("kb:faq.parking@v")
    emergency = say(world, "我胸口疼得厉害")
    assert emergency.kind == "emergency" and "120" in emergency.reply


def test_follow_up_answers_weekend_hours(world: World) -> None:
    first = say(world, "几点开门")
    assert first.faq == "faq.hours"
    weekend = say(world, "那周末呢", first.session)
    assert weekend.faq == "faq.hours" and "周六" in weekend.reply


def test_the_desk_suggests_what_the_conversation_was_about(world: World) -> None:
    first = say(world, "几点开门")
    say(world, "那周末呢", first.session)
    say(world, "转人工", first.session)
    conv = world.conversations.queue(agent()).items[0].conversation
    transcript = world.conversations.take(agent(), conv)
    assert transcript.suggestions[0].entry == "faq.hours"
    assert transcript.guesses and transcript.guesses[0].entry == "faq.hours"


def test_handoff_and_agent_reply_reach_the_patient(world: World) -> None:
    first = say(world, "你好，我想问问挂号")
    handoff = say(world, "转人工", first.session)
    assert handoff.intent == "human" and handoff.handoff.status == "waiting"
    desk = agent()
    queue = world.conversations.queue(desk)
    assert len(queue.items) == 1 and queue.items[0].reason == "explicit"
    conv = queue.items[0].conversation
    taken = world.conversations.take(desk, conv)
    assert taken.status == "agent" and [m.role for m in taken.messages][:2] == ["patient", "bot"]
    # the bot's guesses and the suggestions come from what the patient asked before "转人工"
    assert taken.guesses and taken.guesses[0].entry == "svc.register"
    assert taken.suggestions[0].entry == "svc.register" and taken.suggestions[0].answer
    world.conversations.reply(desk, conv, "您好，我是人工客服小王，请问要挂哪个科？")
    poll = world.conversations.poll(None, first.session, handoff.seq)
    assert [m.role for m in poll.messages] == ["system", "agent"]
    assert poll.messages[-1].text.startswith("您好，我是人工客服") and poll.handoff.status == "agent"
    # while an agent has it the bot stays quiet, but still answers an emergency
    assert say(world, "眼科", first.session).kind == "relayed"
    assert say(world, "我呼吸困难", first.session).kind == "emergency"
    world.conversations.close(desk, conv)
    assert say(world, "停车怎么收费", first.session).faq == "faq.parking"
    actions = [r.action for r in world.records()]
    assert "assistant.transcript.read" in actions and "assistant.messages.read" in actions


def test_two_unsure_turns_hand_off(world: World) -> None:
    first = say(world, "明天天气怎么样")
    assert first.kind == "unknown" and first.handoff.status == "bot"
    second = say(world, "你们院长叫什么名字", first.session)
    assert second.reply == "我不确定，已为您转人工。" and second.handoff.status == "waiting"
    assert world.conversations.queue(agent()).items[0].reason == "low_confidence"


def test_text_is_encrypted_at_rest(world: World) -> None:
    say(world, "我叫张三，手机13912345678，停车怎么收费")
    stored = [i for t in world.db._tables.values() for i in t.items.values()]  # type: ignore[attr-defined]
    assert stored and not any("张三" in repr(i) or "13912345678" in repr(i) for i in stored)


@pytest.mark.parametrize(("text", "code"), [("   ", "MESSAGE_EMPTY"), ("停车\x01\x02", "MESSAGE_BINARY")])
def test_bad_messages_are_refused(world: World, text: str, code: str) -> None:
    with pytest.raises(AppError) as exc:
        say(world, text)
    assert exc.value.code == code and exc.value.status == 422


def test_a_session_is_rate_limited(world: World) -> None:
    first = say(world, "停车")
    for _ in range(19):
        say(world, "停车", first.session)
    with pytest.raises(AppError) as exc:
        say(world, "停车", first.session)
    assert exc.value.code == "RATE_LIMITED" and exc.value.status == 429
    world.clock.now += 61
    assert say(world, "停车", first.session).faq == "faq.parking"


def test_refusals_before_retrieval(world: World) -> None:
    dose = say(world, "阿司匹林一次吃几片")
    assert dose.kind == "refusal" and dose.links[0].title == "预约挂号"
    lab = say(world, "帮我看看化验单上白细胞偏高什么意思")
    assert lab.kind == "refusal"
    assert say(world, "我是不是得了糖尿病").kind == "refusal"


def test_an_unknown_session_is_404(world: World) -> None:
    with pytest.raises(AppError) as exc:
        say(world, "停车", "x" * 32)
    assert exc.value.code == "SESSION_NOT_FOUND"
