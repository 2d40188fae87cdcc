"""The OpenAPI 3 document of every HTTP function, generated from template.yaml and the route metadata
each ``ServiceApp`` records (auth, request and response models, error codes).

``bianjie openapi`` writes it to ``docs/openapi.yaml``; a test fails when the committed file is stale.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import bianjie
from bianjie.kit.web import CONTROL_CHARACTERS
from bianjie.runtime.invoke import load_module
from bianjie.runtime.template import Template
from pydantic.json_schema import GenerateJsonSchema

# every route: a body or parameter its model refuses, a parameter holding a control character, a bug
COMMON_ERRORS = ("VALIDATION_FAILED", "INVALID_PARAMETER", "INTERNAL")
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


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON Schema, plus what ``str_strip_whitespace`` means: the length rules apply after
    stripping, so a string of spaces that passes ``minLength`` would still be refused; a pattern says so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stripping: list[bool] = []

    def model_schema(self, schema: Any) -> Any:
        self._stripping.append(bool(schema["cls"].model_config.get("str_strip_whitespace")))
        try:
            return super().model_schema(schema)
        finally:
            self._stripping.pop()

    def str_schema(self, schema: Any) -> Any:
        out = super().str_schema(schema)
        least = out.get("minLength", 0)
        if self._stripping and self._stripping[-1] and least >= 1 and "pattern" not in out:
            out["pattern"] = "\\S" if least == 1 else f"^\\s*\\S[\\s\\S]{{{least - 2},}}\\S\\s*$"
        return out


OAUTH_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "description": "an OAuth 2.0 / OpenID Connect protocol error (RFC 6749 section 5.2)",
    "properties": {
        "error": {"type": "string", "description": "invalid_request, invalid_grant, invalid_token, ..."},
        "error_description": {"type": "string"},
    },
}


class ComponentClash(ValueError):
    """Two different models of one name: the document can hold only one, and a route would be described
    by the other's schema (consult's AgreementView once replaced pay's)."""


def _register(components: dict[str, Any], name: str, definition: Any) -> None:
    known = components.get(name)
    if known is not None and known != definition:
        raise ComponentClash(f"two different models are named {name}: rename one (component names are global)")
    components[name] = definition


def _schema_of(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", schema_generator=_Schemas)
    for name, definition in schema.pop("$defs", {}).items():
        _register(components, name, definition)
    _register(components, model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


# No identifier of ours holds a control character; the edge refuses them (kit.web), and says so here.
PATH_PARAMETER = {"type": "string", "minLength": 1, "pattern": f"^[^{CONTROL_CHARACTERS}]+$"}
QUERY_TEXT_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": "your key for this operation: reuse it when retrying, never for another request "
    "(docs/partner-api.md 6b)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


def _no_control_characters(schema: dict[str, Any]) -> None:
    # a query value with a control character is refused at the edge (kit.web), as a path's is
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string" and "pattern" not in option and "enum" not in option:
            option["pattern"] = QUERY_TEXT_PATTERN


def _query_parameters(model: Any, components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", schema_generator=_Schemas)
    for name, definition in schema.pop("$defs", {}).items():
        _register(components, name, definition)
    required = set(schema.get("required", ()))
    for prop in schema.get("properties", {}).values():
        _no_control_characters(prop)
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def build_openapi(template: Template) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA, "OAuthError": OAUTH_ERROR_SCHEMA}
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
                {"name": p.strip("{}+"), "in": "path", "required": True, "schema": dict(PATH_PARAMETER)}
                for p in event.path.split("/")
                if p.startswith("{")
            ]
            if doc and doc.query is not None:
                params += _query_parameters(doc.query, components)
            if doc and doc.idempotency_key:
                params.append({**IDEMPOTENCY_KEY, "required": doc.idempotency_key == "required"})
            if params:
                op["parameters"] = params
            codes = list(COMMON_ERRORS)
            if doc and doc.auth == "partner":
                op["security"] = [{"partnerSignature": []}]
                codes += PARTNER_ERRORS
            elif doc and doc.auth == "token":
                op["security"] = [{"bearerToken": []}]
                codes += TOKEN_ERRORS
            elif doc and doc.auth == "partner_or_token":  # a system's signed request, or a staff desk's token
                op["security"] = [{"partnerSignature": []}, {"bearerToken": []}]
                codes += [*PARTNER_ERRORS, *(c for c in TOKEN_ERRORS if c not in PARTNER_ERRORS)]
            if doc:
                codes += list(doc.errors)
            if doc and doc.form:
                op["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                        }
                    },
                }
            elif doc and doc.request is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema_of(doc.request, components)}},
                }
            ok: dict[str, Any] = {"description": "success"}
            if doc and doc.response is not None:
                ok["content"] = {doc.media_type: {"schema": _schema_of(doc.response, components)}}
            elif doc and doc.media_type != "application/json":
                ok["content"] = {doc.media_type: {"schema": {"type": "string"}}}
            op["responses"][str(doc.status if doc else 200)] = ok
            for other in doc.also if doc else ():
                op["responses"][str(other)] = {
                    **copy.deepcopy(ok),
                    "description": "success, another outcome (see the summary)",
                }
            error_content: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            if doc and doc.oauth:
                # the protocol's refusals in RFC 6749's shape; the edge's own (415, no token) in ours
                error_content = {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                {"$ref": "#/components/schemas/OAuthError"},
                                {"$ref": "#/components/schemas/Error"},
                            ]
                        }
                    }
                }
            if doc and doc.media_type == "text/html":
                # a page refuses with a page (its text names the code); the edge's own refusals (a control
                # character in the path) stay JSON
                error_content = {"text/html": {"schema": {"type": "string"}}, **error_content}
            op["responses"]["default"] = {
                "description": "error; `error.code` is one of: " + ", ".join(sorted(set(codes))),
                "content": error_content,
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
                    "description": "short-lived patient or staff token: a JWS signed SM2-SM3 (or ES256) by the "
                    "token issuer, verified with GET /.well-known/jwks.json",
                },
            },
        },
    }


def write_openapi(template: Template, out: Path) -> None:
    import yaml

    out.write_text(
        yaml.safe_dump(build_openapi(template), sort_keys=False, allow_unicode=True, width=110), encoding="utf-8"
    )
