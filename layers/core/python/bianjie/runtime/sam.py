"""template.yaml as AWS sees it: the real SAM translator (aws-sam-translator), offline.

``translate`` turns the SAM template into the CloudFormation template CloudFormation would deploy:
every function's ``AWS::IAM::Role`` with its policies expanded from SAM policy templates, the Lambda
functions with Globals merged, event source mappings, permissions. Intrinsics stay unresolved (a
deployment resolves them with its physical names). It never calls AWS: managed policies named by
short name resolve through ``MANAGED_POLICIES``.
"""

from __future__ import annotations

import copy
from typing import Any

from bianjie.kit.config import LOCAL_REGION

# The AWS managed policies SAM itself attaches or our template names; the translator needs their ARNs
# (it would otherwise list the account's policies through IAM).
MANAGED_POLICY_PATHS = {
    "AWSLambdaBasicExecutionRole": "service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaSQSQueueExecutionRole": "service-role/AWSLambdaSQSQueueExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSXrayWriteOnlyAccess": "AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "AWSXRayDaemonWriteAccess",
}


def managed_policy_map(region: str) -> dict[str, str]:
    from bianjie.runtime.deployment import partition

    part = partition(region)
    return {name: f"arn:{part}:iam::aws:policy/{path}" for name, path in MANAGED_POLICY_PATHS.items()}


def _placeholder_code(body: dict[str, Any]) -> None:
    """The translator wants code in S3 (``sam build`` uploads it); local paths become placeholders."""
    sections = [resource.get("Properties") or {} for resource in (body.get("Resources") or {}).values()]
    sections += [section for section in (body.get("Globals") or {}).values() if isinstance(section, dict)]
    for props in sections:
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://bianjie-local-code/{props[key].strip('/')}"


def translate(body: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template AWS would deploy for SAM template ``body`` with ``parameters``
    (template parameters, and optionally ``AWS::Region``)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    region = str(parameters.get("AWS::Region") or LOCAL_REGION)
    fragment = copy.deepcopy(body)
    _placeholder_code(fragment)
    values = {k: v for k, v in parameters.items() if v is not None}
    to_py27_compatible_template(fragment, values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    policies = managed_policy_map(region)
    out = translator.translate(fragment, parameter_values=values, get_managed_policy_map=lambda: policies)
    return undo_mark_unicode_str_in_template(out)  # type: ignore[no-any-return]
