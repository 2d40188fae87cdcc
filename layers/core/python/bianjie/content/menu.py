"""The official account's custom menu (自定义菜单) from configuration: a menu is validated against the
limits WeChat documents for ``menu/create`` before it is sent (at most 3 buttons, each with at most 5
sub-buttons; a button's name at most 16 bytes (4 汉字), a sub-button's 60 bytes (8 汉字 shown); a key at
most 128 bytes, a URL 1024), pushed through the API, and kept (``wx#menu / current``) with who pushed it.

A ``click`` button's key is a column (``science``...): the message push answers it with the column's
link (functions/content/app.py ``_answer``); ``view`` opens a page of the site."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bianjie.content.model import COLUMNS
from bianjie.content.oa import TokenKeeper, Transport, WechatApiError, _checked
from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import DocumentStore
from bianjie.kit.errors import AppError
from bianjie.kit.timefmt import utc_iso

TOP_BUTTONS = 3
SUB_BUTTONS = 5
TOP_NAME_BYTES = 16
SUB_NAME_BYTES = 60
KEY_BYTES = 128
URL_BYTES = 1024

Url = Annotated[str, Field(max_length=URL_BYTES, pattern=r"^https?://[^\s]+$")]


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


class SubButton(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["click", "view"]
    name: Annotated[str, Field(min_length=1, max_length=SUB_NAME_BYTES, description="at most 60 bytes (UTF-8)")]
    key: Annotated[str, Field(min_length=1, max_length=KEY_BYTES)] | None = None
    url: Url | None = None

    @model_validator(mode="after")
    def _limits(self) -> Self:
        if _bytes(self.name) > SUB_NAME_BYTES:
            raise ValueError(f"a sub-button's name is at most {SUB_NAME_BYTES} bytes (8 汉字)")
        _target(self.type, self.key, self.url)
        return self


class Button(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=TOP_NAME_BYTES, description="at most 16 bytes (UTF-8)")]
    type: Literal["click", "view"] | None = None
    key: Annotated[str, Field(min_length=1, max_length=KEY_BYTES)] | None = None
    url: Url | None = None
    sub_button: list[SubButton] = Field(default_factory=list, max_length=SUB_BUTTONS)

    @model_validator(mode="after")
    def _limits(self) -> Self:
        if _bytes(self.name) > TOP_NAME_BYTES:
            raise ValueError(f"a button's name is at most {TOP_NAME_BYTES} bytes (4 汉字)")
        if self.sub_button:
            if self.type or self.key or self.url:
                raise ValueError("a button with sub-buttons has no type, key or url of its own")
        elif self.type is None:
            raise ValueError("a button without sub-buttons needs a type (click or view)")
        else:
            _target(self.type, self.key, self.url)
        return self


def _target(kind: str, key: str | None, url: str | None) -> None:
    if kind == "click" and (not key or url):
        raise ValueError("a click button has a key and no url")
    if kind == "view" and (not url or key):
        raise ValueError("a view button has a url and no key")
    if key and _bytes(key) > KEY_BYTES:
        raise ValueError(f"a key is at most {KEY_BYTES} bytes")


class Menu(BaseModel):
    """What ``menu/create`` takes (``{"button": [...]}``)."""

    model_config = ConfigDict(extra="forbid")
    button: list[Button] = Field(min_length=1, max_length=TOP_BUTTONS)


class MenuView(BaseModel):
    menu: Menu
    pushed_at: str
    pushed_by: str


def default_menu(site_url: str) -> Menu:
    """The configured menu: the four columns under 健康科普, the video library, and the site's search."""
    site = site_url.rstrip("/") + "/content/site"
    return Menu.model_validate(
        {
            "button": [
                {"name": "健康科普", "sub_button": [{"type": "click", "name": name, "key": key}
                                                     for key, name in COLUMNS.items()]},
                {"name": "科普视频", "type": "view", "url": f"{site}/videos"},
                {"name": "搜索", "type": "view", "url": f"{site}/search"},
            ]
        }
    )  # fmt: skip


class MenuService:
    def __init__(self, documents: DocumentStore, table: str, tokens: TokenKeeper, transport: Transport,
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self.documents = documents
        self.table = table
        self.tokens = tokens
        self.transport = transport
        self.clock = clock

    def push(self, actor: Actor, menu: Menu) -> MenuView:
        body = menu.model_dump(exclude_none=True, exclude_defaults=False)
        for button in body["button"]:
            if not button.get("sub_button"):
                button.pop("sub_button", None)
        try:
            _checked(self.transport("POST", "/cgi-bin/menu/create", {"access_token": self.tokens.current()}, body))
        except WechatApiError as exc:
            raise AppError(f"微信拒绝了菜单（错误码 {exc.errcode}）", code="WECHAT_REFUSED", status=502,
                           details={"errcode": exc.errcode}) from None  # fmt: skip
        view = MenuView(menu=menu, pushed_at=utc_iso(self.clock()), pushed_by=actor.id)
        self.documents.put(self.table, {"pk": "wx#menu", "sk": "current", "doc": view.model_dump_json()})
        return view

    def current(self) -> dict[str, Any] | None:
        held = self.documents.get(self.table, {"pk": "wx#menu", "sk": "current"})
        return json.loads(held["doc"]) if held else None
