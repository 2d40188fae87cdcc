"""Demo data for ``make run``: the MDT collaboration of demo-hospital (A) with partner hospital B, and a
hospital C without an agreement.

Seeded the way platform staff and doctors would, through consult's own functions (API Gateway events
built here, since the gateway is not listening yet while the stack seeds): an agreement A-B for MDT,
credentials of doctors A001 and A002 (A), B001 and B002 (B) and C001 (C), then one consultation by A001
with B001 and B002 that both accepted (待会诊), starting in 20 minutes, so the record lists are not empty.

Written to ``.local/consult/demo.json`` (mode 0600): the doctors' and the admin's tokens (12 hours) and
the case id.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bianjie.kit.timefmt import utc_iso

A, B, C = "demo-hospital", "partner-hospital-b", "hospital-c"
DOCTORS = {
    "A001": (A, "王建国", "主任医师", "肿瘤科"),
    "A002": (A, "李敏", "副主任医师", "放射科"),
    "B001": (B, "赵立新", "主任医师", "病理科"),
    "B002": (B, "钱文华", "主任医师", "胸外科"),
    "C001": (C, "孙海", "主治医师", "心内科"),
}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def call(
    stack: Any, function_id: str, method: str, route: str, path: str, body: Any, token: str, **headers: str
) -> Any:
    """Invokes an HTTP function with the API Gateway event the local gateway would build."""
    from bianjie.runtime.apigw import Route, build_event, response_parts

    raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    fn = next(f for f in stack.functions if f.spec.logical_id == function_id)
    compiled = Route.compile(method, route, function_id)
    params = compiled.match(path)
    event = build_event(
        method=method,
        path=path,
        raw_query="",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}.items(),
        body=raw,
        source_ip="127.0.0.1",
        route=compiled,
        path_params=params or {},
    )
    status, _, answer = response_parts(fn.invoke(event))
    if status not in (200, 201):
        raise RuntimeError(f"consult demo: {method} {path} answered {status}: {answer[:300]!r}")
    return json.loads(answer)


def seed(stack: Any) -> None:
    from bianjie.kit.tokens import MAX_TTL

    from bianjie_dev.cli.tokens import issue_token, via_stack

    issuer = via_stack(stack)
    admin = issue_token(
        issuer,
        "ops-demo",
        "staff",
        ["consult-admin"],
        hospital="shenkang",
        ttl_seconds=MAX_TTL,
        requested_by="system:demo",
    )
    tokens = {
        code: issue_token(
            issuer, code, "staff", ["doctor"], hospital=org, ttl_seconds=MAX_TTL, requested_by="system:demo"
        )
        for code, (org, *_rest) in DOCTORS.items()
    }
    today = date.today()
    agreement = call(
        stack,
        "ConsultAgreementCreateFunction",
        "POST",
        "/consult/agreements",
        "/consult/agreements",
        {
            "name": "示范医院—合作医院B 肿瘤多学科会诊协作",
            "parties": [A, B],
            "services": ["mdt", "imaging_review"],
            "valid_from": (today - timedelta(days=30)).isoformat(),
            "valid_to": (today + timedelta(days=365)).isoformat(),
        },
        admin,
    )
    for code, (org, name, title, dept) in DOCTORS.items():
        call(
            stack,
            "ConsultCredentialPutFunction",
            "PUT",
            "/consult/credentials/{org}/{doctor_code}",
            f"/consult/credentials/{org}/{code}",
            {"name": name, "licence_no": f"1103100{code[1:]}0001", "title": title, "department": dept},
            admin,
        )
    body = {
        "invitees": [{"org": B, "doctor_code": "B001"}, {"org": B, "doctor_code": "B002"}],
        "start": utc_iso(time.time() + 20 * 60, "seconds"),
        "duration_min": 60,
        "patient": {"name": "张三", "id_number": "310101196505050012", "sex": "male"},
        "visits": [
            {
                "visit_id": "V-DEMO-0301",
                "visit_date": (today - timedelta(days=7)).isoformat(),
                "department": "肿瘤科",
                "summary": "咳嗽3月，胸部CT示右肺上叶结节 2.1cm",
            }
        ],
        "purpose": "右肺上叶结节性质判断及治疗方案",
        "location": {"kind": "video"},
        "symptoms": "咳嗽3月，痰中带血1周",
        "difficulties": "结节良恶性难以判断，是否需要术前穿刺",
        "diagnosis": "右肺上叶结节，性质待定",
    }
    case = call(
        stack,
        "ConsultApplyFunction",
        "POST",
        "/consult/consultations",
        "/consult/consultations",
        body,
        tokens["A001"],
        **{"Idempotency-Key": f"demo-{int(time.time())}"},
    )
    cid = case["consultation_id"]
    route = "/consult/consultations/{consultation_id}"
    call(
        stack,
        "ConsultConsentFunction",
        "POST",
        f"{route}/consent",
        f"/consult/consultations/{cid}/consent",
        {"method": "written", "reference": "知情同意书-DEMO-001"},
        tokens["A001"],
    )
    call(
        stack,
        "ConsultSubmitFunction",
        "POST",
        f"{route}/submit",
        f"/consult/consultations/{cid}/submit",
        None,
        tokens["A001"],
    )
    for code in ("B001", "B002"):
        call(
            stack,
            "ConsultRespondFunction",
            "POST",
            f"{route}/response",
            f"/consult/consultations/{cid}/response",
            {"answer": "accept"},
            tokens[code],
        )

    local = stack.options.local_dir
    _write(
        local / "consult" / "demo.json",
        json.dumps(
            {
                "agreement_id": agreement["agreement_id"],
                "consultation_id": cid,
                "admin_token": admin,
                "tokens": tokens,
                "doctors": DOCTORS,
            },
            ensure_ascii=False,
            indent=2,
        ),
    )
    pages = publish_pages(stack)
    url = stack.gateway_url
    stack.demo_urls.append(
        f'curl -s -H "Authorization: Bearer $(jq -r .tokens.A001 {local}/consult/demo.json)" '
        f"'{url}/consult/consultations?box=mine'   (多学科会诊 demo: A001's cases, {cid} 待会诊)"
    )
    if pages:
        stack.demo_urls.append(
            f"{url}/pages/consult-records#token={tokens['A001']}   (会诊记录: 王建国 A001, demo-hospital)"
        )
        stack.demo_urls.append(
            f"{url}/pages/consult-records#token={tokens['B001']}   (会诊记录: 赵立新 B001, partner B: 我参与的)"
        )
        stack.demo_urls.append(f"{url}/pages/consult-admin#token={admin}   (协作范围管理: platform admin)")
    else:
        stack.demo_urls.append("consult pages: web/consult/dist is missing (run `make web`; needs Node 20)")


def publish_pages(stack: Any) -> bool:
    """The consult pages (web/consult/dist) into PagesWebBucket, served by the pages service."""
    from bianjie.kit import deps
    from bianjie.pages import assets

    dist = stack.options.root / "web" / "consult" / "dist"
    if not (dist / "consult-records.html").is_file():
        return False
    assets.publish(deps.objects(), stack.deployment.ref("PagesWebBucket"), dist)
    return True
