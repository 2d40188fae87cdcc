"""The emulator's door: IAM evaluated on every call's action AND resource, before moto sees it.

moto's own enforcement (on in the local stack) authenticates header-signed requests (known key, session
token, SigV4 signature) but checks most actions against resource ``*`` only, knows no IAM action names
for DynamoDB transactions and cannot read presigned URLs. This WSGI middleware, inside the moto server
process, maps the request's SigV4 access key to its principal (an assumed role or a user in moto's IAM),
derives the IAM actions and resource ARNs of the call (DynamoDB, S3 including presigned URLs, SQS, SNS,
KMS, STS), evaluates the principal's policies (``bianjie_dev.runtime.iam.evaluate``, Conditions on
``aws:PrincipalArn`` and ``aws:PrincipalAccount`` included), for a KMS key the key policy as KMS does
(``key_policy_verdict``) and for a bucket its bucket policy as S3 does (``bucket_policy_verdict``), and
refuses with the
service's own error shape (``AccessDeniedException``, ``AccessDenied``, ``AuthorizationError``), so botocore
raises what it raises on AWS. Calls the door has decided skip moto's action check; presigned URLs,
which moto cannot authenticate, and every S3 request (moto checks header signatures against a decoded
path), are authenticated here (signature, token, expiry) and skip moto's check altogether.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote
from xml.sax.saxutils import escape

from bianjie.runtime.deployment import ACCOUNT_ID, partition

from bianjie_dev.runtime.iam import evaluate, evaluate_resource_policy

# Set on the worker thread while moto serves a call the door has decided (waitress serves each request on
# one thread, start to end): "decided" skips moto's action check, "authenticated" its whole check.
vouched = threading.local()

Check = tuple[str, str]  # (IAM action, resource ARN)


@dataclass
class Call:
    service: str
    region: str
    access_key: str
    presigned: bool
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def target(self) -> str:
        return self.headers.get("x-amz-target", "")

    def json(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def form(self) -> dict[str, str]:
        fields = parse_qs(self.body.decode("utf-8", "replace")) if self.body else {}
        merged = {k: v[0] for k, v in fields.items()}
        merged.update({k: v[0] for k, v in self.query.items()})
        return merged

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        account = ACCOUNT_ID if regional else ""
        return f"arn:{partition(self.region)}:{service}:{region}:{account}:{resource}"


# -- what a call does, per service ------------------------------------------------------------------


def _table_arn(call: Call, name: str) -> str:
    return name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")


_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def dynamodb_checks(call: Call) -> list[Check]:
    op = call.target.rsplit(".", 1)[-1]
    body = call.json()
    if op == "TransactWriteItems":
        checks = []
        for item in body.get("TransactItems") or []:
            for kind, spec in item.items():
                checks.append((f"dynamodb:{_TRANSACT.get(kind, kind)}", _table_arn(call, spec.get("TableName", ""))))
        return checks
    if op == "TransactGetItems":
        return [("dynamodb:GetItem", _table_arn(call, i["Get"]["TableName"])) for i in body.get("TransactItems") or []]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{op}", _table_arn(call, name)) for name in body.get("RequestItems") or {}]
    if "TableName" in body:
        resource = _table_arn(call, body["TableName"])
        if body.get("IndexName"):
            resource += f"/index/{body['IndexName']}"
        return [(f"dynamodb:{op}", resource)]
    return [(f"dynamodb:{op}", "*")]


_S3_BUCKET_SUBRESOURCES = {
    ("GET", "location"): "GetBucketLocation",
    ("GET", "cors"): "GetBucketCORS",
    ("PUT", "cors"): "PutBucketCORS",
    ("DELETE", "cors"): "PutBucketCORS",
    ("GET", "notification"): "GetBucketNotification",
    ("PUT", "notification"): "PutBucketNotification",
    ("GET", "policy"): "GetBucketPolicy",
    ("PUT", "policy"): "PutBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("GET", "versioning"): "GetBucketVersioning",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "versions"): "ListBucketVersions",
    ("GET", "uploads"): "ListBucketMultipartUploads",
    ("GET", "acl"): "GetBucketAcl",
    ("PUT", "acl"): "PutBucketAcl",
    ("GET", "tagging"): "GetBucketTagging",
    ("PUT", "tagging"): "PutBucketTagging",
    ("GET", "encryption"): "GetEncryptionConfiguration",
    ("PUT", "encryption"): "PutEncryptionConfiguration",
    ("GET", "publicAccessBlock"): "GetBucketPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutBucketPublicAccessBlock",
    ("GET", "lifecycle"): "GetLifecycleConfiguration",
    ("PUT", "lifecycle"): "PutLifecycleConfiguration",
}
_S3_OBJECT_SUBRESOURCES = {
    ("GET", "acl"): "GetObjectAcl",
    ("PUT", "acl"): "PutObjectAcl",
    ("GET", "tagging"): "GetObjectTagging",
    ("PUT", "tagging"): "PutObjectTagging",
    ("DELETE", "tagging"): "DeleteObjectTagging",
    ("GET", "uploadId"): "ListMultipartUploadParts",
    ("DELETE", "uploadId"): "AbortMultipartUpload",
    ("POST", "restore"): "RestoreObject",
}
_DELETE_KEY = re.compile(rb"<Key>(.*?)</Key>", re.DOTALL)


def s3_checks(call: Call) -> list[Check]:
    bucket, _, key = call.path.lstrip("/").partition("/")
    s3 = f"arn:{partition(call.region)}:s3:::"
    method = "GET" if call.method == "HEAD" else call.method
    if not bucket:
        return [("s3:ListAllMyBuckets", "*")]
    if not key:
        for (verb, sub), action in _S3_BUCKET_SUBRESOURCES.items():
            if verb == method and sub in call.query:
                return [(f"s3:{action}", s3 + bucket)]
        if method == "POST" and "delete" in call.query:
            keys = [unescape_xml(k) for k in _DELETE_KEY.findall(call.body)]
            return [("s3:DeleteObject", f"{s3}{bucket}/{k}") for k in keys] or [("s3:DeleteObject", f"{s3}{bucket}/*")]
        action = {"GET": "ListBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, "ListBucket")
        return [(f"s3:{action}", s3 + bucket)]
    resource = f"{s3}{bucket}/{key}"
    for (verb, sub), action in _S3_OBJECT_SUBRESOURCES.items():
        if verb == method and sub in call.query:
            return [(f"s3:{action}", resource)]
    if method == "GET":
        return [("s3:GetObjectVersion" if "versionId" in call.query else "s3:GetObject", resource)]
    if method in ("PUT", "POST"):
        checks = [("s3:PutObject", resource)]
        source = call.headers.get("x-amz-copy-source")
        if source:
            source_path = unquote(source.split("?", 1)[0]).lstrip("/")
            checks.append(("s3:GetObject", s3 + source_path))
        return checks
    if method == "DELETE":
        return [("s3:DeleteObject", resource)]
    return [(f"s3:{method.title()}Object", resource)]


def unescape_xml(raw: bytes) -> str:
    return raw.decode("utf-8").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


# batch operations are authorised as their single forms, as AWS does
_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def sqs_checks(call: Call) -> list[Check]:
    if call.target:
        op, params = call.target.rsplit(".", 1)[-1], call.json()
    else:
        params = call.form()
        op = params.get("Action", "")
    action = f"sqs:{_SQS_ACTIONS.get(op, op)}"
    url = params.get("QueueUrl")
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else params.get("QueueName")
    return [(action, call.arn("sqs", name) if name else "*")]


def sns_checks(call: Call) -> list[Check]:
    params = call.form()
    op = params.get("Action", "")
    action = "sns:Publish" if op == "PublishBatch" else f"sns:{op}"
    topic = params.get("TopicArn") or params.get("TargetArn")
    if op == "CreateTopic" and params.get("Name"):
        topic = call.arn("sns", params["Name"])
    if not topic and params.get("SubscriptionArn"):
        topic = params["SubscriptionArn"].rsplit(":", 1)[0]
    return [(action, topic or "*")]


def kms_key_arn(call: Call, key_id: str | None, blob: str | None) -> str:
    from moto.kms.models import kms_backends
    from moto.kms.utils import _deserialize_ciphertext_blob

    backend = kms_backends[ACCOUNT_ID][call.region]
    try:
        if key_id:
            raw = backend.any_id_to_key_id(key_id)
        elif blob:
            raw = _deserialize_ciphertext_blob(base64.b64decode(blob)).key_id
        else:
            return "*"
    except Exception:
        return "*"
    return call.arn("kms", f"key/{raw}")


def kms_checks(call: Call) -> list[Check]:
    op = call.target.rsplit(".", 1)[-1]
    body = call.json()
    if op in ("ListKeys", "ListAliases", "CreateKey", "GenerateRandom"):
        return [(f"kms:{op}", "*")]
    if op == "ReEncrypt":
        return [
            ("kms:ReEncryptFrom", kms_key_arn(call, body.get("SourceKeyId"), body.get("CiphertextBlob"))),
            ("kms:ReEncryptTo", kms_key_arn(call, body.get("DestinationKeyId"), None)),
        ]
    return [(f"kms:{op}", kms_key_arn(call, body.get("KeyId"), body.get("CiphertextBlob")))]


def sts_checks(call: Call) -> list[Check]:
    params = call.form()
    op = params.get("Action", "")
    if op == "GetCallerIdentity":
        return []  # AWS allows it to every principal, whatever its policies say
    return [(f"sts:{op}", params.get("RoleArn") or "*")]


CHECKS: dict[str, Callable[[Call], list[Check]]] = {
    "dynamodb": dynamodb_checks,
    "s3": s3_checks,
    "sqs": sqs_checks,
    "sns": sns_checks,
    "kms": kms_checks,
    "sts": sts_checks,
}


# -- who is calling ---------------------------------------------------------------------------------


@dataclass
class Principal:
    arn: str
    secret: str
    session_token: str | None
    documents: list[dict[str, Any]]
    iam_arn: str = ""  # what aws:PrincipalArn is: the role's ARN for an assumed-role session

    @property
    def context(self) -> dict[str, str]:
        return {"aws:PrincipalArn": self.iam_arn or self.arn, "aws:PrincipalAccount": ACCOUNT_ID}


def find_principal(access_key: str, region: str) -> Principal | None:
    """The principal an access key belongs to in moto's IAM/STS, with its current policies."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    part = partition(region)
    iam = iam_backends[ACCOUNT_ID][part]
    for assumed in sts_backends[ACCOUNT_ID][part].assumed_roles:
        if assumed.access_key_id == access_key:
            role = iam.get_role(assumed.role_arn.rsplit("/", 1)[-1])
            docs = [_parsed(p) for p in role.policies.values()]
            docs += [_parsed(_default_version(p)) for p in role.managed_policies.values()]
            return Principal(assumed.arn, assumed.secret_access_key, assumed.session_token, docs, role.arn)
    for user in iam.users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key:
                docs = [_parsed(p) for p in user.policies.values()]
                docs += [_parsed(_default_version(p)) for p in user.managed_policies.values()]
                return Principal(user.arn, key.secret_access_key, None, docs)
    return None


def _default_version(policy: Any) -> str:
    return next(v.document for v in policy.versions if v.is_default)


_parsed_cache: dict[str, dict[str, Any]] = {}


def _parsed(document: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(document, dict):
        return document
    found = _parsed_cache.get(document)
    if found is None:
        found = json.loads(unquote(document) if document.startswith("%7B") else document)
        if len(_parsed_cache) < 4096:
            _parsed_cache[document] = found
    return found


# -- refusals in each service's shape --------------------------------------------------------------


def _message(principal: str, action: str, resource: str, explicit: bool, where: str = "identity-based") -> str:
    head = f"User: {principal} is not authorized to perform: {action} on resource: {resource}"
    if explicit:
        return f"{head} with an explicit deny in a {where} policy"
    return f"{head} because no {where} policy allows the {action} action"


def key_policy_verdict(call: Call, principal: Principal, action: str, key_arn: str, identity: str) -> tuple[str, str]:
    """KMS's rule: the key policy is the gate. An explicit Deny in it or in the caller's policies wins;
    otherwise the key policy must allow the caller itself, or allow the caller's account (the usual
    root statement) and the caller's own policies allow the action. -> (verdict, which policy decided)."""
    from moto.kms.models import kms_backends

    try:
        key = kms_backends[ACCOUNT_ID][call.region].keys[key_arn.rsplit("/", 1)[-1]]
        policy = json.loads(key.policy)
    except (KeyError, ValueError, TypeError):
        return identity, "identity-based"  # no key or no readable policy: moto answers as it would
    root = f"arn:{partition(call.region)}:iam::{ACCOUNT_ID}:root"
    verdict = evaluate_resource_policy(policy, action, key_arn, principal.context, account_root=root)
    if verdict == "deny":
        return "deny", "resource-based"
    if identity == "deny":
        return "deny", "identity-based"
    if verdict == "allow" or (verdict == "account" and identity == "allow"):
        return "allow", ""
    return "implicit", "identity-based" if verdict == "account" else "resource-based"


def _bucket_policy(call: Call, bucket: str) -> dict[str, Any] | None:
    """The bucket's policy as moto stores it (PutBucketPolicy, or the template's AWS::S3::BucketPolicy)."""
    from moto.s3.models import s3_backends

    try:
        raw = s3_backends[ACCOUNT_ID][partition(call.region)].buckets[bucket].policy
    except KeyError:
        return None
    if not raw:
        return None
    try:
        return _parsed(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None


def bucket_policy_verdict(
    call: Call, principal: Principal, action: str, resource: str, identity: str
) -> tuple[str, str]:
    """S3's rule for a principal of the bucket's own account: an explicit Deny in the bucket policy or in
    the caller's policies wins; otherwise either one allowing is enough (the bucket policy may grant a
    role that its own policies do not, and a role's grant needs no bucket policy). A bucket policy that
    allows only the account (its root) hands the decision to the caller's policies, as IAM's evaluation
    does. -> (verdict, which policy decided a refusal)."""
    bucket = resource.split(":::", 1)[-1].split("/", 1)[0]
    policy = _bucket_policy(call, bucket) if bucket and resource != "*" else None
    if policy is None:
        return identity, "identity-based"
    root = f"arn:{partition(call.region)}:iam::{ACCOUNT_ID}:root"
    # the functions reach S3 over TLS on AWS; the loopback endpoint stands in for it
    context = {**principal.context, "aws:SecureTransport": "true"}
    verdict = evaluate_resource_policy(policy, action, resource, context, account_root=root)
    if verdict == "deny":
        return "deny", "resource-based"
    if identity == "deny":
        return "deny", "identity-based"
    if verdict == "allow" or identity == "allow":
        return "allow", ""
    return "implicit", "identity-based"


def refusal(
    service: str, call: Call, message: str, code: str = "AccessDenied"
) -> tuple[str, list[tuple[str, str]], bytes]:
    if service in ("dynamodb", "kms") or (service == "sqs" and call.target):
        version = "1.1" if service == "kms" else "1.0"
        body = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "message": message})
        headers = [("Content-Type", f"application/x-amz-json-{version}")]
        if service == "sqs":
            headers.append(("x-amzn-query-error", "AccessDenied;Sender"))
        return "400 Bad Request", headers, body.encode()
    if service == "s3":
        xml = (
            "<?xml version='1.0' encoding='UTF-8'?>"
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message><RequestId>door</RequestId></Error>"
        )
        return "403 Forbidden", [("Content-Type", "application/xml")], xml.encode()
    code = "AuthorizationError" if service == "sns" and code == "AccessDenied" else code
    xml = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        "<RequestId>door</RequestId></ErrorResponse>"
    )
    return "403 Forbidden", [("Content-Type", "text/xml")], xml.encode()


def anonymous_refusal(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """An unsigned call: every bucket and API of the stack is private, as ours are on AWS."""
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")], body.encode()
    xml = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>door</RequestId></Error>"
    )
    return "403 Forbidden", [("Content-Type", "application/xml")], xml.encode()


def unknown_key_refusal(call: Call) -> tuple[str, list[tuple[str, str]], bytes]:
    """An access key no principal holds, refused as each service refuses it."""
    message = "The security token included in the request is invalid."
    if call.service in ("dynamodb", "kms") or (call.service == "sqs" and call.target):
        version = "1.1" if call.service == "kms" else "1.0"
        body = json.dumps({"__type": "com.amazon.coral.service#UnrecognizedClientException", "message": message})
        headers = [("Content-Type", f"application/x-amz-json-{version}")]
        if call.service == "sqs":
            headers.append(("x-amzn-query-error", "InvalidClientTokenId;Sender"))
        return "400 Bad Request", headers, body.encode()
    if call.service == "s3":
        return refusal(
            "s3", call, "The AWS Access Key Id you provided does not exist in our records.", "InvalidAccessKeyId"
        )
    return refusal(call.service, call, message, "InvalidClientTokenId")


# -- presigned URLs -----------------------------------------------------------------------------------


def _raw_path(environ: dict[str, Any]) -> str:
    """The path as the client sent (and signed) it, still percent-encoded."""
    raw = str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or "")
    return raw.split("?", 1)[0] if raw else quote(environ.get("PATH_INFO", "/"), safe="/~")


def s3_signature_problem(call: Call, principal: Principal, environ: dict[str, Any]) -> str | None:
    """Why an S3 request's SigV4 signature (header or presigned URL) does not hold, or None.

    moto cannot check presigned URLs, and checks header signatures against a decoded path (keys with
    spaces or ``+`` fail), so the door authenticates every S3 request itself.
    """
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    credentials = Credentials(call.access_key, principal.secret, principal.session_token)
    host = call.headers.get("host", "")
    raw_query = str(environ.get("QUERY_STRING", ""))
    if call.presigned:
        stamp = call.param("X-Amz-Date") or ""
        try:
            signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            expires = int(call.param("X-Amz-Expires") or "0")
        except ValueError:
            return "AuthorizationQueryParametersError"
        if dt.datetime.now(dt.UTC) > signed_at + dt.timedelta(seconds=expires):
            return "Request has expired"
        if principal.session_token and call.param("X-Amz-Security-Token") != principal.session_token:
            return "The provided token is malformed or otherwise invalid."
        signed = (call.param("X-Amz-SignedHeaders") or "host").split(";")
        given = call.param("X-Amz-Signature")
        query = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
        auth: Any = S3SigV4QueryAuth(credentials, "s3", call.region, expires)
    else:
        authorization = call.headers.get("authorization", "")
        stamp = call.headers.get("x-amz-date", "")
        if principal.session_token and call.headers.get("x-amz-security-token") != principal.session_token:
            return "The provided token is malformed or otherwise invalid."
        signed = authorization.partition("SignedHeaders=")[2].partition(",")[0].split(";")
        given = authorization.partition("Signature=")[2].partition(",")[0].strip()
        query = raw_query
        auth = S3SigV4Auth(credentials, "s3", call.region)
    url = f"http://{host}{_raw_path(environ)}" + (f"?{query}" if query else "")
    headers = {name: value for name, value in call.headers.items() if name in signed}
    request = AWSRequest(method=call.method, url=url, headers=headers, data=call.body)
    request.context["timestamp"] = stamp
    canonical = auth.canonical_request(request)
    if auth.signature(auth.string_to_sign(request, canonical), request) != given:
        return "The request signature we calculated does not match the signature you provided."
    return None


# -- the middleware -----------------------------------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Tally:
    """Calls and server CPU (this thread's, so waiting for moto's lock is not counted) by service and
    action, written as JSON to ``path`` when the server exits: which calls a benchmark's load is made of."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.calls: dict[str, list[float]] = {}  # "dynamodb:PutItem" -> [calls, cpu seconds]
        atexit.register(self.write)

    def add(self, name: str, cpu: float) -> None:
        with self.lock:
            entry = self.calls.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += cpu

    def write(self) -> None:
        with self.lock:
            rows = {k: {"calls": int(n), "cpu_s": round(c, 4)} for k, (n, c) in sorted(self.calls.items())}
        with open(self.path, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=1)


def _action_of(call: Call) -> str:
    target = call.target
    if target and call.service == "dynamodb":
        body = call.json()
        names = {body["TableName"]} if "TableName" in body else set()
        for op in body.get("TransactItems") or []:
            names |= {part.get("TableName", "") for part in op.values()}
        tables = "+".join(sorted(n for n in names if n))
        return target.rsplit(".", 1)[-1] + (f" {tables}" if tables else "")
    if target:
        return target.rsplit(".", 1)[-1]
    if call.service in ("sqs", "sns", "sts", "iam") and call.body:
        found = parse_qs(call.body.decode("latin-1")).get("Action")
        if found:
            return found[0]
    return call.method


class Door:
    def __init__(self, app: Callable[..., Iterable[bytes]], tally_path: str | None = None) -> None:
        self.app = app
        self.tally = Tally(tally_path) if tally_path else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api") or environ.get("REQUEST_METHOD") == "OPTIONS":
            return self.app(environ, start_response)
        call = self._call(environ)
        if call is None:
            return self._refuse(start_response, anonymous_refusal(environ))
        principal = find_principal(call.access_key, call.region)
        if principal is None:
            return self._refuse(start_response, unknown_key_refusal(call))
        if call.service == "s3":
            problem = s3_signature_problem(call, principal, environ)
            if problem is not None:
                code = "SignatureDoesNotMatch" if "signature" in problem else "AccessDenied"
                return self._refuse(start_response, refusal("s3", call, problem, code))
        derive = CHECKS.get(call.service)
        if derive is not None:
            for action, resource in derive(call):
                verdict, where = evaluate(principal.documents, action, resource, principal.context), "identity-based"
                if call.service == "kms" and resource != "*":
                    verdict, where = key_policy_verdict(call, principal, action, resource, verdict)
                elif call.service == "s3":
                    verdict, where = bucket_policy_verdict(call, principal, action, resource, verdict)
                if verdict != "allow":
                    message = _message(principal.arn, action, resource, verdict == "deny", where)
                    return self._refuse(start_response, refusal(call.service, call, message))
        vouched.decided = derive is not None
        vouched.authenticated = call.service == "s3"
        started = time.thread_time()
        try:
            return self.app(environ, start_response)
        finally:
            vouched.decided = vouched.authenticated = False
            if self.tally is not None:
                self.tally.add(f"{call.service}:{_action_of(call)}", time.thread_time() - started)

    @staticmethod
    def _refuse(start_response: Callable[..., Any], answer: tuple[str, list[tuple[str, str]], bytes]) -> list[bytes]:
        status, headers, body = answer
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def _call(environ: dict[str, Any]) -> Call | None:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        presigned = False
        match = _CREDENTIAL.search(authorization)
        if match is None and "X-Amz-Credential" in query:
            match = _CREDENTIAL.search("Credential=" + query["X-Amz-Credential"][0])
            presigned = True
        if match is None:
            return None
        access_key, region, service = match.groups()
        length = environ.get("CONTENT_LENGTH")
        # waitress has the whole body buffered (de-chunked) before the app runs, so reading it all is cheap
        body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = environ[name]
        return Call(
            service=service,
            region=region,
            access_key=access_key,
            presigned=presigned,
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace"),
            query=query,
            headers=headers,
            body=body,
        )


def install_moto_hooks() -> None:
    """moto skips what the door decided: its action check (resource ``*``) for calls the door evaluated,
    its whole check for S3 requests the door authenticated (moto cannot read presigned URLs), and its
    partial reading of bucket policies for those."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequestBase

    original_check = IAMRequestBase.check_action_permitted
    if getattr(original_check, "_bianjie_door", False):
        return

    def check_action_permitted(self: Any, resource: str) -> None:
        if getattr(vouched, "decided", False):
            return
        original_check(self, resource)

    original_auth = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if getattr(vouched, "authenticated", False):
            return
        original_auth(self, iam_request_cls, resource)

    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    original_permission = FakeBucket.get_permission

    def get_permission(self: Any, action: str, resource: str) -> Any:
        # moto's own reading of a bucket policy (Principal "*" only, Conditions ignored: a Deny with a
        # Condition would deny everyone); the door has evaluated the policy as S3 does
        if getattr(vouched, "authenticated", False):
            return PermissionResult.NEUTRAL
        return original_permission(self, action, resource)

    check_action_permitted._bianjie_door = True  # type: ignore[attr-defined]
    IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate  # type: ignore[method-assign]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def bootstrap_admin(region: str, user: str, access_key_id: str, secret: str) -> str:
    """The operator principal (provisioner, CLI, seeding, tests): a user allowed everything, with the
    access key the stack chose (moto's server starts with IAM enforced, so it must exist before any call)."""
    from moto.iam.models import iam_backends

    iam = iam_backends[ACCOUNT_ID][partition(region)]
    created = iam.create_user(region, user, "/", None)
    iam.put_user_policy(
        user,
        "administrator",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    key = iam.create_access_key(user)
    key.access_key_id, key.secret_access_key = access_key_id, secret
    return str(created.arn)
