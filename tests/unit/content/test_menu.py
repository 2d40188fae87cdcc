"""The official account's menu: WeChat's documented limits checked before sending (and by the stand-in,
with WeChat's error codes, for a menu that got past us), pushed through ``menu/create`` and kept."""

from __future__ import annotations

from typing import Any

import pytest
from bianjie.content.menu import Menu, MenuService, default_menu
from bianjie.kit.errors import AppError
from bianjie_dev.content.wechat_standin import menu_refusal
from pydantic import ValidationError

from tests.unit.content.conftest import CHIEF, Rig


def view(name: str, url: str = "https://site.example/content/site") -> dict[str, Any]:
    return {"type": "view", "name": name, "url": url}


def test_the_configured_menu_is_within_the_limits_and_reaches_the_standin(rig: Rig) -> None:
    rig.tokens.refresh()
    service = MenuService(rig.documents, "content", rig.tokens, rig.standin, rig.clock)
    menu = default_menu("https://site.example")
    pushed = service.push(CHIEF, menu)
    assert pushed.pushed_by == "ce1"
    sent = rig.standin.menu()
    assert sent is not None and [b["name"] for b in sent["button"]] == ["健康科普", "科普视频", "搜索"]
    assert [s["key"] for s in sent["button"][0]["sub_button"]] == ["news", "health", "science", "guides"]
    assert "sub_button" not in sent["button"][1] and menu_refusal(sent) is None
    assert service.current() is not None and service.current()["menu"]["button"][2]["url"].endswith("/search")


@pytest.mark.parametrize(
    ("menu", "why"),
    [
        ({"button": [view("一"), view("二"), view("三"), view("四")]}, "4 buttons"),
        ({"button": []}, "no button"),
        ({"button": [{"name": "科普", "sub_button": [view(f"第{i}") for i in range(6)]}]}, "6 sub-buttons"),
        ({"button": [view("健康科普知识")]}, "a name of 18 bytes"),
        ({"button": [{"name": "科普", "sub_button": [view("健" * 21)]}]}, "a sub name of 63 bytes"),
        ({"button": [{"type": "click", "name": "科普"}]}, "a click without key"),
        ({"button": [{"type": "click", "name": "科普", "key": "k" * 129}]}, "a key of 129 bytes"),
        ({"button": [{"type": "view", "name": "科普", "url": "javascript:alert(1)"}]}, "not http(s)"),
        ({"button": [{"name": "科普"}]}, "neither type nor sub-buttons"),
        ({"button": [{"name": "科普", "type": "view", "url": "https://a.example", "sub_button": [view("子")]}]},
         "a type beside sub-buttons"),
    ],
)  # fmt: skip
def test_menus_over_wechats_limits_are_refused_before_sending(menu: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError):
        Menu.model_validate(menu)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"button": [view("一"), view("二"), view("三"), view("四")]}, 40016),
        ({"button": [{"type": "push", "name": "科普", "key": "k"}]}, 40017),
        ({"button": [view("健康科普知识")]}, 40018),
        ({"button": [{"type": "click", "name": "科普", "key": ""}]}, 40019),
        ({"button": [{"name": "科普", "sub_button": []}]}, 40023),
        ({"button": [{"name": "科普", "sub_button": [view("疾病防治指南与健康科普" * 2)]}]}, 40025),
        ({"button": [{"name": "科普", "sub_button": [view("子", "https://a.example/" + "x" * 1100)]}]}, 40027),
    ],
)
def test_the_standin_answers_wechats_menu_error_codes(body: dict[str, Any], code: int) -> None:
    refused = menu_refusal(body)
    assert refused is not None and refused["errcode"] == code


def test_a_refusal_by_wechat_is_a_502_with_its_code(rig: Rig) -> None:
    service = MenuService(rig.documents, "content", rig.tokens, rig.standin, rig.clock)
    rig.tokens.refresh()
    rig.standin._put("token", {"token": "rotated", "expires_at": 0})  # WeChat no longer takes ours
    with pytest.raises(AppError) as refused:
        service.push(CHIEF, default_menu("https://site.example"))
    assert refused.value.code == "WECHAT_REFUSED" and refused.value.status == 502
    assert refused.value.details == {"errcode": 40001} and service.current() is None
