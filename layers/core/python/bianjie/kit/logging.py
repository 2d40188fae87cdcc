"""Structured JSON logs on stdout, one object per line, with a redaction guard.

Every line carries ``ts, level, logger, msg`` plus the invocation context (``request_id``,
``function``, ``app_id``) and any ``extra=`` fields. CloudWatch, Loki and the on-prem collectors all
parse one-JSON-object-per-line without configuration.

Redaction (等保: logs never hold patient data or secrets in clear):
- extra fields whose *key* is on the deny-list (``name``, ``phone``, ``id_number``, ``token`` ...)
  have their value replaced by ``"[redacted]"``, recursively through dicts and lists;
- every string that lands in a line (``msg``, extra values, exception text) is scanned for the shape
  of a PRC resident ID number or a mainland mobile number, which are masked. Pydantic validation
  errors echo their input values, so exception text is scanned too.
The guard is a safety net, not a licence: never pass patient data to a logger.

Usage::

    log = get_logger(__name__)
    with log_context(request_id=ctx.aws_request_id, function="film-issue-link"):
        log.info("link issued", extra={"link_id": link.id, "latency_ms": 12.5})
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

REDACTED = "[redacted]"

# Exact keys (after snake-casing) that name a sensitive value.
DENY_KEYS: frozenset[str] = frozenset(
    {
        "name",
        "patient_name",
        "real_name",
        "full_name",
        "contact_name",
        "guardian_name",
        "id_number",
        "id_no",
        "idno",
        "idcard",
        "id_card",
        "identity_number",
        "cert_no",
        "mdtrt_cert_no",
        "phone",
        "mobile",
        "tel",
        "telephone",
        "address",
        "birth_date",
        "birthday",
        "diagnosis",
        "agreement_no",
        "private_key",
        "secret",
        "token",
        "password",
        "authorization",
        "signature",
        "cookie",
        "plaintext",
    }
)

# Words that make a key sensitive wherever they appear as a whole ``_``-separated part
# (``access_token``, ``mobile_phone``, ``x_signature``, ``diagnosis_code``), but not as a substring
# of an unrelated word (``valid_node`` must not match ``id_no``).
DENY_TOKENS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "private_key",
    "authorization",
    "signature",
    "id_number",
    "id_no",
    "id_card",
    "phone",
    "mobile",
    "diagnosis",
    "agreement_no",
    "patient_name",
    "real_name",
    "credential",
    "cookie",
    "api_key",
)
_TOKEN_RES = tuple(re.compile(rf"(?:^|_){re.escape(t)}(?:_|$)") for t in DENY_TOKENS)

# PRC resident ID (GB 11643: region, birth date, sequence, check) and mainland mobile numbers.
_ID_NUMBER_RE = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
)
_MOBILE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")

_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")


def normalise_key(key: str) -> str:
    """``idNumber`` / ``ID-Number`` / ``id number`` -> ``id_number``."""
    return _NON_ALNUM_RE.sub("_", _CAMEL_RE.sub("_", str(key)).lower()).strip("_")


@functools.lru_cache(maxsize=4096)  # keys are few and repeat on every record (a hot spot in the charge profile)
def is_sensitive_key(key: str) -> bool:
    k = normalise_key(key)
    return k in DENY_KEYS or any(r.search(k) for r in _TOKEN_RES)


def mask_text(text: str) -> str:
    """Mask ID-number-shaped and mobile-number-shaped substrings."""
    text = _ID_NUMBER_RE.sub(REDACTED, text)
    return _MOBILE_RE.sub(REDACTED, text)


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with deny-listed keys blanked and sensitive-looking strings masked."""
    if _depth > 20:  # a cycle or an absurdly deep structure; do not recurse forever
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): (REDACTED if is_sensitive_key(str(k)) else redact(v, _depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bytes | bytearray):
        # raw bytes in a log line are almost always key material or a body; never print them
        return f"<{len(value)} bytes>"
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_text(str(value))


# ---------------------------------------------------------------- invocation context

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("bianjie_log_context", default=_EMPTY)
CONTEXT_FIELDS = ("request_id", "function", "app_id")
_CORE_FIELDS = frozenset({"ts", "level", "logger", "msg", "exc", "exc_type"})


def get_context() -> dict[str, Any]:
    return dict(_CONTEXT.get())


def update_context(**fields: Any) -> None:
    """Add fields to the current context (e.g. ``app_id`` once the partner signature verified)."""
    merged = dict(_CONTEXT.get())
    merged.update({k: v for k, v in fields.items() if v is not None})
    _CONTEXT.set(merged)


def clear_context() -> None:
    _CONTEXT.set(_EMPTY)


class log_context:  # lower-case: callers use it like a function
    """Set context fields now; used as ``with log_context(...)``, restores the previous ones on exit.

    Called without ``with`` it behaves like ``update_context``: the fields last until an enclosing
    ``with log_context(...)`` (the per-invocation one) exits.
    """

    def __init__(self, **fields: Any) -> None:
        merged = dict(_CONTEXT.get())
        merged.update({k: v for k, v in fields.items() if v is not None})
        self._token = _CONTEXT.set(merged)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        _CONTEXT.reset(self._token)


# ---------------------------------------------------------------- formatter and handler

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_text(record.getMessage()),
        }
        ctx = _CONTEXT.get()
        for field in CONTEXT_FIELDS:
            line[field] = ctx.get(field)
        for key, value in ctx.items():
            if key not in CONTEXT_FIELDS:
                line[key] = REDACTED if is_sensitive_key(key) else redact(value)
        fields: dict[str, Any] = {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
        fields.pop("_fields", None)
        fields.update(getattr(record, "_fields", None) or {})
        for key, value in fields.items():
            if key in _CORE_FIELDS:
                key = f"extra_{key}"  # a caller's field must not overwrite the line's own ts/level/msg
            line[key] = REDACTED if is_sensitive_key(key) else redact(value)
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["exc"] = mask_text("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))


class StdoutHandler(logging.Handler):
    """Writes to the *current* ``sys.stdout`` (so pytest capture and Lambda both see it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            stream = self._stream or sys.stdout
            stream.write(text + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


_configured = False


def configure_logging(level: str | int | None = None, stream: TextIO | None = None, force: bool = False) -> None:
    """Install the JSON handler on the root logger (idempotent).

    Lambda's Python runtime pre-installs a plain-text handler on the root logger; we replace it so
    every line is JSON.
    """
    global _configured
    if _configured and not force:
        return
    if level is None:
        from bianjie.kit.config import settings

        level = settings().log_level
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = StdoutHandler(stream)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # botocore at DEBUG prints request bodies and signed headers; at INFO it announces where it found
    # credentials on every cold start, which is noise in function logs and CLI output alike
    logging.getLogger("botocore").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("urllib3").setLevel(max(logging.WARNING, root.level))
    _configured = True


_LOG_KWARGS = frozenset({"exc_info", "stack_info", "stacklevel"})


class KitLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger taking fields as ``extra={...}`` or as keyword arguments.

    Fields travel in one private record attribute: the stdlib refuses ``extra`` keys that collide
    with LogRecord attributes (``name``, ``msg``, ``args``...), and a log call must never raise
    because a caller chose such a key.
    """

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields: dict[str, Any] = dict(self.extra or {})
        fields.update(kwargs.pop("extra", None) or {})
        for key in [k for k in kwargs if k not in _LOG_KWARGS]:
            fields[key] = kwargs.pop(key)
        kwargs["extra"] = {"_fields": fields}
        return msg, kwargs

    def bind(self, **fields: Any) -> KitLogger:
        """A child logger that adds ``fields`` to every line."""
        return KitLogger(self.logger, {**(self.extra or {}), **fields})


def get_logger(name: str) -> KitLogger:
    configure_logging()
    return KitLogger(logging.getLogger(name), {})


@contextlib.contextmanager
def invocation(
    logger: logging.Logger | KitLogger, function: str, request_id: str | None = None, **fields: Any
) -> Iterator[dict[str, Any]]:
    """Context for one invocation; logs one ``invocation`` line with ``latency_ms`` at the end.

    The yielded dict may be filled with extra fields for that final line (e.g. ``status``).
    """
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    with log_context(request_id=request_id, function=function, **fields):
        outcome = "ok"
        try:
            yield summary
        except BaseException:
            outcome = "error"
            raise
        finally:
            latency = round((time.perf_counter() - started) * 1000, 3)
            logger.info("invocation", extra={"latency_ms": latency, "outcome": outcome, **summary})
