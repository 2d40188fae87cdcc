"""Creates every table, queue, bucket (and its policy) and KMS key that template.yaml declares, on an AWS endpoint.

Used by the local stack against moto's server. On AWS, CloudFormation does this from the same
template. Resources are created in dependency order (keys, tables, dead-letter queues, queues,
buckets with their notifications) and named deterministically: ``<stack>-<LogicalId>`` unless the
template names them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from bianjie.runtime.deployment import Deployment, arn, physical_name, s3_event_queue_name, s3_queue_logical_id
from bianjie.runtime.template import S3Event, Template

TABLE_TYPES = ("AWS::DynamoDB::Table",)
QUEUE_TYPE = "AWS::SQS::Queue"
BUCKET_TYPE = "AWS::S3::Bucket"
KEY_TYPE = "AWS::KMS::Key"
TOPIC_TYPE = "AWS::SNS::Topic"
SUBSCRIPTION_TYPE = "AWS::SNS::Subscription"
QUEUE_POLICY_TYPE = "AWS::SQS::QueuePolicy"
BUCKET_POLICY_TYPE = "AWS::S3::BucketPolicy"


class UndeliverableError(RuntimeError):
    """A topic subscription or a bucket notification whose queue's policy would not let the service
    deliver: on AWS the messages would be dropped without an error anywhere, so the stack refuses to start."""


class Provisioner:
    def __init__(self, template: Template, deployment: Deployment, session: Any) -> None:
        self.template = template
        self.deployment = deployment
        endpoint = deployment.aws_endpoint_url
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.kms = session.client("kms", endpoint_url=endpoint)
        self.sns = session.client("sns", endpoint_url=endpoint)

    # -- helpers -----------------------------------------------------------------------------

    def _props(self, resource: dict[str, Any]) -> dict[str, Any]:
        return self.deployment.resolver().resolve(resource.get("Properties") or {})

    def _record(self, logical_id: str, kind: str, ref: Any, **attrs: Any) -> None:
        self.deployment.resources[logical_id] = {"type": kind, "ref": ref, "attrs": attrs}

    # -- resources -----------------------------------------------------------------------------

    def provision(self) -> Deployment:
        stack = self.deployment.stack_name
        region = self.deployment.region
        for logical_id, res in self.template.resources.items():
            kind = res.get("Type", "")
            # Names that do not depend on creation, so any property may refer to them.
            if kind == "AWS::Serverless::Function":
                name = physical_name(stack, logical_id, "function")
                self._record(logical_id, kind, name, Arn=arn("lambda", region, f"function:{name}"))
            elif kind == "AWS::Serverless::LayerVersion":
                self._record(logical_id, kind, arn("lambda", region, f"layer:{logical_id}:1"))
            elif kind not in (
                *TABLE_TYPES,
                QUEUE_TYPE,
                BUCKET_TYPE,
                KEY_TYPE,
                TOPIC_TYPE,
                SUBSCRIPTION_TYPE,
                QUEUE_POLICY_TYPE,
                BUCKET_POLICY_TYPE,
            ):
                self._record(logical_id, kind, logical_id)
        for logical_id, res in self.template.resources_of_type(KEY_TYPE).items():
            self._create_key(logical_id, res)
        for logical_id, res in self.template.resources.items():
            if res.get("Type") in TABLE_TYPES:
                self._create_table(logical_id, res)
        queues = self.template.resources_of_type(QUEUE_TYPE)
        # Dead-letter queues first: a queue's RedrivePolicy names its DLQ's ARN.
        for logical_id, res in sorted(
            queues.items(), key=lambda kv: "RedrivePolicy" in (kv[1].get("Properties") or {})
        ):
            self._create_queue(logical_id, res)
        for logical_id, res in self.template.resources_of_type(TOPIC_TYPE).items():
            self._create_topic(logical_id, res)
        for logical_id, res in self.template.resources_of_type(SUBSCRIPTION_TYPE).items():
            self._subscribe(logical_id, res)
        for logical_id, res in self.template.resources_of_type(BUCKET_TYPE).items():
            self._create_bucket(logical_id, res)
        self._check_deliveries(self._apply_queue_policies())
        for fn in self.template.functions:
            for event in fn.events:
                if isinstance(event, S3Event):
                    self._wire_s3_event(fn.logical_id, event)
        # last: a policy that denies the operator (every principal but a function's role) must not stop
        # the operator's own provisioning above, as CloudFormation's ordering would not
        self._apply_bucket_policies()
        return self.deployment

    def _create_key(self, logical_id: str, res: dict[str, Any]) -> None:
        props = self._props(res)
        args: dict[str, Any] = {
            "Description": props.get("Description", logical_id),
            "KeySpec": props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            "KeyUsage": props.get("KeyUsage", "ENCRYPT_DECRYPT"),
        }
        if props.get("KeyPolicy"):
            # the door evaluates it on every call naming the key, as KMS does (bianjie_dev.runtime.door)
            args["Policy"] = json.dumps(props["KeyPolicy"])
        meta = self.kms.create_key(**args)["KeyMetadata"]
        self._record(logical_id, KEY_TYPE, meta["KeyId"], Arn=meta["Arn"], KeyId=meta["KeyId"])

    def _create_table(self, logical_id: str, res: dict[str, Any]) -> None:
        props = self._props(res)
        name = props.get("TableName") or physical_name(self.deployment.stack_name, logical_id, "table")
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        gsis = [
            {
                "IndexName": g["IndexName"],
                "KeySchema": g["KeySchema"],
                "Projection": g.get("Projection", {"ProjectionType": "ALL"}),
            }
            for g in props.get("GlobalSecondaryIndexes", [])
        ]
        if gsis:
            args["GlobalSecondaryIndexes"] = gsis
        with contextlib.suppress(self.dynamodb.exceptions.ResourceInUseException):
            self.dynamodb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self.dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        self._record(logical_id, res["Type"], name, Arn=arn("dynamodb", self.deployment.region, f"table/{name}"))

    def _queue_attrs(self, props: dict[str, Any]) -> dict[str, str]:
        mapping = {
            "VisibilityTimeout": "VisibilityTimeout",
            "MessageRetentionPeriod": "MessageRetentionPeriod",
            "DelaySeconds": "DelaySeconds",
            "MaximumMessageSize": "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
            "FifoQueue": "FifoQueue",
            "ContentBasedDeduplication": "ContentBasedDeduplication",
        }
        attrs = {
            attr: str(props[p]).lower() if isinstance(props[p], bool) else str(props[p])
            for p, attr in mapping.items()
            if p in props
        }
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            attrs["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": policy["deadLetterTargetArn"],
                    "maxReceiveCount": str(policy["maxReceiveCount"]),
                }
            )
        return attrs

    def _create_queue(self, logical_id: str, res: dict[str, Any]) -> None:
        props = self._props(res)
        name = props.get("QueueName") or physical_name(self.deployment.stack_name, logical_id, "queue")
        if props.get("FifoQueue") and not name.endswith(".fifo"):
            name += ".fifo"
        url = self.sqs.create_queue(QueueName=name, Attributes=self._queue_attrs(props))["QueueUrl"]
        queue_arn = self._queue_arn(url)
        self._record(logical_id, QUEUE_TYPE, url, Arn=queue_arn, QueueName=name, QueueUrl=url)

    def _create_topic(self, logical_id: str, res: dict[str, Any]) -> None:
        props = self._props(res)
        name = props.get("TopicName") or physical_name(self.deployment.stack_name, logical_id, "topic")
        topic_arn = self.sns.create_topic(Name=name)["TopicArn"]
        self._record(logical_id, TOPIC_TYPE, topic_arn, TopicArn=topic_arn, TopicName=name)

    def _subscribe(self, logical_id: str, res: dict[str, Any]) -> None:
        props = self._props(res)
        attributes = {}
        if props.get("RawMessageDelivery"):
            attributes["RawMessageDelivery"] = "true"
        if props.get("FilterPolicy"):
            attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
            attributes["FilterPolicyScope"] = props.get("FilterPolicyScope", "MessageAttributes")
        arn_ = self.sns.subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self._record(logical_id, SUBSCRIPTION_TYPE, arn_)

    def _apply_queue_policies(self) -> dict[str, Any]:
        """Each AWS::SQS::QueuePolicy set on its queues, as CloudFormation does -> {queue ARN: policy}."""
        policies: dict[str, Any] = {}
        for logical_id, res in self.template.resources_of_type(QUEUE_POLICY_TYPE).items():
            props = self._props(res)
            document = props["PolicyDocument"]
            for url in props.get("Queues") or []:
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(document)})
                policies[self._queue_arn(url)] = document
            self._record(logical_id, QUEUE_POLICY_TYPE, logical_id)
        return policies

    def _apply_bucket_policies(self) -> None:
        """Each AWS::S3::BucketPolicy set on its bucket, as CloudFormation does; the emulator's door
        evaluates it on every call naming the bucket, as S3 does (moto would apply only ``Principal: *``
        statements without Conditions)."""
        for logical_id, res in self.template.resources_of_type(BUCKET_POLICY_TYPE).items():
            props = self._props(res)
            self.s3.put_bucket_policy(Bucket=str(props["Bucket"]), Policy=json.dumps(props["PolicyDocument"]))
            self._record(logical_id, BUCKET_POLICY_TYPE, logical_id)

    def _check_deliveries(self, policies: dict[str, Any]) -> None:
        """moto delivers SNS and S3 messages to any queue; AWS only where the queue's policy allows the
        service for that topic or bucket. Every such delivery the template declares is checked here."""
        from bianjie_dev.runtime.iam import service_may

        account = str(self.deployment.resolver().resolve({"Ref": "AWS::AccountId"}))
        problems = []
        for logical_id, res in self.template.resources_of_type(SUBSCRIPTION_TYPE).items():
            props = self._props(res)
            if props.get("Protocol") != "sqs":
                continue
            queue, topic = str(props["Endpoint"]), str(props["TopicArn"])
            context = {"aws:SourceArn": topic, "aws:SourceAccount": account}
            if not service_may(policies.get(queue), "sns.amazonaws.com", "sqs:SendMessage", queue, context):
                problems.append(
                    f"{logical_id}: no queue policy lets sns.amazonaws.com send {topic} to {queue} "
                    "(add an AWS::SQS::QueuePolicy allowing sqs:SendMessage with aws:SourceArn of the topic)"
                )
        for logical_id, res in self.template.resources_of_type(BUCKET_TYPE).items():
            props = self._props(res)
            bucket = str(self.deployment.resources[logical_id]["attrs"]["Arn"])
            for qc in (props.get("NotificationConfiguration") or {}).get("QueueConfigurations", []):
                queue = str(qc["Queue"])
                context = {"aws:SourceArn": bucket, "aws:SourceAccount": account}
                if not service_may(policies.get(queue), "s3.amazonaws.com", "sqs:SendMessage", queue, context):
                    problems.append(
                        f"{logical_id}: no queue policy lets s3.amazonaws.com notify {queue} "
                        "(add an AWS::SQS::QueuePolicy allowing sqs:SendMessage for the bucket)"
                    )
        if problems:
            raise UndeliverableError("messages AWS would drop:\n  " + "\n  ".join(problems))

    def _queue_arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def _create_bucket(self, logical_id: str, res: dict[str, Any]) -> None:
        props = self._props(res)
        name = props.get("BucketName") or physical_name(self.deployment.stack_name, logical_id, "bucket")
        args: dict[str, Any] = {"Bucket": name}
        if self.deployment.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.deployment.region}
        with contextlib.suppress(self.s3.exceptions.BucketAlreadyOwnedByYou, self.s3.exceptions.BucketAlreadyExists):
            self.s3.create_bucket(**args)
        if "CorsConfiguration" in props:
            rules = [
                {
                    k: v
                    for k, v in {
                        "AllowedHeaders": r.get("AllowedHeaders"),
                        "AllowedMethods": r["AllowedMethods"],
                        "AllowedOrigins": r["AllowedOrigins"],
                        "ExposeHeaders": r.get("ExposedHeaders"),
                        "MaxAgeSeconds": r.get("MaxAge"),
                    }.items()
                    if v is not None
                }
                for r in props["CorsConfiguration"]["CorsRules"]
            ]
            self.s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        queue_configs = [
            self._queue_config(qc["Queue"], qc["Event"], qc.get("Filter"))
            for qc in (props.get("NotificationConfiguration") or {}).get("QueueConfigurations", [])
        ]
        if queue_configs:
            self.s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": queue_configs}
            )
        self._record(
            logical_id,
            BUCKET_TYPE,
            name,
            Arn=arn("s3", self.deployment.region, name, account=None),
            DomainName=f"{name}.s3.amazonaws.com",
        )

    @staticmethod
    def _queue_config(queue_arn: str, event: str | list[str], flt: dict[str, Any] | None) -> dict[str, Any]:
        config: dict[str, Any] = {"QueueArn": queue_arn, "Events": [event] if isinstance(event, str) else event}
        rules = (flt or {}).get("S3Key", {}).get("Rules", [])
        if rules:
            config["Filter"] = {
                "Key": {"FilterRules": [{"Name": r["Name"].lower(), "Value": r["Value"]} for r in rules]}
            }
        return config

    def _wire_s3_event(self, function_id: str, event: S3Event) -> None:
        resolver = self.deployment.resolver()
        bucket = resolver.resolve(event.bucket)
        name = s3_event_queue_name(self.deployment.stack_name, function_id, event.name)
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self._queue_arn(url)
        current = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        configs = current.get("QueueConfigurations", [])
        rules = []
        if event.prefix:
            rules.append({"Name": "Prefix", "Value": event.prefix})
        if event.suffix:
            rules.append({"Name": "Suffix", "Value": event.suffix})
        configs.append(
            self._queue_config(queue_arn, list(event.events), {"S3Key": {"Rules": rules}} if rules else None)
        )
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs}
        )
        self._record(
            s3_queue_logical_id(function_id, event.name), QUEUE_TYPE, url, Arn=queue_arn, QueueName=name, QueueUrl=url
        )
