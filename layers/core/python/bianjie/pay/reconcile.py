"""Daily reconciliation (对账): our successful trades and refunds of a day against each channel's bill.

For each channel the bill is downloaded and its SM3 hash checked (a bill that fails the check is
reported as such and not compared). Three differences are reported:

- ``missing_local``: on the channel's bill, not in our records (money moved we do not know of);
- ``missing_remote``: in our records, not on the bill (we think money moved; the channel does not);
- ``amount_mismatch``: on both, different amounts.

Days are Beijing dates (the channels' bill dates). The report is written as JSON (``ReportSink``) and
its summary kept in the pay table; anomalies recorded on charges (a success after a definite no) are
listed too, because they need the same operator attention.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bianjie.kit.logging import get_logger
from bianjie.kit.objects import ObjectNotFound, ObjectStore
from bianjie.pay.channels import ChannelPort, ChannelRejected, ChannelUnknown
from bianjie.pay.models import Channel, now_iso
from bianjie.pay.store import PayStore

log = get_logger("bianjie.pay.reconcile")


class ReportSink(Protocol):
    def write(self, day: str, report: dict[str, Any]) -> str: ...


class ObjectReportSink:
    """Reports as JSON objects ``reconciliation/<day>/report.json`` through the kit's objects port."""

    def __init__(self, objects: ObjectStore, bucket: str) -> None:
        self.objects = objects
        self.bucket = bucket

    def write(self, day: str, report: dict[str, Any]) -> str:
        key = f"reconciliation/{day}/report.json"
        body = json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8")
        self.objects.put(self.bucket, key, body, content_type="application/json; charset=utf-8")
        return f"s3://{self.bucket}/{key}"

    def read(self, day: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.objects.get(self.bucket, f"reconciliation/{day}/report.json")))
        except ObjectNotFound:
            return None


def compare(ours: Mapping[str, int], theirs: Mapping[str, int]) -> dict[str, list[dict[str, Any]]]:
    """The three differences between {out_no: amount} maps."""
    return {
        "missing_local": [{"out_no": k, "channel_amount": theirs[k]} for k in sorted(theirs.keys() - ours.keys())],
        "missing_remote": [{"out_no": k, "our_amount": ours[k]} for k in sorted(ours.keys() - theirs.keys())],
        "amount_mismatch": [
            {"out_no": k, "our_amount": ours[k], "channel_amount": theirs[k]}
            for k in sorted(ours.keys() & theirs.keys())
            if ours[k] != theirs[k]
        ],
    }


class Reconciler:
    def __init__(
        self,
        store: PayStore,
        channels: Mapping[Channel, ChannelPort],
        sink: ReportSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._channels = channels
        self._sink = sink
        self._clock = clock

    def run(self, day: str) -> dict[str, Any]:
        report: dict[str, Any] = {"day": day, "generated_at": now_iso(self._clock()), "channels": {}}
        for channel, port in sorted(self._channels.items()):
            report["channels"][channel.value] = self._one(channel, port, day)
        totals = {
            kind: sum(len(c.get(kind, [])) for c in report["channels"].values())
            for kind in ("missing_local", "missing_remote", "amount_mismatch")
        }
        report["totals"] = totals
        report["clean"] = not any(totals.values()) and all(c["bill"] == "OK" for c in report["channels"].values())
        location = self._sink.write(day, report)
        report["location"] = location
        self._store.put_report(
            day,
            {"clean": report["clean"], "totals": totals, "location": location, "generated_at": report["generated_at"]},
        )
        log.info("reconciliation done", extra={"day": day, "clean": report["clean"], **totals})
        return report

    def _one(self, channel: Channel, port: ChannelPort, day: str) -> dict[str, Any]:
        ours: dict[str, int] = {}
        for item in self._store.reconciliation_items(channel, day):
            if item["sk"] == "CHARGE":
                ours[str(item["recon_sk"]).removeprefix("T#")] = int(item["amount"])
            else:
                ours[str(item["recon_sk"]).removeprefix("R#")] = -int(item["amount"])
        try:
            bill = port.download_bill(day)
        except (ChannelUnknown, ChannelRejected) as exc:
            return {"bill": "UNAVAILABLE", "error": str(exc), "ours": len(ours)}
        if not bill.hash_ok:
            return {"bill": "HASH_MISMATCH", "ours": len(ours)}
        theirs = {ln.out_no: (ln.amount if ln.kind == "TRADE" else -ln.amount) for ln in bill.lines}
        return {"bill": "OK", "ours": len(ours), "theirs": len(theirs), **compare(ours, theirs)}


def previous_day(event_time: str | None = None) -> str:
    """The Beijing date before the schedule's firing time (EventBridge ``time``), or before now."""
    from datetime import datetime, timedelta

    from bianjie.kit.timefmt import BEIJING

    fired = datetime.fromisoformat(event_time.replace("Z", "+00:00")) if event_time else datetime.now(BEIJING)
    return (fired.astimezone(BEIJING) - timedelta(days=1)).date().isoformat()
