"""API Gateway REST (payload v1) proxy events from HTTP requests, and HTTP responses from results."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from bianjie.runtime.deployment import ACCOUNT_ID

TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/javascript",
    "application/problem+json",
    "application/fhir+json",
)


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # e.g. /film/links/{key}
    function_id: str
    pattern: re.Pattern[str]
    params: tuple[str, ...]

    @classmethod
    def compile(cls, method: str, resource: str, function_id: str) -> Route:
        params: list[str] = []
        regex = ""
        for part in re.split(r"(\{[^}]+\})", resource):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if name.endswith("+"):
                    params.append(name[:-1])
                    regex += f"(?P<{_group(name[:-1])}>.+)"
                else:
                    params.append(name)
                    regex += f"(?P<{_group(name)}>[^/]+)"
            else:
                regex += re.escape(part)
        return cls(method, resource, function_id, re.compile(f"^{regex}$"), tuple(params))

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.match(path)
        if m is None:
            return None
        return {name: m.group(_group(name)) for name in self.params}

    @property
    def specificity(self) -> tuple[int, int]:
        """API Gateway prefers literal segments over variables, then longer paths."""
        segments = self.resource.strip("/").split("/")
        return (sum(1 for s in segments if not s.startswith("{")), len(segments))


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    ct = content_type.split(";")[0].strip().lower()
    return ct.startswith(TEXT_TYPES) or ct.endswith("+json")


def build_event(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    route: Route,
    path_params: dict[str, str],
    stage: str = "local",
    request_id: str | None = None,
) -> dict[str, Any]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        # API Gateway keeps the header case the client sent; Chalice matches case-insensitively.
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query_multi.setdefault(name, []).append(value)
    content_type = next((v for k, v in single.items() if k.lower() == "content-type"), None)
    binary = bool(body) and not is_text(content_type)
    if not binary:
        try:
            body_text: str | None = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            binary = True
    if binary:
        body_text = base64.b64encode(body).decode("ascii")
    request_id = request_id or str(uuid.uuid4())
    now = time.time()
    user_agent = next((v for k, v in single.items() if k.lower() == "user-agent"), None)
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query_multi.items()} or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "localhost",
            "requestId": request_id,
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": body_text,
        "isBase64Encoded": binary,
    }


def response_parts(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Turns a proxy integration result into status, headers and body, as API Gateway does."""
    if not isinstance(result, dict) or "statusCode" not in result:
        raise ValueError("handler did not return an API Gateway proxy response")
    status = int(result["statusCode"])
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, values in (result.get("multiValueHeaders") or {}).items():
        seen.add(name.lower())
        headers.extend((name, str(v)) for v in values)
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return status, headers, raw
