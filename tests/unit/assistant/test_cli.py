"""`bianjie assistant ask` and `bianjie assistant eval` on the base knowledge."""

from __future__ import annotations

import json

import pytest
from bianjie_dev.cli.main import main


def test_ask_follows_a_conversation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assistant", "ask", "几点开门", "那周末呢"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["entry"] for r in rows] == ["faq.hours", "faq.hours"] and "周六" in rows[1]["reply"]


def test_eval_meets_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assistant", "eval"]) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert figures["questions"] >= 150 and figures["faq_r1"] >= 0.9
