"""Pay functional fixtures: the pay app on moto, a signed hospital, patient tokens, and the stand-in
callback queue drained into the same app (as the stand-in notifier does on the local stack)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie.kit.signing import sign_request
from chalice.test import Client

from tests.functional.conftest import DemoPartner, app_of, token_issuer


@pytest.fixture
def pay(aws_stack: Any, partner: DemoPartner) -> Iterator[PayHarness]:
    from bianjie.pay import wiring

    wiring.reset()
    with Client(app_of("pay")) as client:
        yield PayHarness(client, partner)
    wiring.reset()


class PayHarness:
    def __init__(self, client: Client, partner: DemoPartner) -> None:
        self.client = client
        self.partner = partner

    # patients
    def token(self, patient_id: str) -> dict[str, str]:
        token = token_issuer().issue(patient_id, "patient", roles=["patient"])
        return {"Authorization": f"Bearer {token}"}

    def sign(self, patient_id: str, channel: str, account: str) -> Any:
        return self.client.http.post(
            "/pay/agreements",
            headers={**self.token(patient_id), "Content-Type": "application/json"},
            body=json.dumps({"channel": channel, "account": account}),
        )

    def agreements(self, patient_id: str) -> list[dict[str, Any]]:
        response = self.client.http.get("/pay/agreements", headers=self.token(patient_id))
        assert response.status_code == 200, response.body
        return response.json_body["agreements"]

    # hospital
    def signed(self, method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, str]:
        p = self.partner
        return {
            **sign_request(p.key, method, path, "", body, p.app_id, p.serial),
            "Content-Type": "application/json",
            **headers,
        }

    def charge(self, key: str, **fields: Any) -> Any:
        body = json.dumps({"description": "门诊费用", **fields}).encode()
        return self.client.http.post(
            "/pay/charges", headers=self.signed("POST", "/pay/charges", body, **{"Idempotency-Key": key}), body=body
        )

    def get_charge(self, charge_id: str) -> Any:
        path = f"/pay/charges/{charge_id}"
        return self.client.http.get(path, headers=self.signed("GET", path))

    def refund(self, charge_id: str, refund_no: str, amount: int) -> Any:
        path = f"/pay/charges/{charge_id}/refunds"
        body = json.dumps({"refund_no": refund_no, "amount": amount, "reason": "退费"}).encode()
        return self.client.http.post(path, headers=self.signed("POST", path, body), body=body)

    # the stand-in's callback queue
    def post_callback(self, path: str, headers: dict[str, str], body: bytes) -> int:
        return int(self.client.http.post(path, headers=headers, body=body).status_code)

    def drain_callbacks(self, expect: int = 1, timeout: float = 6.0) -> int:
        """Deliver what the stand-ins queued (a settlement queues its callback; async trades settle after
        a short delay, so wait until ``expect`` messages were handled and the queue is empty)."""
        import os
        import time

        from bianjie.kit import aws
        from bianjie.pay import wiring
        from bianjie_dev.pay import standin

        sqs = aws.client("sqs")
        url = os.environ["PAY_STANDIN_NOTIFY_QUEUE"]
        delivered = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                if delivered >= expect:
                    return delivered
                time.sleep(0.2)
                continue
            for m in got:
                standin.deliver(wiring.standins(), json.loads(m["Body"]), self.post_callback)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                delivered += 1
        return delivered
