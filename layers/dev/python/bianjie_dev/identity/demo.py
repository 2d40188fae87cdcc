"""Demo data for ``make run``: the provider's relying parties and the hospitals' entries.

Clients (secrets written to ``.local/identity/clients.json`` for the CLI, tests and the benchmark):
- ``demo-hospital-web``: 示范医院's internet hospital, a confidential RP (back-channel logout, token exchange);
- ``demo-hospital-workbench``: the same hospital's staff workbench (staff log in through the directory);
- ``bianjie-entry``: the platform's entry pages (``web/identity``, served at ``/pages/entry``; a public
  client: PKCE only, redirect ``<gateway>/pages/entry-callback``).
Entries: 示范医院 (an OIDC relying party: third-party-initiated login) and 第二医院 (no OIDC: launch tickets).
"""

from __future__ import annotations

import json
from typing import Any

DEMO_RP_REDIRECT = "https://demo-hospital.example/oidc/callback"


def seed(stack: Any) -> None:
    from bianjie.identity import wiring
    from bianjie.identity.clients import Client
    from bianjie.identity.launch import Entry, MiniProgram
    from bianjie.kit.actor import Actor

    gateway = stack.gateway_url.rstrip("/")
    registry = wiring.clients()
    web_secret, web_digest = registry.new_secret()
    staff_secret, staff_digest = registry.new_secret()
    registry.register(
        Client(
            client_id="demo-hospital-web",
            name="示范医院互联网医院",
            hospital="demo-hospital",
            redirect_uris=(DEMO_RP_REDIRECT,),
            post_logout_redirect_uris=("https://demo-hospital.example/",),
            initiate_login_uri="https://demo-hospital.example/oidc/initiate",
            # back-channel logout to the STAND-IN receiver (records the logout token, answers 200)
            backchannel_logout_uri=f"{gateway}/identity/standin/backchannel/demo-hospital",
            secret_digest=web_digest,
            may_exchange=True,
        )
    )
    registry.register(
        Client(
            client_id="demo-hospital-workbench",
            name="示范医院医生工作台",
            hospital="demo-hospital",
            redirect_uris=(DEMO_RP_REDIRECT,),
            secret_digest=staff_digest,
            staff=True,
        )
    )
    registry.register(
        Client(
            client_id="bianjie-entry",
            name="上海市级医院互联网总平台",
            hospital=None,
            redirect_uris=(f"{gateway}/pages/entry-callback",),
            post_logout_redirect_uris=(f"{gateway}/pages/entry",),
        )
    )
    entries = wiring.entries()
    services = ("云影像", "先诊疗后付费", "检查报告", "多学科会诊", "云陪诊", "智能导诊", "院内导航")
    operator = Actor.system("demo")
    entries.put(
        operator,
        Entry(
            hospital="demo-hospital",
            name="示范医院",
            client_id="demo-hospital-web",
            h5_url="https://demo-hospital.example/ih",
            wechat=MiniProgram(app_id="wxdemo0001", path="pages/index/index"),
            alipay=MiniProgram(app_id="2021000000000001", path="pages/index/index"),
            app_scheme="demohospital://ih",
            services=services,
        ),
    )
    entries.put(
        operator,
        Entry(
            hospital="hospital-b",
            name="第二医院",
            h5_url="https://hospital-b.example/ih",
            wechat=MiniProgram(app_id="wxdemo0002", path="pages/home"),
            services=services[:3],
        ),
    )
    out = stack.options.local_dir / "identity"
    out.mkdir(parents=True, exist_ok=True)
    (out / "clients.json").write_text(
        json.dumps(
            {
                "demo-hospital-web": {"secret": web_secret, "redirect_uri": DEMO_RP_REDIRECT},
                "demo-hospital-workbench": {"secret": staff_secret, "redirect_uri": DEMO_RP_REDIRECT},
                "bianjie-entry": {"secret": None, "redirect_uri": f"{gateway}/pages/entry-callback"},
            },
            indent=2,
        )
    )
    stack.demo_urls.append(
        f"{gateway}/pages/entry   (随申办入口：登录、选医院、进入互联网医院、绑卡、先诊疗后付费; "
        "?channel=wechat|alipay|app 换渠道)"
    )
    stack.demo_urls.append(f"{gateway}/identity/oidc/.well-known/openid-configuration   (申康统一认证 OIDC discovery)")
    stack.demo_urls.append(f"{gateway}/identity/entries   (互联网医院入口登记; `bianjie identity login` walks a login)")
