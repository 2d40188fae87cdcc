"""The OpenAPI 3 document of every HTTP function, generated from template.yaml and the route metadata
each ``ServiceApp`` records (auth, request and response models, error codes).

``bianjie openapi`` writes it to ``docs/openapi.yaml``; a test fails when the committed file is stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bianjie
from bianjie.runtime.invoke import load_module
from bianjie.runtime.template import Template

COMMON_ERRORS = ("VALIDATION_FAILED", "INTERNAL")
PARTNER_ERRORS = (
    "SIGNATURE_MISSING",
    "SIGNATURE_MALFORMED",
    "TIMESTAMP_OUT_OF_WINDOW",
    "NONCE_REPLAYED",
    "SIGNATURE_INVALID",
    "APP_UNKNOWN",
    "APP_DISABLED",
    "KEY_UNKNOWN",
    "IP_NOT_ALLOWED",
)
TOKEN_ERRORS = ("TOKEN_MISSING", "TOKEN_MALFORMED", "TOKEN_INVALID", "TOKEN_EXPIRED", "ROLE_REQUIRED")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "description": "stable upper-case code; branch on this"},
                "message": {"type": "string", "description": "for humans; may change"},
                "request_id": {"type": ["string", "null"], "description": "quote it to support"},
                "details": {"description": "per-field problems, when the request was invalid"},
            },
        }
    },
}


def _schema_of(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_openapi(template: Template) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for fn in template.functions:
        for event in fn.api_events():
            app = load_module(fn.module_path).app
            doc = getattr(app, "route_docs", {}).get((event.path, event.method))
            op: dict[str, Any] = {
                "operationId": f"{fn.logical_id}.{doc.operation if doc else event.method.lower()}",
                "summary": doc.summary if doc else "",
                "tags": [getattr(app, "service", fn.logical_id)],
                "x-function": fn.logical_id,
                "responses": {},
            }
            params = [
                {"name": p.strip("{}+"), "in": "path", "required": True, "schema": {"type": "string"}}
                for p in event.path.split("/")
                if p.startswith("{")
            ]
            if params:
                op["parameters"] = params
            codes = list(COMMON_ERRORS)
            if doc and doc.auth == "partner":
                op["security"] = [{"partnerSignature": []}]
                codes += PARTNER_ERRORS
            elif doc and doc.auth == "token":
                op["security"] = [{"bearerToken": []}]
                codes += TOKEN_ERRORS
            if doc:
                codes += list(doc.errors)
            if doc and doc.request is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema_of(doc.request, components)}},
                }
            ok: dict[str, Any] = {"description": "success"}
            if doc and doc.response is not None:
                ok["content"] = {"application/json": {"schema": _schema_of(doc.response, components)}}
            op["responses"][str(doc.status if doc else 200)] = ok
            op["responses"]["default"] = {
                "description": "error; `error.code` is one of: " + ", ".join(sorted(set(codes))),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
            paths.setdefault(event.path, {})[event.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "bianjie (便捷) patient services",
            "version": bianjie.__version__,
            "description": "Every HTTP function of template.yaml. Partner-signed operations follow "
            "docs/partner-api.md; errors share one shape.",
        },
        "servers": [{"url": "http://127.0.0.1:3000", "description": "local stack (make run)"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "partnerSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "SM2-SM3 request signature, see docs/partner-api.md",
                },
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "short-lived patient or staff token (HMAC-SM3)",
                },
            },
        },
    }


def write_openapi(template: Template, out: Path) -> None:
    import yaml

    out.write_text(
        yaml.safe_dump(build_openapi(template), sort_keys=False, allow_unicode=True, width=110), encoding="utf-8"
    )
