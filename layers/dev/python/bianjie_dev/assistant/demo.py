"""Demo for ``make run``: publishes the chat widget and the agent desk (web/assistant/dist) to
AssistantWebBucket, starts one conversation that asked for a person (so the desk's queue is not empty),
and prints the widget's link and the desk's link with a demo agent signed in (token in the fragment,
short-lived; local stage only).

Try, as the issue's "done when" does: "b超在哪", "报告出来没", "停车怎么收费", "几点开门" then "那周末呢",
"我胸口疼得厉害", "转人工" (then take and reply on the desk page).
"""

from __future__ import annotations

from typing import Any

LINK_TTL = 2 * 3600
HOSPITAL = "demo-hospital"
AGENT = "kf-demo-1"


def start_conversation() -> str:
    """A patient who asks about remote insurance, then for a person: the desk's first queue item (run in
    the operator's scope, which holds every function's variables, while the stack seeds)."""
    from bianjie.assistant import wiring
    from bianjie.assistant.api import MessageRequest

    session = None
    for text in ("外地医保能直接结算吗", "转人工"):
        session = (
            wiring.conversations().message(None, MessageRequest(session=session, text=text, hospital=HOSPITAL)).session
        )
    assert session is not None
    return session


def seed(stack: Any) -> None:
    from bianjie.assistant import page
    from bianjie.kit import deps

    from bianjie_dev.cli.tokens import issue_token, via_stack

    start_conversation()
    dist = stack.options.root / "web" / "assistant" / "dist"
    if not (dist / "chat.html").is_file():
        stack.demo_urls.append("assistant: web/assistant/dist is missing (run `make web`; needs Node 20)")
        return
    page.publish(deps.objects(), stack.deployment.ref("AssistantWebBucket"), dist)
    token = issue_token(
        via_stack(stack),
        AGENT,
        "staff",
        ["assistant-agent", "kb-editor"],
        ttl_seconds=LINK_TTL,
        hospital=HOSPITAL,
        requested_by="system:demo.assistant",
    )
    stack.demo_urls.append(f"{stack.gateway_url}/assistant/pages/chat   (云客服：患者聊天窗口)")
    stack.demo_urls.append(f"{stack.gateway_url}/assistant/pages/desk#token={token}   (云客服：人工客服工作台)")
