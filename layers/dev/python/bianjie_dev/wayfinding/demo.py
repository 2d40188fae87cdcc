"""Demo for ``make run``: demo-hospital's campus 仁济示范医院 东院区 (``venues.demo_hospital``: 门诊楼 B1-5F,
医技楼 1F-4F, an outdoor plaza, a 3F skybridge) is imported and published through wayfinding's own
functions, as a nav-admin of demo-hospital would, and the hospital's systems report two overlays (a
queue at 心内科, a broken kiosk) through the partner-signed overlay endpoint.

Written to ``.local/wayfinding/demo.json`` (mode 0600): the venue id, the main entrance and kiosk ids,
and a 12-hour nav-admin token. The banner links the navigation page (``/pages/wayfinding``) located
at the main entrance's kiosk, and the admin page (``/pages/wayfinding-admin``) signed in as the
nav-admin, when the pages are built.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bianjie_dev.wayfinding.venues import demo_hospital, to_zip

HOSPITAL = "demo-hospital"
ADMIN = "nav-demo"
PATIENT = "p-demo-1"  # guide's demo patient, part-way through today's visit (bianjie_dev/guide/demo.py)
# demo-hospital's HIS place codes, as guide's visit events carry them (bianjie_dev/guide/demo.py), set as
# aliases of the POIs they name: the page finds a to-do's place by its code (an exact search match)
PLACE_CODES = {
    ("amenity", "1楼收费窗口"): "rj.out.1f.cashier",
    ("occupant", "超声科（B超室）"): "rj.med.2f.echo",
    ("occupant", "心内科"): "rj.out.3f.cardio",
    ("amenity", "西药房取药窗口"): "rj.out.1f.pharmacy",
}


def _call(
    stack: Any, function_id: str, method: str, resource: str, params: dict[str, str], body: Any, headers: dict[str, str]
) -> dict[str, Any]:
    """Invokes an HTTP function with the API Gateway event the local gateway would build for it."""
    from bianjie.runtime.apigw import Route, build_event, response_parts

    raw = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else b""
    path = resource.format(**params)
    fn = next(f for f in stack.functions if f.spec.logical_id == function_id)
    event = build_event(
        method=method,
        path=path,
        raw_query="",
        headers={**headers, "Content-Type": "application/json"}.items(),
        body=raw,
        source_ip="127.0.0.1",
        route=Route.compile(method, resource, function_id),
        path_params=params,
    )
    status, _, answer = response_parts(fn.invoke(event))
    if status >= 300:
        raise RuntimeError(f"wayfinding demo: {method} {path} answered {status}: {answer[:300]!r}")
    result: dict[str, Any] = json.loads(answer)
    return result


def named(archive: dict[str, Any], file: str, name: str) -> str:
    return next(
        f["id"] for f in archive[file]["features"] if (f["properties"].get("name") or {}).get("zh-Hans") == name
    )


def seed(stack: Any) -> None:
    from bianjie.kit.crypto import Sm2PrivateKey
    from bianjie.kit.signing import sign_request
    from bianjie.kit.tokens import MAX_TTL

    from bianjie_dev.cli.tokens import issue_token, via_stack

    token = issue_token(
        via_stack(stack),
        ADMIN,
        "staff",
        ["nav-admin", "nav-ops"],
        ttl_seconds=MAX_TTL,
        hospital=HOSPITAL,
        requested_by="system:demo",
    )
    auth = {"Authorization": f"Bearer {token}"}
    archive = demo_hospital()
    imported = _call(
        stack,
        "WayfindingImportFunction",
        "POST",
        "/wayfinding/imports",
        {},
        {"archive_base64": base64.b64encode(to_zip(archive)).decode()},
        auth,
    )
    venue, version = imported["venue_id"], imported["version"]
    _call(
        stack,
        "WayfindingPublishFunction",
        "POST",
        "/wayfinding/venues/{venue_id}/versions/{version}/publish",
        {"venue_id": venue, "version": str(version)},
        None,
        auth,
    )

    for (file, name), code in PLACE_CODES.items():
        _call(
            stack,
            "WayfindingPoiUpdateFunction",
            "PATCH",
            "/wayfinding/venues/{venue_id}/pois/{poi_id}",
            {"venue_id": venue, "poi_id": named(archive, file, name)},
            {"aliases": [code]},
            auth,
        )

    local = stack.options.local_dir
    partner = json.loads((local / "partners" / f"{HOSPITAL}.json").read_text(encoding="utf-8"))
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
    now = datetime.now(UTC).isoformat()
    for target, kind, extra in (
        (named(archive, "occupant", "心内科"), "queue_length", {"value": 14}),
        (named(archive, "amenity", "2楼自助机"), "device_status", {"status": "broken"}),
    ):
        body = {"venue_id": venue, "target_id": target, "kind": kind, "observed_at": now, **extra}
        raw = json.dumps(body).encode()
        signed = sign_request(key, "POST", "/wayfinding/overlays", "", raw, HOSPITAL, str(partner["key_serial"]))
        _call(stack, "WayfindingOverlayFunction", "POST", "/wayfinding/overlays", {}, body, signed)

    gate = named(archive, "opening", "正门")
    kiosk = named(archive, "kiosk", "正门导航机")
    path = local / "wayfinding" / "demo.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "hospital": HOSPITAL,
                "venue_id": venue,
                "version": version,
                "main_entrance": gate,
                "kiosk": kiosk,
                "admin_token": token,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    os.chmod(path, 0o600)
    page = stack.options.root / "web" / "wayfinding" / "dist" / "wayfinding.html"
    if page.is_file():
        _publish_pages(stack, page.parent)
        query = urlencode({"hospital": HOSPITAL, "kiosk": kiosk})
        stack.demo_urls.append(
            f"{stack.gateway_url}/pages/wayfinding?{query}"
            "   (院内导航: 正门导航机扫码定位, 搜索“B超”, 无障碍路线与模拟导航)"
        )
        patient = issue_token(via_stack(stack), PATIENT, "patient", ttl_seconds=2 * 3600, requested_by="system:demo")
        stack.demo_urls.append(
            f"{stack.gateway_url}/pages/wayfinding?{query}#token={patient}"
            "   (门诊场景: 演示患者今天的下一项与当日流程，逐项导航)"
        )
        stack.demo_urls.append(
            f"{stack.gateway_url}/pages/wayfinding-admin#token={token}"
            "   (导航管理: 地点启用/停用、标签、别名, 运营视图)"
        )
    else:
        stack.demo_urls.append("wayfinding: web/wayfinding/dist is missing (run `make web`; needs Node 20)")
    stack.demo_urls.append(
        f"curl -s '{stack.gateway_url}/wayfinding/search?venue={venue}&q=B超'"
        f"   (院内导航 demo campus {venue}; {path} has the ids)"
    )


def _publish_pages(stack: Any, dist: Path) -> None:
    from bianjie.kit import deps
    from bianjie.pages import assets

    assets.publish(deps.objects(), stack.deployment.ref("PagesWebBucket"), dist)
