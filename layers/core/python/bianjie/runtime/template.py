"""template.yaml (AWS SAM) read into plain models: functions, their events, and resources.

template.yaml is the single source of truth; the gateway, the pump, the scheduler and the local
provisioner all read it through this module. CloudFormation short-form tags (``!Ref``, ``!GetAtt``,
``!Sub`` ...) are loaded into their long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``) and
resolved by ``Resolver`` against the physical names a deployment (or the local stack) assigned.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "Base64": "Fn::Base64",
    "ImportValue": "Fn::ImportValue",
    "GetAZs": "Fn::GetAZs",
    "Cidr": "Fn::Cidr",
}


class _CfnLoader(yaml.SafeLoader):
    pass


def _make_constructor(long_name: str):
    def construct(loader: yaml.Loader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


for _short, _long in _SHORT_TAGS.items():
    _CfnLoader.add_constructor(f"!{_short}", _make_constructor(_long))


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)


@dataclass(frozen=True)
class ApiEvent:
    name: str
    path: str
    method: str  # upper case, or "ANY"


@dataclass(frozen=True)
class SqsEvent:
    name: str
    queue: Any  # intrinsic (usually Fn::GetAtt Queue.Arn)
    batch_size: int = 10
    report_batch_item_failures: bool = False
    batching_window_seconds: int = 0
    max_concurrency: int = 1
    enabled: bool = True


@dataclass(frozen=True)
class S3Event:
    name: str
    bucket: Any
    events: tuple[str, ...]
    prefix: str | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class ScheduleEvent:
    name: str
    expression: str  # rate(...) or cron(...)
    input: str | None = None
    enabled: bool = True
    timezone: str = "UTC"


Event = ApiEvent | SqsEvent | S3Event | ScheduleEvent


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str  # "module.attribute"
    runtime: str
    timeout: int
    memory: int
    environment: dict[str, Any]
    layers: list[Any]
    events: list[Event] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def module_name(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def module_path(self) -> Path:
        return self.code_uri / (self.module_name.replace(".", "/") + ".py")

    def api_events(self) -> list[ApiEvent]:
        return [e for e in self.events if isinstance(e, ApiEvent)]


@dataclass
class Template:
    path: Path
    body: dict[str, Any]
    functions: list[FunctionSpec]

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == cfn_type}

    def function(self, logical_id: str) -> FunctionSpec:
        for fn in self.functions:
            if fn.logical_id == logical_id:
                return fn
        raise KeyError(f"template has no function {logical_id}")

    def parameter_defaults(self) -> dict[str, Any]:
        return {
            name: spec.get("Default") for name, spec in self.body.get("Parameters", {}).items() if "Default" in spec
        }


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """SAM Globals semantics: maps merge, scalars and lists are replaced (Environment merges)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _parse_event(name: str, event: Mapping[str, Any]) -> Event | None:
    kind = event.get("Type")
    props = event.get("Properties", {}) or {}
    if kind == "Api":
        return ApiEvent(name, props["Path"], str(props["Method"]).upper())
    if kind == "SQS":
        scaling = props.get("ScalingConfig") or {}
        return SqsEvent(
            name,
            props["Queue"],
            batch_size=int(props.get("BatchSize", 10)),
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
            max_concurrency=int(scaling.get("MaximumConcurrency", 1)),
            enabled=bool(props.get("Enabled", True)),
        )
    if kind == "S3":
        events = props.get("Events", [])
        prefix = suffix = None
        for rule in (props.get("Filter") or {}).get("S3Key", {}).get("Rules", []):
            if rule["Name"].lower() == "prefix":
                prefix = rule["Value"]
            elif rule["Name"].lower() == "suffix":
                suffix = rule["Value"]
        return S3Event(name, props["Bucket"], tuple([events] if isinstance(events, str) else events), prefix, suffix)
    if kind in ("Schedule", "ScheduleV2"):
        enabled = props.get("Enabled", props.get("State", "ENABLED"))
        enabled_bool = enabled if isinstance(enabled, bool) else str(enabled).upper() == "ENABLED"
        expression = props.get("Schedule") or props.get("ScheduleExpression")
        return ScheduleEvent(
            name,
            str(expression),
            input=props.get("Input"),
            enabled=enabled_bool,
            timezone=props.get("ScheduleExpressionTimezone", "UTC"),
        )
    return None


def load_template(path: str | Path) -> Template:
    path = Path(path).resolve()
    body = load_yaml(path)
    global_fn = (body.get("Globals") or {}).get("Function", {}) or {}
    functions: list[FunctionSpec] = []
    for logical_id, resource in (body.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = _merge(global_fn, resource.get("Properties") or {})
        events = [
            parsed
            for name, event in (props.get("Events") or {}).items()
            if (parsed := _parse_event(name, event)) is not None
        ]
        functions.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=(path.parent / str(props.get("CodeUri", "."))).resolve(),
                handler=str(props["Handler"]),
                runtime=str(props.get("Runtime", "python3.11")),
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                environment=dict((props.get("Environment") or {}).get("Variables") or {}),
                layers=list(props.get("Layers") or []),
                events=events,
                properties=props,
            )
        )
    return Template(path=path, body=body, functions=functions)


_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class ResolutionError(ValueError):
    pass


class Resolver:
    """Resolves intrinsic functions against a deployment's physical resources.

    ``refs`` maps a logical id (or parameter / pseudo parameter) to what ``Ref`` returns;
    ``attrs`` maps ``(logical id, attribute)`` to what ``Fn::GetAtt`` returns.
    """

    def __init__(self, refs: Mapping[str, Any], attrs: Mapping[tuple[str, str], Any]) -> None:
        self.refs = dict(refs)
        self.attrs = dict(attrs)

    def ref(self, name: str) -> Any:
        if name not in self.refs:
            raise ResolutionError(f"!Ref {name}: no such resource or parameter")
        return self.refs[name]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if (logical_id, attribute) not in self.attrs:
            raise ResolutionError(f"!GetAtt {logical_id}.{attribute}: not provided by this deployment")
        return self.attrs[(logical_id, attribute)]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(self.resolve(i)) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key.startswith("Fn::"):
                raise ResolutionError(f"{key} is not supported by the local resolver")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VAR.sub(replace, text).replace("${!", "${")
