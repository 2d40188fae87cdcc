"""Per-function isolation on the real local stack: each function sees only its own environment and
calls the emulator with its own role, so a missing permission fails here as it would on AWS."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie_dev.runtime.child import StackProcess
from botocore.exceptions import ClientError

from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("isolation"), FIXTURES / "stack" / "isolation.yaml", seed=False)
    yield s
    s.stop()


def call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def test_a_function_does_not_see_a_variable_only_another_declares(stack: StackProcess) -> None:
    status, body = call(f"{stack.url}/env/WRITER_ONLY")
    assert status == 404 and body["error"]["code"] == "ENV_NOT_SET"
    status, body = call(f"{stack.url}/env/NOTES_TABLE")  # its own (from Globals) it sees
    assert status == 200 and body["value"] == stack.ref("NotesTable")
    assert body["in_process_environ"] is False  # and not because the process holds it


def test_a_function_sees_what_lambda_sets(stack: StackProcess) -> None:
    status, body = call(f"{stack.url}/env/AWS_LAMBDA_FUNCTION_NAME")
    assert status == 200 and body["value"] == stack.ref("NotesReaderFunction")


def test_the_call_its_role_allows_succeeds(stack: StackProcess) -> None:
    assert call(f"{stack.url}/notes/n1", "PUT") == (200, {"stored": "n1"})
    assert call(f"{stack.url}/notes/n1") == (200, {"found": True})


def test_the_same_call_without_the_permission_is_refused_as_aws_refuses_it(stack: StackProcess) -> None:
    status, body = call(f"{stack.url}/reader/notes/n2", "PUT")
    assert status == 403
    assert body["error"]["message"] == "AccessDeniedException"
    assert call(f"{stack.url}/notes/n2") == (200, {"found": False})


def test_functions_call_as_their_own_assumed_role(stack: StackProcess) -> None:
    roles = stack.client("iam").list_roles()["Roles"]
    names = {r["RoleName"] for r in roles}
    assert {"bianjie-NotesWriterFunctionRole", "bianjie-NotesReaderFunctionRole"} <= names
    policy = stack.client("iam").get_role_policy(
        RoleName="bianjie-NotesReaderFunctionRole", PolicyName="template-policies"
    )["PolicyDocument"]
    assert "NotesReaderFunctionRolePolicy0" in {s["Sid"] for s in policy["Statement"]}  # SAM's policy name
    actions = {a for s in policy["Statement"] if s["Sid"] == "NotesReaderFunctionRolePolicy0" for a in s["Action"]}
    assert "dynamodb:GetItem" in actions and "dynamodb:PutItem" not in actions


def test_unknown_credentials_are_refused(stack: StackProcess) -> None:
    stranger = stack.client("dynamodb", {"AWS_ACCESS_KEY_ID": "AKIASTRANGER0000000", "AWS_SECRET_ACCESS_KEY": "x"})
    with pytest.raises(ClientError) as caught:
        stranger.list_tables()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_presigned_urls_work_through_the_door_within_the_role(stack: StackProcess) -> None:
    stack.client("s3").put_object(Bucket=stack.ref("FilesBucket"), Key="a.txt", Body=b"hello")
    status, links = call(f"{stack.url}/links/a.txt")
    assert status == 200
    with urllib.request.urlopen(links["get"], timeout=10) as r:  # as a browser fetches it
        assert r.read() == b"hello"
    # the role reads the bucket but may not write it: the presigned PUT is refused, as on AWS
    put = urllib.request.Request(links["put"], data=b"overwrite", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(put, timeout=10)
    assert caught.value.code == 403 and b"AccessDenied" in caught.value.read()
    # a tampered signature is refused too
    with pytest.raises(urllib.error.HTTPError) as tampered:
        urllib.request.urlopen(links["get"].replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10)
    assert tampered.value.code == 403 and b"SignatureDoesNotMatch" in tampered.value.read()


def test_an_expired_presigned_url_is_refused_as_s3_refuses_it(stack: StackProcess) -> None:
    """moto checks no presigned signature or expiry; the door does, so the TTLs the services choose
    (film's ten-minute frame URLs) are enforced on the local stack too."""
    s3 = stack.client("s3")
    bucket = stack.ref("FilesBucket")
    s3.put_object(Bucket=bucket, Key="short.txt", Body=b"brief")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "short.txt"}, ExpiresIn=1)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"brief"
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(url, timeout=10)
    assert expired.value.code == 403 and b"Request has expired" in expired.value.read()
    # a longer lifetime written into a signed URL breaks its signature
    longer = url.replace("X-Amz-Expires=1&", "X-Amz-Expires=604800&")
    assert longer != url
    with pytest.raises(urllib.error.HTTPError) as stretched:
        urllib.request.urlopen(longer, timeout=10)
    assert stretched.value.code == 403 and b"SignatureDoesNotMatch" in stretched.value.read()


def test_a_presigned_put_from_a_role_that_may_write_uploads_as_a_browser_would(stack: StackProcess) -> None:
    status, links = call(f"{stack.url}/upload-links/upload%20one.bin")
    assert status == 200
    # as a browser PUTs a file (urllib would otherwise label the body a form)
    put = urllib.request.Request(
        links["put"], data=b"\x00scan", method="PUT", headers={"Content-Type": "application/octet-stream"}
    )
    with urllib.request.urlopen(put, timeout=10) as r:
        assert r.status == 200
    body = stack.client("s3").get_object(Bucket=stack.ref("FilesBucket"), Key="upload one.bin")["Body"].read()
    assert body == b"\x00scan"


def test_unsigned_requests_are_refused(stack: StackProcess) -> None:
    status, body = call(f"{stack.aws_url}/{stack.ref('FilesBucket')}/a.txt")
    assert status == 403 and b"AccessDenied" in body


def test_a_key_policy_deny_wins_over_a_roles_own_grant(stack: StackProcess) -> None:
    """KMS reads the key policy first: its Deny refuses a role that its own policy allows, as on AWS
    (how the token keys let only the issuer sign)."""
    status, body = call(f"{stack.url}/stamp")
    assert status == 200 and body["signature_bytes"] > 0
    status, body = call(f"{stack.url}/forge")
    assert status == 403 and body["error"]["code"] == "AWS_REFUSED"
    assert "AccessDeniedException" in body["error"]["message"]
    assert "explicit deny in a resource-based policy" in body["error"]["message"]


def test_the_bucket_policy_is_provisioned_from_the_template(stack: StackProcess) -> None:
    policy = json.loads(stack.client("s3").get_bucket_policy(Bucket=stack.ref("RecordsBucket"))["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["OnlyTheArchivistAndTheGrantee", "TheGranteeReads", "TlsOnly"]


def test_a_bucket_policy_deny_wins_over_another_functions_own_grant(stack: StackProcess) -> None:
    """S3 evaluates the bucket policy with the caller's: its Deny refuses a function whose role's own
    S3CrudPolicy allows the read (a cross-function access), and the operator's allow-everything too."""
    assert call(f"{stack.url}/records/r1.txt", "PUT") == (200, {"stored": "r1.txt"})
    assert call(f"{stack.url}/records/r1.txt") == (200, {"body": "r1.txt"})
    status, body = call(f"{stack.url}/snoop/r1.txt")
    assert status == 403 and body["error"]["code"] == "AWS_REFUSED"
    assert body["error"]["message"].startswith("AccessDenied: User: arn:aws-cn:sts::")
    assert "assumed-role/bianjie-SnooperFunctionRole/" in body["error"]["message"]
    assert "explicit deny in a resource-based policy" in body["error"]["message"]
    with pytest.raises(ClientError) as caught:
        stack.client("s3").get_object(Bucket=stack.ref("RecordsBucket"), Key="r1.txt")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    # the bucket's other operations are the operator's still (the Deny names objects only)
    keys = stack.client("s3").list_objects_v2(Bucket=stack.ref("RecordsBucket"))["Contents"]
    assert [k["Key"] for k in keys] == ["r1.txt"]


def test_a_bucket_policy_grants_what_the_roles_own_policies_do_not(stack: StackProcess) -> None:
    """Within one account S3 allows what either the bucket policy or the caller's policies allow: the
    grantee reads with no S3 permission of its own, and may not write (nothing allows it)."""
    assert call(f"{stack.url}/records/r2.txt", "PUT") == (200, {"stored": "r2.txt"})
    assert call(f"{stack.url}/granted/r2.txt") == (200, {"body": "r2.txt"})
    status, body = call(f"{stack.url}/granted/r3.txt", "PUT")
    assert status == 403
    assert "because no identity-based policy allows the s3:PutObject action" in body["error"]["message"]
