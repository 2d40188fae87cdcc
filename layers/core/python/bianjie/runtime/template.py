"""The templates (AWS SAM) read into plain models: functions, their events, and resources.

The root ``template.yaml`` and the nested applications it names (``functions/<service>/template.yaml``)
are the single source of truth; the gateway, the pump, the scheduler, the local provisioner and the
OpenAPI generator all read them through this module, as one ``Template`` whose functions and resources
come from every stack (``Template.stacks`` keeps each file as written, for ``bianjie.runtime.sam``).
Conditions are evaluated when reading (``bianjie.runtime.conditions``). CloudFormation short-form tags
(``!Ref``, ``!GetAtt``, ``!Sub`` ...) are loaded into their long form (``{"Ref": ...}``,
``{"Fn::GetAtt": [...]}``) and resolved by ``Resolver`` against the physical names a deployment (or the
local stack) assigned.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bianjie.runtime.conditions import Conditions

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
    stack: str | None = None  # the nested application it belongs to; None for the root stack

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
class Stack:
    """One template file of the deployment: the root, or a nested ``AWS::Serverless::Application``.

    ``body`` is the file as written (what the SAM translator takes). ``parameters`` are the values of
    its parameters that are known without deploying (the root's, and literals or root parameters passed
    down), for ``bianjie.runtime.sam.translate``. ``bindings`` map each parameter of a nested stack to
    what the parent passes, written in the root's terms (``{"Fn::GetAtt": ["MasterKey", "Arn"]}``), so
    ``bind`` turns anything read from this stack into something a root-level ``Resolver`` resolves.
    """

    logical_id: str | None  # the application's logical id in its parent; None for the root
    path: Path
    body: dict[str, Any]
    parameters: dict[str, Any]
    bindings: dict[str, Any]
    parent: str | None = None
    resource_ids: list[str] = field(default_factory=list)  # what exists for these parameters
    conditions: Conditions = field(default_factory=lambda: Conditions({}, lambda v: v, "stack"))

    @property
    def name(self) -> str:
        return self.logical_id or "root"

    def bind(self, value: Any) -> Any:
        return _bind(value, self.bindings)


@dataclass
class Template:
    """The deployment as the runtime sees it: every stack's functions and resources in one namespace.

    Logical ids are unique across stacks (they carry the service's prefix), so ``stack.ref(id)`` and
    physical names work the same for a nested stack's resources as for the root's.
    """

    path: Path
    body: dict[str, Any]  # the root template as written
    functions: list[FunctionSpec]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    stacks: list[Stack] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == cfn_type}

    def function(self, logical_id: str) -> FunctionSpec:
        for fn in self.functions:
            if fn.logical_id == logical_id:
                return fn
        raise KeyError(f"template has no function {logical_id}")

    def stack(self, name: str) -> Stack:
        for s in self.stacks:
            if s.name == name:
                return s
        raise KeyError(f"template has no stack {name}")

    def parameter_defaults(self) -> dict[str, Any]:
        """The root's parameter values this template was read with (defaults, overridden by the caller's)."""
        return dict(self.parameters)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """SAM Globals semantics: maps merge, scalars and lists are replaced (Environment merges)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _bind(value: Any, bindings: Mapping[str, Any]) -> Any:
    """``value`` with references to a stack's parameters replaced by what its parent passes."""
    if not bindings:
        return value
    if isinstance(value, list):
        return [_bind(v, bindings) for v in value]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str) and arg in bindings:
            return copy.deepcopy(bindings[arg])
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], dict(arg[1]))
            variables = {k: _bind(v, bindings) for k, v in variables.items()}
            for match in _SUB_VAR.finditer(text):
                name = match.group(1)
                if name in bindings and name not in variables:
                    variables[name] = copy.deepcopy(bindings[name])
            return {"Fn::Sub": [text, variables] if variables else text}
    return {k: _bind(v, bindings) for k, v in value.items()}


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


APPLICATION_TYPE = "AWS::Serverless::Application"
FUNCTION_TYPE = "AWS::Serverless::Function"


def load_template(path: str | Path, parameters: Mapping[str, Any] | None = None) -> Template:
    """Reads the root template and every nested application it names by a local ``Location``.

    ``parameters`` override the root's parameter defaults (e.g. ``{"Stage": "prod"}``); Conditions are
    evaluated against them, so resources whose condition is false are absent and every ``Fn::If`` has
    picked its branch. A nested stack's references to its own parameters are bound to what its parent
    passes, so functions, events and resources of every stack resolve against one ``Deployment``.
    """
    path = Path(path).resolve()
    body = load_yaml(path)
    declared = body.get("Parameters") or {}
    unknown = set(parameters or {}) - set(declared)
    if unknown:
        raise ValueError(f"{path.name}: no such parameters: {', '.join(sorted(unknown))}")
    values = {name: spec["Default"] for name, spec in declared.items() if "Default" in spec}
    values.update(parameters or {})
    template = Template(path=path, body=body, functions=[], parameters=values)
    _Reader(template).read(None, path, body, bindings={}, parent=None)
    return template


class _Reader:
    def __init__(self, template: Template) -> None:
        self.template = template
        root_refs = {**_PSEUDO_AT_LOAD, **template.parameters}
        self._root_resolver = Resolver(root_refs, {})

    def read(
        self, logical_id: str | None, path: Path, body: dict[str, Any], bindings: dict[str, Any], parent: str | None
    ) -> None:
        where = path.name if logical_id is None else f"{logical_id} ({path})"
        stack = Stack(
            logical_id,
            path,
            body,
            parameters=self._known(bindings) if logical_id else dict(self.template.parameters),
            bindings=bindings,
            parent=parent,
        )
        self.template.stacks.append(stack)
        conditions = Conditions(
            {k: stack.bind(v) for k, v in (body.get("Conditions") or {}).items()}, self._resolve, where
        )
        stack.conditions = conditions
        global_fn = stack.bind((body.get("Globals") or {}).get("Function", {}) or {})
        for rid, raw in (body.get("Resources") or {}).items():
            if "Condition" in raw and not conditions.holds(str(raw["Condition"])):
                continue
            if rid in self.template.resources:
                raise ValueError(f"{where}: logical id {rid} is already used by another stack")
            resource = conditions.apply(stack.bind(raw))
            self.template.resources[rid] = resource
            stack.resource_ids.append(rid)
            kind = resource.get("Type")
            if kind == FUNCTION_TYPE:
                props = conditions.apply(_merge(global_fn, resource.get("Properties") or {}))
                self.template.functions.append(_function(rid, path.parent, props, logical_id))
            elif kind == APPLICATION_TYPE:
                self._nested(rid, path, resource.get("Properties") or {}, where, logical_id)

    def _nested(self, rid: str, parent_path: Path, props: Mapping[str, Any], where: str, parent: str | None) -> None:
        location = props.get("Location")
        if not isinstance(location, str) or _is_remote(location):
            return  # a SAR or S3-hosted application: nothing to run locally
        child_path = (parent_path.parent / location).resolve()
        child = load_yaml(child_path)
        declared = child.get("Parameters") or {}
        passed = dict(props.get("Parameters") or {})
        extra = set(passed) - set(declared)
        if extra:
            raise ValueError(f"{where}: {rid} passes parameters its template does not declare: {sorted(extra)}")
        bindings: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in passed:
                bindings[name] = passed[name]
            elif "Default" in spec:
                bindings[name] = spec["Default"]
            else:
                raise ValueError(f"{where}: {rid} does not pass parameter {name}, which has no default")
        self.read(rid, child_path, child, bindings, parent=parent or None)

    def _resolve(self, value: Any) -> Any:
        return self._root_resolver.resolve(value)

    def _known(self, bindings: Mapping[str, Any]) -> dict[str, Any]:
        """Bindings whose value is known before deploying: literals and root parameters."""
        known = {}
        for name, value in bindings.items():
            try:
                known[name] = self._resolve(value)
            except ResolutionError:
                continue
        return known


# Conditions may name pseudo parameters; at load time only the ones that do not depend on the account
# are known.
_PSEUDO_AT_LOAD = {"AWS::NoValue": None}


def _is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://", "s3://"))


def _function(logical_id: str, base: Path, props: dict[str, Any], stack: str | None) -> FunctionSpec:
    events = [
        parsed
        for name, event in (props.get("Events") or {}).items()
        if (parsed := _parse_event(name, event)) is not None
    ]
    return FunctionSpec(
        logical_id=logical_id,
        code_uri=(base / str(props.get("CodeUri", "."))).resolve(),
        handler=str(props["Handler"]),
        runtime=str(props.get("Runtime", "python3.11")),
        timeout=int(props.get("Timeout", 3)),
        memory=int(props.get("MemorySize", 128)),
        environment=dict((props.get("Environment") or {}).get("Variables") or {}),
        layers=list(props.get("Layers") or []),
        events=events,
        properties=props,
        stack=stack,
    )


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
