"""`bianjie assistant ...`: try the bot's understanding on the base knowledge without a stack (what an
editor checks before proposing an entry), and print the evaluation over the labelled question file."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_ask(args: argparse.Namespace) -> int:
    from bianjie.assistant import kb
    from bianjie.assistant.understand import Understander

    understander = Understander(kb.base())
    previous = None
    for text in args.text:
        u = understander.understand(text, previous=previous)
        if u.entry is not None and u.kind in ("intent", "faq"):
            previous = u.entry.id
        reply = u.detail.answer if u.detail else (u.entry.answer if u.entry else "")
        row = {
            "text": text,
            "kind": u.kind,
            "entry": u.entry.id if u.entry else None,
            "source": u.source,
            "confidence": round(u.confidence, 3),
            "candidates": [(c.entry_id, round(c.score, 1), round(c.coverage, 2)) for c in u.candidates[:3]],
            "reply": reply,
        }
        print(json.dumps(row, ensure_ascii=False))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bianjie.assistant import kb
    from bianjie.assistant.understand import Understander

    from bianjie_dev.assistant.evaluate import TARGETS, evaluate

    metrics = evaluate(Understander(kb.base()))
    for text, want, got in metrics.misses:
        print(f"miss: {text}  want {want}  got {got}")
    figures = {k: round(getattr(metrics, k), 4) for k in ("intent_acc", "faq_r1", "faq_r3", "mrr")}
    print(json.dumps({"questions": metrics.count, **figures, "targets": TARGETS}))
    return 0 if metrics.intent_acc >= TARGETS["intent_acc"] and metrics.faq_r1 >= TARGETS["faq_r1"] else 1


def register(subparsers: Any) -> None:
    assistant = subparsers.add_parser("assistant", help="the service bot (云客服)").add_subparsers(
        dest="command", required=True
    )
    ask = assistant.add_parser("ask", help="understand messages in turn (a conversation) on the base knowledge")
    ask.add_argument("text", nargs="+")
    ask.set_defaults(func=cmd_ask)
    ev = assistant.add_parser("eval", help="intent accuracy and FAQ R@1/R@3/MRR on the labelled question file")
    ev.set_defaults(func=cmd_eval)
