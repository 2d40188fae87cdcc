"""Demo for ``make run``: publishes the built pages (web/pages/dist) to PagesWebBucket and prints one link
per page with a demo identity already signed in (local stage only).

The token rides in the URL's fragment (``#token=...``), which a browser never sends to a server, so it
reaches no access log; the page moves it into sessionStorage and removes it from the address bar at
once. The links' tokens are short-lived (``LINK_TTL``); ``bianjie pages links`` prints fresh ones.

The staff desk's links (rx-doctor, rx-hospital, rx-pharmacy) carry staff tokens: the demo doctor
(role ``doctor``), a hospital prescription clerk (``rx-clerk``) of rx's demo hospital and the demo pharmacist
of its demo pharmacy. The doctor's link also brings the demo doctor's SM2 private key (``key=``, from
``.local/rx/demo-doctor.json``): the STAND-IN of the doctor's USB key, local stage only.

Identity: guide's demo patient (p-demo-1, today's visit V-DEMO-TODAY) carrying the ``id_ref`` of rx's
demo patient, so one person sees their visit, their pay-later agreements and their prescriptions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bianjie_dev.guide.demo import PATIENT
from bianjie_dev.rx.demo import DOCTOR, HOSPITAL, PATIENT_ID, PHARMACIST, PHARMACY

NEEDS = ("guide", "rx", "pay")  # the demo patient's visit, prescriptions and agreements these pages show

LINK_TTL = 2 * 3600
CLERK = {"code": "C310001", "name": "赵收费"}  # the demo hospital's prescription desk (处方流转岗)
# (page, who, what the banner says); who: patient | doctor | clerk | pharmacist
PAGES = (
    ("home", "patient", "患者首页：待办与就诊动态看板 (管家式指引)"),
    ("prefs", "patient", "消息通知设置与订阅消息"),
    ("pay", "patient", "信用就医无感支付：签约、排序与解约"),
    ("rx", "patient", "我的电子处方与医保电子凭证"),
    ("rx-doctor", "doctor", "医生开方台：事前审核、签名、上传、撤销 (演示医生)"),
    ("rx-hospital", "clerk", "医院处方流转岗：院内结算或院外流转 (演示医院)"),
    ("rx-pharmacy", "pharmacist", "药店审方与发药：扫医保电子凭证 (演示药师)"),
)


def identity_tokens(issue: Callable[..., str], blind_digest: Callable[[str, str], str]) -> dict[str, str]:
    """One short-lived token per demo identity; ``issue`` is ``issue_token`` bound to an issuer."""
    return {
        "patient": issue(PATIENT, "patient", id_ref=blind_digest(PATIENT_ID, "id_number")),
        "doctor": issue(DOCTOR["code"], "staff", ["doctor"], hospital=HOSPITAL),
        "clerk": issue(CLERK["code"], "staff", ["rx-clerk"], hospital=HOSPITAL),
        "pharmacist": issue(PHARMACIST["code"], "staff", ["pharmacist"], hospital=PHARMACY),
    }


def doctor_fragment(local_dir: Path) -> dict[str, str]:
    """What the doctor's desk link adds to its fragment: the demo doctor's name and department, and the
    STAND-IN of their USB key (the SM2 private key rx's demo wrote), if rx's demo ran."""
    from bianjie.kit.crypto import Sm2PrivateKey

    path = local_dir / "rx" / "demo-doctor.json"
    extra = {"name": DOCTOR["name"], "dept": DOCTOR["dept_code"], "dept_name": DOCTOR["dept_name"]}
    if path.is_file():
        extra["key"] = Sm2PrivateKey.from_pem(json.loads(path.read_text())["private_key_pem"]).to_hex()
    return extra


def links(
    gateway_url: str, tokens: dict[str, str], extra: dict[str, dict[str, str]] | None = None
) -> list[tuple[str, str]]:
    """One link per page; the token (and ``extra[who]``) in the fragment, which no server ever sees."""
    extra = extra or {}
    return [
        (f"{gateway_url}/pages/{page}#{urlencode({'token': tokens[who], **extra.get(who, {})})}", label)
        for page, who, label in PAGES
    ]


def issuer(invoke: Any) -> Callable[..., str]:
    from bianjie_dev.cli.tokens import issue_token

    def issue(subject: str, kind: str, roles: list[str] | None = None, **kw: str) -> str:
        hospital = kw.pop("hospital", None)
        return issue_token(
            invoke,
            subject,
            kind,
            roles or [],
            ttl_seconds=LINK_TTL,
            hospital=hospital,
            requested_by="system:demo.pages",
            **kw,
        )

    return issue


def seed(stack: Any) -> None:
    from bianjie.kit import deps
    from bianjie.pages import assets

    from bianjie_dev.cli.tokens import via_stack

    dist = stack.options.root / "web" / "pages" / "dist"
    bucket = stack.deployment.ref("PagesWebBucket")
    if not (dist / "home.html").is_file():
        stack.demo_urls.append("pages: web/pages/dist is missing (run `make web`; needs Node 20)")
        return
    assets.publish(deps.objects(), bucket, dist)
    tokens = identity_tokens(issuer(via_stack(stack)), deps.blind_index().digest)
    for url, label in links(stack.gateway_url, tokens, {"doctor": doctor_fragment(stack.options.local_dir)}):
        stack.demo_urls.append(f"{url}   ({label})")
