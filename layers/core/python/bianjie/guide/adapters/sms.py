"""SMS through Aliyun dysms: the client now lives in the kit (``bianjie.kit.sms``), shared with escort;
its local stand-in is ``bianjie_dev.guide.adapters.sms``. Re-exported here for guide's wiring and tests."""

from __future__ import annotations

from bianjie.kit.sms import ENDPOINT, PROVIDER_DAILY_LIMIT, AliyunSmsClient, http_transport, pct, rpc_signature

__all__ = ["ENDPOINT", "PROVIDER_DAILY_LIMIT", "AliyunSmsClient", "http_transport", "pct", "rpc_signature"]
