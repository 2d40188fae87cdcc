"""Demo for ``make run``: the guide demo's patient (p-demo-1) is part-way through visit V-DEMO-TODAY;
guide announces each step (guide.visit_progressed) and escort's queue brings it into the escort room
once the event pump runs. This writes the tokens a new user needs to try accompanied visits:

``.local/escort/demo.json`` (mode 0600): the patient's token (12 h), an escort-operator token for
``GET /escort/outbox`` (what the SMS stand-in "delivered"), the visit id, and the pages to open.

Try it (docs/escort.md, "Try it locally"): open the invite page with the patient token, invite a
companion by SMS, open the link from the outbox, ask for the phone code (the outbox shows it), type the
invitation code the invite page showed, watch the room; post a guide event (``bianjie escort
next-event`` prints one, ``bianjie request`` signs it as demo-hospital) and see the room move; revoke.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

NEEDS = ("guide",)  # the guide demo patient's visit of today, which the escort room follows
PATIENT = "p-demo-1"
VISIT = "V-DEMO-TODAY"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)


def publish_pages(stack: Any) -> bool:
    """web/escort/dist into PagesWebBucket beside the other pages (served at /pages/escort-<page>)."""
    from bianjie.kit import deps
    from bianjie.pages import assets

    dist = stack.options.root / "web" / "escort" / "dist"
    if not (dist / "escort-join.html").is_file():
        return False
    assets.publish(deps.objects(), stack.deployment.ref("PagesWebBucket"), dist)
    return True


def seed(stack: Any) -> None:
    from bianjie.kit.tokens import MAX_TTL

    from bianjie_dev.cli.tokens import issue_token, via_stack

    issuer = via_stack(stack)
    patient = issue_token(issuer, PATIENT, "patient", ttl_seconds=MAX_TTL, requested_by="system:demo")
    operator = issue_token(
        issuer, "ops-demo", "staff", ["escort-operator"], ttl_seconds=MAX_TTL, requested_by="system:demo"
    )
    local = stack.options.local_dir
    base = stack.gateway_url
    pages = {
        "invite": f"{base}/pages/escort-invite#token={patient}&visit={VISIT}",
        "outbox": f"{base}/escort/outbox",
    }
    published = publish_pages(stack)
    _write(
        local / "escort" / "demo.json",
        json.dumps(
            {
                "patient_id": PATIENT,
                "visit_id": VISIT,
                "token": patient,
                "operator_token": operator,
                "token_expires_at": int(time.time()) + MAX_TTL,
                "pages": pages,
            },
            ensure_ascii=False,
            indent=2,
        ),
    )
    _write(local / "escort" / "patient.token", patient + "\n")
    _write(local / "escort" / "operator.token", operator + "\n")
    if published:
        stack.demo_urls.append(f"{pages['invite']}   (云陪诊: invite a companion for demo patient {PATIENT}'s visit)")
    else:
        stack.demo_urls.append("escort pages: web/escort/dist is missing (run `make web`; needs Node 20)")
    stack.demo_urls.append(
        f'curl -s -H "Authorization: Bearer $(cat {local / "escort" / "operator.token"})" {pages["outbox"]}'
        "   (云陪诊 SMS stand-in outbox: the invitation link and phone codes)"
    )
