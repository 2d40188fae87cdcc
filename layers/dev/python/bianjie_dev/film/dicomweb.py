"""A partner's DICOMweb client: ``requests`` auth that signs every request with the partner's SM2 key, so
an unmodified ``dicomweb_client.DICOMwebClient(url, session=signed_session(...))`` talks to our DICOMweb
endpoints (docs/film.md "DICOMweb for partners"). Tooling: tests, walkthroughs, the benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request


class PartnerSignature(requests.auth.AuthBase):
    """Signs method, path (without ``strip_prefix``, e.g. an API Gateway stage), query and body."""

    def __init__(self, key: Sm2PrivateKey, app_id: str, serial: str, *, strip_prefix: str = "") -> None:
        self.key = key
        self.app_id = app_id
        self.serial = serial
        self.strip_prefix = strip_prefix.rstrip("/")

    def __call__(self, request: Any) -> Any:
        parts = urlsplit(request.url)
        path = parts.path
        if self.strip_prefix and path.startswith(self.strip_prefix):
            path = path[len(self.strip_prefix) :] or "/"
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            # dicomweb-client streams a large store in chunks: the signature covers the whole body, so it
            # is sent whole, with its length
            body = b"".join(body)
            request.body = body
            request.headers.pop("Transfer-Encoding", None)
            request.headers["Content-Length"] = str(len(body))
        request.headers.update(
            sign_request(self.key, request.method, path, parts.query, body, self.app_id, self.serial)
        )
        return request


def partner_key_file(state_dir: Path, app_id: str) -> tuple[Sm2PrivateKey, str]:
    """The key ``make run`` wrote for a demo partner (``.local/partners/{app}.json``)."""
    data = json.loads((state_dir / "partners" / f"{app_id}.json").read_text())
    return Sm2PrivateKey.from_pem(data["private_key_pem"]), str(data["key_serial"])


def signed_session(key: Sm2PrivateKey, app_id: str, serial: str) -> requests.Session:
    session = requests.Session()
    session.auth = PartnerSignature(key, app_id, serial)
    return session
