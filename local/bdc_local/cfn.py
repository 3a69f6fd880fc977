"""The SAM template as CloudFormation, created in moto.

``load_template`` reads template.yaml (cfn-lint's loader turns !Ref/!Sub/!GetAtt into
their JSON forms), ``translate_template`` turns it into plain CloudFormation with
aws-sam-translator, and ``create_stack`` creates that stack through a CloudFormation
client (in-process moto or a moto server). ``local_stack(..., from_template=True)``
runs the local flow against the resources the stack created.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-west-2"


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM template as plain dicts, intrinsic functions in their JSON form."""
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def translate_template(
    template: dict[str, Any],
    *,
    artifacts_bucket: str | None = None,
    region: str = REGION,
) -> dict[str, Any]:
    """Plain CloudFormation from the SAM template (aws-sam-translator, no AWS calls).

    With ``artifacts_bucket``, each function's CodeUri and each layer's ContentUri is
    pointed at ``s3://<artifacts_bucket>/<LogicalId>.zip`` (what `sam package` does
    with the built folders); otherwise at placeholder S3 locations.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    bucket = artifacts_bucket or "artifacts-placeholder"
    for logical_id, resource in sam["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": f"{logical_id}.zip"}
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = {"Bucket": bucket, "Key": f"{logical_id}.zip"}
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    return translator.translate(sam, {}, get_managed_policy_map=lambda: {})


def placeholder_zip() -> bytes:
    """A deployment package whose handler does nothing (moto never runs it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def create_stack(
    s3_client: Any,
    cloudformation_client: Any,
    *,
    stack_name: str = "bdc-test",
    parameters: dict[str, str] | None = None,
    region: str = REGION,
) -> dict[str, str]:
    """Create the stack (with placeholder code) through CloudFormation; returns its outputs.

    Works against in-process moto (``mock_aws``) and against a moto server (clients
    with an endpoint_url). Resource types moto cannot create (CloudWatch alarms) are
    skipped by moto with a warning.
    """
    bucket = f"{stack_name}-artifacts"
    if region == "us-east-1":
        s3_client.create_bucket(Bucket=bucket)
    else:
        s3_client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    template = load_template()
    body = placeholder_zip()
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            s3_client.put_object(Bucket=bucket, Key=f"{logical_id}.zip", Body=body)
    translated = translate_template(template, artifacts_bucket=bucket, region=region)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        cloudformation_client.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(translated),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    stack = cloudformation_client.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
