"""The whole e-prescription path through the rx app (chalice.test.Client + moto), then every refusal."""

from __future__ import annotations

from typing import Any

from tests.functional.rx.conftest import World


def code(response: Any) -> str:
    return response.json_body["error"]["code"]


def test_external_purchase_path(world: World) -> None:
    pre = world.precheck()
    assert pre["status"] == "precheck" and pre["trace_code"] and pre["hi_rxno"] == pre["rx_id"]
    signed = world.sign(pre["rx_id"])
    assert signed.status_code == 200 and signed.json_body["status"] == "signed"
    uploaded = world.upload(pre)
    assert uploaded.status_code == 200, uploaded.body
    assert uploaded.json_body["status"] == "valid" and uploaded.json_body["center_status"] == "1"
    rx_id = pre["rx_id"]
    released = world.ok("hospital-a", "POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"})
    assert released["status"] == "released"
    auth = world.authorize()
    assert [p["rx_id"] for p in auth["prescriptions"]] == [rx_id]
    assert auth["prescriptions"][0]["patient_masked"] == "张*"
    assert world.review(rx_id, auth["authorization_id"]).json_body["status"] == "reviewed"
    done = world.dispense(rx_id, auth["authorization_id"])
    assert done.status_code == 200 and done.json_body["status"] == "dispensed", done.body
    view = world.ok("hospital-a", "GET", f"/rx/prescriptions/{rx_id}")
    assert [h["op"] for h in view["history"]] == [
        "precheck",
        "sign",
        "upload",
        "release",
        "authorize",
        "review",
        "dispense",
    ]
    mine = world.ok("patient", "GET", "/rx/me/prescriptions")
    assert [p["rx_id"] for p in mine["items"]] == [rx_id]
