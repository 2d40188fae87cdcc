"""Loading a function's handler the way Lambda does, and invoking it with a Lambda-shaped context.

Every function's entry module is called ``app.py``, so modules are loaded by file path under a
unique name; functions that share a ``CodeUri`` and module share one loaded module (and so one
Chalice app), as warm Lambda containers of one function would.

A function given its own environment (the local stack, the functional tests) runs every invocation in
its ``FunctionScope``: the kit then reads that environment, not the process's, and builds its own
clients and adapters (``bianjie.kit.config``). Without one (an on-premises container serving one
function) it reads the process environment, as on Lambda.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bianjie.kit.config import PROCESS, FunctionScope, function_scope
from bianjie.runtime.deployment import arn
from bianjie.runtime.template import FunctionSpec

_modules: dict[Path, Any] = {}
_lock = threading.Lock()


def load_module(path: Path) -> Any:
    path = path.resolve()
    with _lock:
        if path in _modules:
            return _modules[path]
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        name = f"bianjie_fn_{path.parent.name}_{path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _modules[path] = module
        return module


def load_handler(fn: FunctionSpec) -> Any:
    module = load_module(fn.module_path)
    handler = module
    for part in fn.attribute.split("."):
        handler = getattr(handler, part)
    if not callable(handler):
        raise TypeError(f"{fn.logical_id}: handler {fn.handler} is not callable")
    return handler


@dataclass
class LambdaContext:
    """The attributes of AWS's LambdaContext that handlers and Chalice use."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = arn("lambda", self.region, f"function:{self.function_name}")
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_environment(
    spec: FunctionSpec, region: str, physical_name: str, credentials: dict[str, str] | None = None
) -> dict[str, str]:
    """The variables Lambda itself sets in a function's environment (reserved names), with its role's
    credentials when given."""
    found = {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": physical_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{physical_name}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
    }
    if credentials:
        found.update(credentials)
    return found


class Function:
    """One declared function, ready to invoke.

    ``environment``: everything the function may see (its declared variables plus what Lambda sets);
    None to read the process environment.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        region: str,
        physical_name: str | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.region = region
        self.name = physical_name or spec.logical_id
        self.scope: FunctionScope = PROCESS if environment is None else FunctionScope(spec.logical_id, environment)
        self._handler: Any = None

    @property
    def handler(self) -> Any:
        if self._handler is None:
            # module-level code of the entry module runs as this function would run it
            with function_scope(self.scope):
                self._handler = load_handler(self.spec)
        return self._handler

    def context(self, request_id: str | None = None) -> LambdaContext:
        ctx = LambdaContext(self.name, self.spec.memory, self.spec.timeout, self.region)
        if request_id:
            ctx.aws_request_id = request_id
        return ctx

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        handler = self.handler
        with function_scope(self.scope):
            return handler(event, self.context(request_id))
