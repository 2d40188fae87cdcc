"""Demo for ``make run``: publishes the built pages (web/pages/dist) to PagesWebBucket and prints one link
per page with a demo identity already signed in (local stage only).

The token rides in the URL's fragment (``#token=...``), which a browser never sends to a server, so it
reaches no access log; the page moves it into sessionStorage and removes it from the address bar at
once. The links' tokens are short-lived (``LINK_TTL``); ``bianjie pages links`` prints fresh ones.

Identity: guide's demo patient (p-demo-1, today's visit V-DEMO-TODAY) carrying the ``id_ref`` of rx's
demo patient, so one person sees their visit, their pay-later agreements and their prescriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bianjie_dev.guide.demo import PATIENT
from bianjie_dev.rx.demo import DOCTOR, HOSPITAL, PATIENT_ID, PHARMACIST, PHARMACY

NEEDS = ("guide", "rx", "pay")  # the demo patient's visit, prescriptions and agreements these pages show

LINK_TTL = 2 * 3600
# (page, who, what the banner says); who: patient | doctor | pharmacist
PAGES = (
    ("home", "patient", "患者首页：待办与就诊动态看板 (管家式指引)"),
    ("prefs", "patient", "消息通知设置与订阅消息"),
    ("pay", "patient", "信用就医无感支付：签约、排序与解约"),
    ("rx", "patient", "我的电子处方与医保电子凭证"),
)
# the staff desk (doctor, pharmacist) is not built yet: its steps are partner-signed HIS and pharmacy-system
# calls today (docs/pages.md, "Not done yet"); identity_tokens still mints their tokens for tools and tests


def identity_tokens(issue: Callable[..., str], blind_digest: Callable[[str, str], str]) -> dict[str, str]:
    """One short-lived token per demo identity; ``issue`` is ``issue_token`` bound to an issuer."""
    return {
        "patient": issue(PATIENT, "patient", id_ref=blind_digest(PATIENT_ID, "id_number")),
        "doctor": issue(DOCTOR["code"], "staff", ["doctor"], hospital=HOSPITAL),
        "pharmacist": issue(PHARMACIST["code"], "staff", ["pharmacist"], hospital=PHARMACY),
    }


def links(gateway_url: str, tokens: dict[str, str]) -> list[tuple[str, str]]:
    return [(f"{gateway_url}/pages/{page}#token={tokens[who]}", label) for page, who, label in PAGES]


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
    for url, label in links(stack.gateway_url, tokens):
        stack.demo_urls.append(f"{url}   ({label})")
