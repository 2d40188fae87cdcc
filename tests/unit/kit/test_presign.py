"""The bulk presigner must produce exactly what botocore produces for the same instant."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import boto3
import pytest
from bianjie.kit.presign import BulkPresigner

NOW = dt.datetime(2026, 11, 22, 8, 30, 5, tzinfo=dt.UTC)
KEYS = ["studies/1.2.3/series/4.5/instances/6.7/frames/1", "a b/c+d/中文/~x", "plain"]


@pytest.mark.parametrize(
    "endpoint,token",
    [("http://127.0.0.1:5999", None), (None, None), (None, "session-token/with+chars=")],
    ids=["path-style-endpoint", "virtual-host", "with-session-token"],
)
def test_matches_botocore_byte_for_byte(endpoint: str | None, token: str | None) -> None:
    client = boto3.client(
        "s3",
        region_name="cn-north-1",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
    )
    presigner = BulkPresigner(client, clock=NOW.timestamp)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        expected = [
            client.generate_presigned_url("get_object", Params={"Bucket": "film-derived", "Key": k}, ExpiresIn=600)
            for k in KEYS
        ]
        ours = presigner.presign_get("film-derived", KEYS, 600)
    assert ours == expected


def test_put_urls_match_botocore_byte_for_byte() -> None:
    client = boto3.client(
        "s3",
        region_name="cn-north-1",
        endpoint_url="http://127.0.0.1:5999",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    presigner = BulkPresigner(client, clock=NOW.timestamp)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        expected = [
            client.generate_presigned_url("put_object", Params={"Bucket": "film-derived", "Key": k}, ExpiresIn=300)
            for k in KEYS
        ]
        ours = presigner.presign("film-derived", KEYS, 300, "PUT")
    assert ours == expected
