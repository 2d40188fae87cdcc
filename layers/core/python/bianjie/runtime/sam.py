"""One stack's SAM template as CloudFormation sees it: the real SAM translator, offline.

``translate(body, parameters)`` takes one template body as written (``Stack.body`` of
``bianjie.runtime.template``) and the values of its parameters that are known (``Stack.parameters``),
and returns the CloudFormation template AWS would deploy: every function with its own
``AWS::IAM::Role`` (policy templates expanded into statements), its ``AWS::Lambda::Permission``\\ s,
event source mappings, the REST API's deployment and stage, and so on.

It never calls AWS. ``sam package`` would first replace local code paths by S3 locations; this does
the same with placeholders (``s3://bianjie-artifacts/<path>``), which the translator only checks for
shape. The translator would ask IAM for the list of managed policies when a template names one by
name; it gets ``MANAGED_POLICIES`` instead, so a managed policy not listed there fails translation
rather than reaching the network.

A nested stack's parameters that the parent fills with its resources (``!GetAtt MasterKey.Arn``) are
unknown here and stay ``{"Ref": "<parameter>"}`` in the output; ``Stack.bind`` turns them into the
root's terms so a ``Deployment`` resolves them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from bianjie.runtime.template import Stack

CLOUDFORMATION_RESOURCE_LIMIT = 500
ARTIFACTS = "bianjie-artifacts"

# Managed policies a template may name by name; the translator maps each to its ARN. SAM adds the ones
# it needs itself (basic execution, SQS polling, X-Ray) by ARN, without this map.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaSQSQueueExecutionRole": "service-role/AWSLambdaSQSQueueExecutionRole",
    "AWSXrayWriteOnlyAccess": "AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "AWSXRayDaemonWriteAccess",
}

_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
}


def translate(
    body: Mapping[str, Any], parameters: Mapping[str, Any] | None = None, *, region: str = "cn-north-1"
) -> dict[str, Any]:
    """The CloudFormation template of one SAM template body (``body`` is not modified).

    Conditions stay as CloudFormation keeps them (``Condition`` on resources, ``Fn::If``); use
    ``translate_stack`` for what exists with the template's parameters.
    """
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # The translator counts its own usage and warns on exit when nobody publishes the counts.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    from bianjie.runtime.deployment import partition

    policies = {name: f"arn:{partition(region)}:iam::aws:policy/{path}" for name, path in MANAGED_POLICIES.items()}
    translator = Translator(policies, Parser(), boto_session=boto3.session.Session(region_name=region))
    known = {k: v for k, v in (parameters or {}).items() if v is not None}
    try:
        return translator.translate(_as_packaged(body), known, get_managed_policy_map=lambda: policies)
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise ValueError(f"SAM translation failed: {causes}") from exc


def translate_stack(stack: Stack, *, region: str = "cn-north-1") -> dict[str, Any]:
    """One stack of a loaded ``Template`` as CloudFormation would create it for the template's parameters.

    Resources whose condition is false are left out and every ``Fn::If`` has picked its branch; the
    stack's parameters are bound to the root's terms, so a ``Deployment``'s resolver resolves what is
    left (a function's role: ``out["Resources"][fn.logical_id]["Properties"]["Role"]``).
    """
    out = translate(stack.body, stack.parameters, region=region)
    conditions = stack.conditions.extended(stack.bind(out.get("Conditions") or {}))
    resources = {}
    for logical_id, resource in (out.get("Resources") or {}).items():
        if "Condition" in resource and not conditions.holds(str(resource["Condition"])):
            continue
        resources[logical_id] = conditions.apply(stack.bind(resource))
    out["Resources"] = resources
    return out


def _as_packaged(body: Mapping[str, Any]) -> dict[str, Any]:
    """What ``sam package`` makes of a template: local paths become S3 locations."""
    out = copy.deepcopy(dict(body))
    global_fn = (out.get("Globals") or {}).get("Function") or {}
    if isinstance(global_fn.get("CodeUri"), str):
        global_fn["CodeUri"] = _s3_uri(global_fn["CodeUri"])
    for resource in (out.get("Resources") or {}).values():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        prop = _CODE_PROPERTIES.get(kind or "")
        if prop and isinstance(props.get(prop), str):
            props[prop] = _s3_uri(props[prop])
        if kind == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
            location = props["Location"]
            if not location.startswith(("http://", "https://")):
                props["Location"] = f"https://{ARTIFACTS}.s3.amazonaws.com/{location.strip('./')}"
    return out


def _s3_uri(path: str) -> str:
    if path.startswith("s3://"):
        return path
    return f"s3://{ARTIFACTS}/{path.strip('./') or 'root'}"
