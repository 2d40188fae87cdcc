"""The HTTP edge of every service: a Chalice app with bianjie's error shape, logging and auth helpers.

``ServiceApp`` differs from ``Chalice`` in three ways a handler author relies on:
- ``current_request`` is thread-local, so one app can serve concurrent requests in the gateway;
- every view's ``AppError`` / pydantic ``ValidationError`` / unexpected exception becomes the one JSON
  error shape with the request id (Chalice converts view exceptions before middleware sees them,
  so views are wrapped at registration);
- one-line helpers: ``app.partner()`` (verify the partner signature), ``app.user(*roles)`` (verify a
  patient or staff token), ``app.body(Model)`` (parse the JSON body).
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice import Chalice, Response
from pydantic import BaseModel, ValidationError

from bianjie.kit import deps
from bianjie.kit.actor import Actor, Origin
from bianjie.kit.errors import AppError, BadRequest, ValidationFailed, error_body
from bianjie.kit.idempotency import Answer
from bianjie.kit.logging import get_logger, log_context
from bianjie.kit.tracing import tracer

ModelT = TypeVar("ModelT", bound=BaseModel)
# The characters no path or query parameter of ours may hold; the OpenAPI document states the same rule.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
log = get_logger("bianjie.web")

_CHALICE_CODES = {
    "BadRequestError": "BAD_REQUEST",
    "UnauthorizedError": "UNAUTHORIZED",
    "ForbiddenError": "FORBIDDEN",
    "NotFoundError": "NOT_FOUND",
    "MethodNotAllowedError": "METHOD_NOT_ALLOWED",
    "RequestTimeoutError": "REQUEST_TIMEOUT",
    "ConflictError": "CONFLICT",
    "UnprocessableEntityError": "UNPROCESSABLE_ENTITY",
    "TooManyRequestsError": "TOO_MANY_REQUESTS",
    "UnsupportedMediaType": "UNSUPPORTED_MEDIA_TYPE",
    "BadRequest": "BAD_REQUEST",
    "InternalServerError": "INTERNAL",
}


def json_response(status: int, body: Any, headers: Mapping[str, str | list[str]] | None = None) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may be patient data.
    return [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"], "type": e["type"]} for e in exc.errors()]


def _holds_nul(raw: bytes | str) -> bool:
    try:
        doc = json.loads(raw)
    except ValueError:
        return False  # not JSON: the model's parse says so
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


@dataclass(frozen=True)
class RouteDoc:
    path: str
    method: str
    operation: str
    auth: str
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    summary: str
    errors: tuple[str, ...]
    status: int
    query: type[BaseModel] | None = None
    idempotency_key: str | None = None  # "required" or "optional": the Idempotency-Key header
    media_type: str = "application/json"  # of the success answer (a page is text/html)
    also: tuple[int, ...] = ()  # other success statuses the outcome may choose (202 while pending)
    form: bool = False  # the body is application/x-www-form-urlencoded (OAuth endpoints)
    oauth: bool = False  # refusals in RFC 6749's shape {"error", "error_description"}, not bianjie's


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True)


class ServiceApp(Chalice):
    _local = threading.local()

    def __init__(self, app_name: str, **kwargs: Any) -> None:
        super().__init__(app_name=app_name, **kwargs)
        self.service = app_name
        self.route_docs: dict[tuple[str, str], RouteDoc] = {}
        self.register_middleware(self._http_middleware, "http")

    # Chalice stores these on the app; the gateway calls one app from many threads.
    @property
    def current_request(self) -> Any:
        return getattr(self._local, "current_request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._local.current_request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(self._local, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._local.lambda_context = value

    # -- request facts -------------------------------------------------------------------------

    @property
    def request_id(self) -> str | None:
        return getattr(self._local, "request_id", None)

    @property
    def source_ip(self) -> str:
        request = self.current_request
        return ((request.context or {}).get("identity") or {}).get("sourceIp") or "" if request else ""

    # -- helpers for views -----------------------------------------------------------------------

    def body(self, model: type[ModelT]) -> ModelT:
        raw = self.current_request.raw_body or b""
        if not raw:
            raise ValidationFailed("request body is required (JSON)", code="BODY_REQUIRED")
        if b"\\u0000" in (raw if isinstance(raw, bytes) else raw.encode()) and _holds_nul(raw):
            # no text of ours holds a NUL, and every store's driver refuses one: a 400, not a 500 later
            raise ValidationFailed("the body holds a NUL character (\\u0000) in a string", code="INVALID_CHARACTER")
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise ValidationFailed("request body is not valid", details=validation_details(exc)) from None

    def _declared(self) -> RouteDoc | None:
        context = (self.current_request.context or {}) if self.current_request is not None else {}
        return self.route_docs.get((context.get("resourcePath", ""), str(context.get("httpMethod", "")).upper()))

    def query(self, model: type[ModelT]) -> ModelT:
        doc = self._declared()
        if doc is not None and doc.query is not model:
            # what the OpenAPI document tells partners must be what the view parses
            raise TypeError(f"declare query={model.__name__} on the route of {doc.operation}")
        params = self.current_request.query_params or {}
        try:
            return model.model_validate(dict(params))
        except ValidationError as exc:
            raise ValidationFailed("query parameters are not valid", details=validation_details(exc)) from None

    def idempotency_key(self, *, required: bool = True) -> str | None:
        """The ``Idempotency-Key`` header (the caller reuses it when retrying); the domain checks its shape."""
        from bianjie.kit.signing import header_value

        doc = self._declared()
        if doc is not None and doc.idempotency_key != ("required" if required else "optional"):
            raise TypeError(f"declare idempotency_key={'required' if required else 'optional'!r} on {doc.operation}")
        key = header_value(self.current_request.headers, "Idempotency-Key")
        if required and not key:
            raise BadRequest("send an Idempotency-Key header (reuse it when retrying)", code="IDEMPOTENCY_KEY_REQUIRED")
        return key or None

    def partner(self) -> Any:
        """Verifies the partner signature of the current request; returns who signed it."""
        request = self.current_request
        event = request.to_original_event()
        verified = deps.partner_verifier().verify(
            method=request.method,
            # Chalice's request.path is the route template, not the path the partner signed.
            path=event.get("path") or request.context.get("path", ""),
            query=event.get("multiValueQueryStringParameters") or {},
            headers=request.headers,
            body=request.raw_body or b"",
            source_ip=self.source_ip,
        )
        log_context(app_id=verified.app_id)
        return verified

    # -- the Actor domain services take (bianjie.kit.actor) ----------------------------------------

    def origin(self) -> Origin:
        return Origin(source_ip=self.source_ip or None, request_id=self.request_id)

    def partner_actor(self) -> Actor:
        """Verifies the partner signature; the signing app as an ``Actor`` (kind partner)."""
        verified = self.partner()
        return Actor.partner(
            verified.app_id,
            settings=verified.partner.settings,
            source_ip=self.source_ip or None,
            request_id=self.request_id,
        )

    def patient_actor(self) -> Actor:
        """Verifies a patient token; ``patient_ref`` is its ``id_ref`` claim (blind index of the ID number)."""
        claims = self.user(kind="patient")
        return Actor(
            kind="patient",
            id=claims.sub,
            patient_ref=claims.extra.get("id_ref"),
            source_ip=self.source_ip or None,
            request_id=self.request_id,
        )

    def staff_actor(self, *roles: str) -> Actor:
        """Verifies a staff token holding one of ``roles``; ``org`` is its hospital (or pharmacy)."""
        return self._token_actor("staff", roles)

    def _token_actor(self, kind: str, roles: tuple[str, ...]) -> Actor:
        claims = self.user(*roles, kind=kind)
        return Actor(
            kind=claims.kind,
            id=claims.sub,
            org=claims.hospital,
            roles=tuple(claims.roles),
            source_ip=self.source_ip or None,
            request_id=self.request_id,
        )

    def user(self, *roles: str, kind: str | None = None) -> Any:
        """Verifies the bearer token; with roles, also that the holder has one of them."""
        from bianjie.kit.tokens import bearer_token, require_roles

        claims = deps.token_verifier().verify(bearer_token(self.current_request.headers))
        if kind is not None and claims.kind != kind:
            raise AppError(f"this operation needs a {kind} token", code="TOKEN_KIND", status=403)
        if roles:
            require_roles(claims, *roles)
        return claims

    # -- wiring ----------------------------------------------------------------------------------

    def route(
        self,
        path: str,
        *,
        auth: str = "none",
        request: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        summary: str = "",
        errors: tuple[str, ...] = (),
        status: int = 200,
        query: type[BaseModel] | None = None,
        idempotency_key: str | None = None,
        media_type: str = "application/json",
        also: tuple[int, ...] = (),
        form: bool = False,
        oauth: bool = False,
        **kwargs: Any,
    ) -> Callable[..., Any]:
        """Chalice's ``route`` plus what the OpenAPI document says about it.

        ``auth`` is "none", "partner" (signed request), "token" (patient/staff bearer token) or
        "partner_or_token" (either: a system step a staff desk may also make);
        ``errors`` lists the error codes the route may answer besides the common ones; ``status`` is the
        status of a success (a model, or an ``Answer`` without its own status, is answered with it);
        ``also`` the other success statuses an ``Answer`` may choose. ``query`` is the model the view parses
        with ``app.query`` and ``idempotency_key`` ("required"/"optional") the header it reads with
        ``app.idempotency_key``: both are checked when the view reads them, so the OpenAPI document
        cannot drift from the code. ``media_type`` is the success answer's (text/html for a page); ``form``
        says the body is a form and ``oauth`` that refusals take RFC 6749's shape (protocol endpoints).
        """
        if idempotency_key not in (None, "required", "optional"):
            raise ValueError("idempotency_key is 'required', 'optional' or None")
        register = super().route(path, **kwargs)
        methods = kwargs.get("methods") or ["GET"]

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            for method in methods:
                self.route_docs[(path, method.upper())] = RouteDoc(
                    path,
                    method.upper(),
                    view.__name__,
                    auth,
                    request,
                    response,
                    summary or (view.__doc__ or "").strip().split("\n")[0],
                    errors,
                    status,
                    query,
                    idempotency_key,
                    media_type,
                    also,
                    form,
                    oauth,
                )
            register(self._guard(view, status))
            return view

        return decorator

    def _guard(self, view: Callable[..., Any], status: int = 200) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            refusal = self._refuse_control_characters(kwargs)
            if refusal is not None:
                return refusal
            try:
                result = view(*args, **kwargs)
            except AppError as exc:
                if exc.status >= 500:
                    log.error("request failed", extra={"code": exc.code})
                return json_response(exc.status, exc.body(self.request_id), exc.headers)
            except ValidationError as exc:
                return json_response(
                    400, error_body("VALIDATION_FAILED", "input is not valid", self.request_id, validation_details(exc))
                )
            except Exception:
                log.exception("unhandled error in view %s", view.__name__)
                return json_response(
                    500, error_body("INTERNAL", "an internal error occurred; quote the request id", self.request_id)
                )
            if isinstance(result, Answer):
                return json_response(result.status or status, _dump(result.value), result.headers)
            if isinstance(result, BaseModel):
                return json_response(status, _dump(result))
            if isinstance(result, Response):
                return result
            return json_response(status, result)

        return guarded

    def _refuse_control_characters(self, path_params: Mapping[str, Any]) -> Response | None:
        # No identifier of ours holds a control character, and NUL breaks every store's driver: refuse
        # them at the edge rather than let a database error become a 500.
        query = self.current_request.query_params or {} if self.current_request is not None else {}
        for where, params in (("path", path_params), ("query", query)):
            for name, value in params.items():
                if isinstance(value, str) and _CONTROL.search(value):
                    return json_response(
                        400,
                        error_body(
                            "INVALID_PARAMETER",
                            f"{where} parameter {name!r} contains a control character",
                            self.request_id,
                        ),
                    )
        return None

    def _http_middleware(self, event: Any, get_response: Callable[[Any], Response]) -> Response:
        started = time.perf_counter()
        context = event.context or {}
        # API Gateway's request id when there is one, so partners can quote what our logs hold.
        self._local.request_id = (
            context.get("requestId") or getattr(self.lambda_context, "aws_request_id", None) or str(uuid.uuid4())
        )
        with (
            log_context(request_id=self.request_id, function=self._function_name(), service=self.service),
            tracer().span(f"{context.get('httpMethod')} {context.get('resourcePath')}", service=self.service),
        ):
            response = get_response(event)
            body = response.body
            if isinstance(body, dict) and set(body) == {"Code", "Message"}:
                # Chalice's own errors (415, 405, bad JSON) in bianjie's shape.
                code = _CHALICE_CODES.get(str(body["Code"]), str(body["Code"]).upper())
                response = json_response(
                    response.status_code,
                    error_body(code, str(body["Message"]), self.request_id),
                    {k: v for k, v in response.headers.items() if k.lower() != "content-type"},
                )
            log.info(
                "handled",
                extra={
                    "route": context.get("resourcePath"),
                    "method": context.get("httpMethod"),
                    "status": response.status_code,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            return response

    def _function_name(self) -> str | None:
        ctx = self.lambda_context
        return getattr(ctx, "function_name", None)
