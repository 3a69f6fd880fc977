"""template.yaml against the code: handlers, environment, queues, IAM, alarms, outputs.

The template is read with cfn-lint's YAML loader (which turns !Ref/!Sub/!GetAtt into
their JSON forms), linted with cfn-lint, turned into plain CloudFormation with
aws-sam-translator, and that CloudFormation is created in moto.

``translate_template`` and ``create_stack`` live in ``bdc_local.cfn``: the local stack
uses them to create its queues and table from this template in the moto server.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

cfn_yaml = pytest.importorskip("cfnlint.decode.cfn_yaml")
pytest.importorskip("samtranslator")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-west-2"
CACHE_PREFIX = "data-asset-cache"

# Read by the code but never set in AWS: the local DocDB stand-in speaks plain HTTP,
# a deployment always uses HTTPS (bdc_sync.settings: "AWS deployments never set this").
LOCAL_ONLY_VARIABLES = {"DOCDB_PLAIN_HTTP"}
# Set by the Lambda runtime itself, or only by the local stack (AWS_ENDPOINT_URL).
RUNTIME_VARIABLE_PREFIXES = ("AWS_", "_X_AMZN", "_HANDLER", "LAMBDA_")

FUNCTIONS = {
    "DispatcherFunction": "dispatcher",
    "WorkerFunction": "worker",
    "FinalizerFunction": "finalizer",
    "DecoderFunction": "decoder",
}
# The decoder's two objects: the pickle it reads, the staging parquet it writes.
PICKLE_OBJECT = "arn:${AWS::Partition}:s3:::${BehaviorBucket}/foraging_nwb_bonsai_processed/df_sessions.pkl"
STAGING_OBJECT = "arn:${AWS::Partition}:s3:::${CacheBucket}/bdc-staging/foraging_sessions/sessions.parquet"
LAYERS = {"DependenciesLayer": "layers/deps", "SyncLayer": "layers/sync"}
REQUIRED_OUTPUTS = {
    "WorkQueueUrl",
    "FinalizeQueueUrl",
    "DispatcherFunctionName",
    "WorkerFunctionName",
    "FinalizerFunctionName",
    "RunLedgerTableName",
    "CachePrefix",
}
# Actions allowed on "*" (those without resource-level permissions): none is needed
# since X-Ray tracing is off.
STAR_RESOURCE_ACTIONS: set[str] = set()
S3_READ_ACTIONS = {"s3:GetObject", "s3:ListBucket"}
SQS_CONSUMER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


from bdc_local.cfn import create_stack, load_template, translate_template  # noqa: E402

# -- helpers over the template --------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate_template(template)


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def function_property(template: dict[str, Any], logical_id: str, name: str) -> Any:
    properties = template["Resources"][logical_id]["Properties"]
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def parameter_default(template: dict[str, Any], value: Any) -> Any:
    """A literal, or the default of the parameter it Refs."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced_logical_id(value: Any) -> str | None:
    """The logical id in {"Ref": X} or {"Fn::GetAtt": [X, ...]}."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def policy_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    role = template["Resources"][role_id]["Properties"]
    statements = []
    for policy in role.get("Policies", []):
        statements.extend(as_list(policy["PolicyDocument"]["Statement"]))
    for resource in resources_of(template, "AWS::IAM::Policy").values():
        if any(referenced_logical_id(r) == role_id for r in resource["Properties"].get("Roles", [])):
            statements.extend(as_list(resource["Properties"]["PolicyDocument"]["Statement"]))
    return statements


def role_of(template: dict[str, Any], function_id: str) -> str:
    role = referenced_logical_id(function_property(template, function_id, "Role"))
    assert role, f"{function_id} must use an explicit role of this template"
    return role


def allowed(statements: list[dict[str, Any]], action: str, resource_id: str) -> bool:
    """Whether some statement allows ``action`` on the resource with that logical id."""
    for statement in statements:
        if statement.get("Effect") != "Allow" or action not in as_list(statement["Action"]):
            continue
        if any(referenced_logical_id(r) == resource_id for r in as_list(statement["Resource"])):
            return True
    return False


def sqs_events(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for function_id in resources_of(template, "AWS::Serverless::Function"):
        events = template["Resources"][function_id]["Properties"].get("Events", {})
        for name, event in events.items():
            if event["Type"] == "SQS":
                found.append((function_id, name, event["Properties"]))
    return found


def environment_reads(paths: list[Path]) -> dict[str, str]:
    """Environment variable names read with a literal name: os.environ[...], .get, getenv."""
    names: dict[str, str] = {}
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Subscript) and _is_environ(node.value):
                name = _literal(node.slice)
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in {"get", "pop", "setdefault"}:
                    if _is_environ(func.value):
                        name = _literal(node.args[0])
                elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                    name = _literal(node.args[0])
            if name:
                names.setdefault(name, f"{path.relative_to(ROOT)}:{node.lineno}")
    return names


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


# -- lint -----------------------------------------------------------------------------


def test_cfn_lint_is_clean() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)
    assert not matches, "\n".join(str(match) for match in matches)


# -- functions and handlers -----------------------------------------------------------


def test_the_three_functions_and_their_settings(template: dict[str, Any]) -> None:
    functions = resources_of(template, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["x86_64"]
    expected = {
        "DispatcherFunction": (60, 256),
        "WorkerFunction": (900, 1769),
        "FinalizerFunction": (300, 512),
        "DecoderFunction": (300, 3008),
    }
    for function_id, (timeout, memory) in expected.items():
        assert function_property(template, function_id, "Timeout") == timeout
        assert parameter_default(template, function_property(template, function_id, "MemorySize")) == memory


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_every_handler_path_exists(template: dict[str, Any], function_id: str) -> None:
    code_uri = function_property(template, function_id, "CodeUri")
    # layers/build.py and `sam build` map <Name>Function to functions/<name>/.
    assert code_uri.rstrip("/") == f"functions/{FUNCTIONS[function_id]}"
    handler = function_property(template, function_id, "Handler")
    module, _, attribute = handler.rpartition(".")
    source = ROOT / code_uri / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{function_id}: handler file {source.relative_to(ROOT)} is missing"
    tree = ast.parse(source.read_text())
    defined = {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    } | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert attribute in defined, f"{source.relative_to(ROOT)} defines no {attribute}"


def test_functions_use_both_layers(template: dict[str, Any]) -> None:
    for function_id in FUNCTIONS:
        layers = function_property(template, function_id, "Layers")
        assert {referenced_logical_id(layer) for layer in layers} == set(LAYERS)
    for layer_id, folder in LAYERS.items():
        resource = template["Resources"][layer_id]
        assert resource["Type"] == "AWS::Serverless::LayerVersion"
        assert resource["Properties"]["ContentUri"].rstrip("/") == folder
        assert (ROOT / folder).is_dir()
        assert resource["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert resource["Properties"]["CompatibleArchitectures"] == ["x86_64"]


def test_sam_build_targets_exist_in_the_makefile(template: dict[str, Any]) -> None:
    """Resources built with BuildMethod makefile need a build-<LogicalId> target there
    (or the generic ``build-%`` rule; tests/deploy/test_sam_build.py runs them)."""
    for logical_id, resource in template["Resources"].items():
        metadata = resource.get("Metadata", {})
        if metadata.get("BuildMethod") != "makefile":
            continue
        makefile = ROOT / metadata.get("ContextPath", resource["Properties"].get("CodeUri", ".")) / "Makefile"
        assert makefile.is_file(), f"{logical_id}: no {makefile.relative_to(ROOT)}"
        targets = set(re.findall(r"^([A-Za-z0-9_.%\- ]+):(?!=)", makefile.read_text(), re.MULTILINE))
        names = {name for line in targets for name in line.split()}
        assert f"build-{logical_id}" in names or "build-%" in names, (
            f"{makefile.relative_to(ROOT)} lacks build-{logical_id}"
        )


def test_tracing_is_off_and_nothing_needs_the_xray_sdk(template: dict[str, Any]) -> None:
    """Tracing was dropped (README "Deploying to AWS"): no Tracer, no SDK, no X-Ray mode."""
    functions = resources_of(template, "AWS::Serverless::Function")
    for properties in [template["Globals"]["Function"], *(f["Properties"] for f in functions.values())]:
        assert properties.get("Tracing", "PassThrough") == "PassThrough"
    requirements = (ROOT / "layers" / "deps" / "requirements.txt").read_text().lower()
    assert not re.search(r"^aws-xray-sdk", requirements, re.MULTILINE)
    for path in [*(ROOT / "functions").rglob("*.py"), *(ROOT / "layers" / "sync").rglob("*.py")]:
        text = path.read_text()
        assert "Tracer" not in text and "aws_xray_sdk" not in text, path


def test_dependencies_layer_carries_no_duckdb() -> None:
    requirements = (ROOT / "layers" / "deps" / "requirements.txt").read_text().lower()
    names = {
        re.split(r"[\[<>=!~; ]", line.strip(), maxsplit=1)[0]
        for line in requirements.splitlines()
        if line.strip() and not line.strip().startswith("#")
    }
    assert {"pyarrow", "aws-lambda-powertools", "aind-data-access-api", "pydantic", "semver"} <= names
    assert not names & {"duckdb", "polars"}


# -- environment ----------------------------------------------------------------------


def test_every_environment_variable_the_code_reads_is_set(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    from bdc_sync.settings import ENVIRONMENT_VARIABLES

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    wanted = set(ENVIRONMENT_VARIABLES) - LOCAL_ONLY_VARIABLES
    assert not wanted - set(variables), f"not set in Globals: {sorted(wanted - set(variables))}"
    assert not LOCAL_ONLY_VARIABLES & set(variables), "local-only settings must not be set in AWS"
    powertools = {
        "POWERTOOLS_SERVICE_NAME": "biodata-cache",
        "POWERTOOLS_METRICS_NAMESPACE": "BiodataCache",
        "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    }
    for name, value in powertools.items():
        assert variables[name] == value
    # After translation every function carries them all.
    for function_id in FUNCTIONS:
        function = translated["Resources"][function_id]["Properties"]
        assert wanted | set(powertools) <= set(function["Environment"]["Variables"]), function_id


def test_every_environment_variable_read_anywhere_in_lambda_code_is_set(template: dict[str, Any]) -> None:
    from bdc_sync.settings import ENVIRONMENT_VARIABLES

    sources = sorted((ROOT / "layers" / "sync" / "bdc_sync").rglob("*.py")) + sorted(
        (ROOT / "functions").rglob("*.py")
    )
    variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for function_id in FUNCTIONS:
        own = template["Resources"][function_id]["Properties"].get("Environment", {})
        variables |= set(own.get("Variables", {}))
    reads = environment_reads(sources)
    missing = {
        name: where
        for name, where in reads.items()
        if name not in variables
        and name not in LOCAL_ONLY_VARIABLES
        and not name.startswith(RUNTIME_VARIABLE_PREFIXES)
        and not name.startswith("POWERTOOLS_")
    }
    assert not missing, f"read by the code but not set by the template: {missing}"
    # Settings is the one place the code reads its configuration.
    assert set(ENVIRONMENT_VARIABLES) - LOCAL_ONLY_VARIABLES <= variables


def test_worker_timeout_setting_matches_the_worker(template: dict[str, Any]) -> None:
    from bdc_sync.settings import Settings

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    timeout = function_property(template, "WorkerFunction", "Timeout")
    assert int(variables["WORKER_TIMEOUT_SECONDS"]) == timeout == 900
    assert Settings.model_fields["worker_timeout_seconds"].default == timeout
    assert variables["MAX_RECEIVES"] == {"Ref": "MaxReceives"}
    assert Settings.model_fields["max_receives"].default == template["Parameters"]["MaxReceives"]["Default"]


# -- queues ---------------------------------------------------------------------------


def test_queue_visibility_is_at_least_six_function_timeouts(template: dict[str, Any]) -> None:
    events = sqs_events(template)
    assert {function_id for function_id, _, _ in events} == {"WorkerFunction", "FinalizerFunction"}
    for function_id, _, properties in events:
        queue_id = referenced_logical_id(properties["Queue"])
        queue = template["Resources"][queue_id]["Properties"]
        timeout = function_property(template, function_id, "Timeout")
        assert queue["VisibilityTimeout"] >= 6 * timeout, f"{queue_id} vs {function_id}"
    assert template["Resources"]["WorkQueue"]["Properties"]["VisibilityTimeout"] >= 5400
    assert template["Resources"]["FinalizeQueue"]["Properties"]["VisibilityTimeout"] >= 1800


def test_every_sqs_event_reports_batch_item_failures(template: dict[str, Any]) -> None:
    for function_id, name, properties in sqs_events(template):
        assert "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []), (function_id, name)
        assert properties["BatchSize"] == 1, (function_id, name)
        assert "MaximumConcurrency" in properties.get("ScalingConfig", {}), (function_id, name)


def test_worker_concurrency_is_capped_by_a_parameter(template: dict[str, Any]) -> None:
    (work,) = [p for f, _, p in sqs_events(template) if f == "WorkerFunction"]
    assert referenced_logical_id(work["Queue"]) == "WorkQueue"
    assert work["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerMaxConcurrency"}
    parameter = template["Parameters"]["WorkerMaxConcurrency"]
    assert parameter["Default"] == 32 and parameter["MinValue"] >= 2


def test_consumer_queues_redrive_to_dead_letter_queues(template: dict[str, Any]) -> None:
    assert template["Parameters"]["MaxReceives"]["Default"] == 3
    for queue_id, dlq_id in (
        ("WorkQueue", "WorkDeadLetterQueue"),
        ("FinalizeQueue", "FinalizeDeadLetterQueue"),
    ):
        redrive = template["Resources"][queue_id]["Properties"]["RedrivePolicy"]
        assert referenced_logical_id(redrive["deadLetterTargetArn"]) == dlq_id
        assert redrive["maxReceiveCount"] == {"Ref": "MaxReceives"}
        assert template["Resources"][dlq_id]["Type"] == "AWS::SQS::Queue"


def test_dispatcher_runs_nightly_on_a_schedule_parameter(template: dict[str, Any]) -> None:
    events = template["Resources"]["DispatcherFunction"]["Properties"]["Events"]
    (schedule,) = [e for e in events.values() if e["Type"] in ("Schedule", "ScheduleV2")]
    assert schedule["Properties"]["Schedule" if schedule["Type"] == "Schedule" else "ScheduleExpression"] == {
        "Ref": "ScheduleExpression"
    }
    assert template["Parameters"]["ScheduleExpression"]["Default"] == "cron(0 8 * * ? *)"


# -- ledger ---------------------------------------------------------------------------


def test_run_ledger_table(template: dict[str, Any]) -> None:
    table = template["Resources"]["RunLedgerTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in properties["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


# -- IAM ------------------------------------------------------------------------------


def _resource_text(resource: Any) -> str:
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return ""


def test_every_policy_statement_is_scoped_to_named_resources(translated: dict[str, Any]) -> None:
    """No wildcard actions, no NotAction/NotResource, no "*" resource,
    S3 ARNs only on bucket parameters, and no managed policies on the roles."""
    roles = resources_of(translated, "AWS::IAM::Role")
    assert set(roles) == {"DispatcherRole", "WorkerRole", "FinalizerRole", "DecoderRole"}, (
        "SAM must not generate roles"
    )
    parameters = set(translated["Parameters"])
    checked = 0
    for role_id, role in roles.items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{role_id}: managed policies are too broad"
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
        for statement in policy_statements(translated, role_id):
            checked += 1
            where = f"{role_id}/{statement.get('Sid', '?')}"
            assert statement["Effect"] == "Allow", where
            assert "NotAction" not in statement and "NotResource" not in statement, where
            actions = as_list(statement["Action"])
            assert all("*" not in action for action in actions), where
            for resource in as_list(statement["Resource"]):
                if resource == "*":
                    assert set(actions) <= STAR_RESOURCE_ACTIONS, f"{where}: '*' resource"
                    continue
                if referenced_logical_id(resource):
                    assert referenced_logical_id(resource) in translated["Resources"], where
                    continue
                text = _resource_text(resource)
                assert text, f"{where}: resource {resource!r} is not a named resource"
                if text in (PICKLE_OBJECT, STAGING_OBJECT):
                    continue
                match = re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{(\w+)\}(/.*)?", text)
                assert match, f"{where}: {text}"
                assert match.group(1) in parameters, where
                assert match.group(2) in (None, "/*", f"/{CACHE_PREFIX}/*"), f"{where}: {text}"
    assert checked >= 15


def _s3_grants(statements: list[dict[str, Any]]) -> list[tuple[str, str]]:
    grants = []
    for statement in statements:
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                grants.extend((action, _resource_text(r)) for r in as_list(statement["Resource"]))
    return grants


def test_s3_writes_and_deletes_only_under_the_cache_prefix(template: dict[str, Any]) -> None:
    cache_objects = f"arn:${{AWS::Partition}}:s3:::${{CacheBucket}}/{CACHE_PREFIX}/*"
    for role_id in ("DispatcherRole", "WorkerRole", "FinalizerRole"):
        for action, resource in _s3_grants(policy_statements(template, role_id)):
            if action not in S3_READ_ACTIONS:
                assert resource == cache_objects, f"{role_id}: {action} on {resource}"
            if "${SourceBucket}" in resource or "${BehaviorBucket}" in resource:
                assert action in S3_READ_ACTIONS, f"{role_id}: {action} on a source bucket"
    worker = dict.fromkeys(_s3_grants(policy_statements(template, "WorkerRole")))
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert (action, cache_objects) in worker
    for bucket in ("SourceBucket", "BehaviorBucket"):
        assert ("s3:GetObject", f"arn:${{AWS::Partition}}:s3:::${{{bucket}}}/*") in worker
        assert ("s3:ListBucket", f"arn:${{AWS::Partition}}:s3:::${{{bucket}}}") in worker
    finalizer = dict.fromkeys(_s3_grants(policy_statements(template, "FinalizerRole")))
    assert ("s3:PutObject", cache_objects) in finalizer
    assert not any(action == "s3:DeleteObject" for action, _ in finalizer)
    dispatcher = dict.fromkeys(_s3_grants(policy_statements(template, "DispatcherRole")))
    assert {action for action, _ in dispatcher} == S3_READ_ACTIONS


def test_the_decoder_reads_one_object_and_writes_one_staging_key(template: dict[str, Any]) -> None:
    """A pickle that ran code in the decoder could change no table: its role reads the
    pickle and writes the staging parquet, outside the cache prefix, and nothing else."""
    assert role_of(template, "DecoderFunction") == "DecoderRole"
    statements = policy_statements(template, "DecoderRole")
    grants = set(_s3_grants(statements))
    assert grants == {("s3:GetObject", PICKLE_OBJECT), ("s3:PutObject", STAGING_OBJECT)}
    assert not STAGING_OBJECT.split(":::")[1].removeprefix("${CacheBucket}/").startswith(CACHE_PREFIX)
    actions = {action for statement in statements for action in as_list(statement["Action"])}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "s3:PutObject"}
    # Invoked by the worker only, never by an event source.
    assert "Events" not in template["Resources"]["DecoderFunction"]["Properties"]
    worker = policy_statements(template, "WorkerRole")
    assert allowed(worker, "lambda:InvokeFunction", "DecoderFunction")
    assert ("s3:GetObject", STAGING_OBJECT) in _s3_grants(worker)
    for role_id in ("DispatcherRole", "FinalizerRole"):
        grants = _s3_grants(policy_statements(template, role_id))
        assert not any(resource == STAGING_OBJECT for _, resource in grants)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DECODER_FUNCTION"] == function_property(template, "DecoderFunction", "FunctionName")


def test_cache_prefix_matches_the_layout_contract() -> None:
    from biodata_cache import layout

    assert layout.ROOT_PREFIX == CACHE_PREFIX
    assert layout.DEFAULT_BUCKET == load_template()["Parameters"]["CacheBucket"]["Default"]


def test_roles_allow_what_each_function_is_wired_to(template: dict[str, Any]) -> None:
    # Event sources: Lambda refuses to create the mapping without these.
    for function_id, _, properties in sqs_events(template):
        statements = policy_statements(template, role_of(template, function_id))
        queue_id = referenced_logical_id(properties["Queue"])
        for action in SQS_CONSUMER_ACTIONS | {"sqs:ChangeMessageVisibility"}:
            assert allowed(statements, action, queue_id), f"{function_id}: {action} on {queue_id}"
    # Log groups: each function writes only its own, which has a retention.
    for function_id, name in FUNCTIONS.items():
        statements = policy_statements(template, role_of(template, function_id))
        log_group_id = f"{name.capitalize()}LogGroup"
        log_group = template["Resources"][log_group_id]
        assert log_group["Properties"]["LogGroupName"] == {
            "Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{name}"
        }
        assert function_property(template, function_id, "FunctionName") == {
            "Fn::Sub": f"${{AWS::StackName}}-{name}"
        }
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert template["Resources"][function_id].get("DependsOn") == log_group_id
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            assert allowed(statements, action, log_group_id), f"{function_id}: {action}"
    # What the code does with the queues and the ledger.
    dispatcher = policy_statements(template, "DispatcherRole")
    worker = policy_statements(template, "WorkerRole")
    finalizer = policy_statements(template, "FinalizerRole")
    # Both run bdc_sync.flow.progress.advance_run, which sends to either queue.
    for statements in (dispatcher, worker):
        assert allowed(statements, "sqs:SendMessage", "WorkQueue")
        assert allowed(statements, "sqs:SendMessage", "FinalizeQueue")
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"):
        for statements in (dispatcher, worker, finalizer):
            assert allowed(statements, action, "RunLedgerTable"), action
    # Powertools idempotency deletes its record when the handler fails.
    assert allowed(finalizer, "dynamodb:DeleteItem", "RunLedgerTable")
    assert not allowed(worker, "dynamodb:DeleteItem", "RunLedgerTable")


# -- alarms and outputs ---------------------------------------------------------------


def _alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources_of(template, "AWS::CloudWatch::Alarm").values()]


def _dimension_target(alarm: dict[str, Any]) -> str | None:
    (dimension,) = alarm["Dimensions"]
    return referenced_logical_id(dimension["Value"])


def test_alarms(template: dict[str, Any]) -> None:
    alarms = _alarms(template)
    for alarm in alarms:
        assert [referenced_logical_id(a) for a in alarm["AlarmActions"]] == ["AlarmTopic"]
    dead_letters = {
        _dimension_target(a)
        for a in alarms
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible" and a["Threshold"] == 0
    }
    assert {"WorkDeadLetterQueue", "FinalizeDeadLetterQueue"} <= dead_letters
    errors = {
        _dimension_target(a) for a in alarms if a["MetricName"] == "Errors" and a["Namespace"] == "AWS/Lambda"
    }
    assert "WorkerFunction" in errors
    overdue = {
        _dimension_target(a)
        for a in alarms
        if a["MetricName"] == "ApproximateAgeOfOldestMessage"
        and a["Threshold"] == {"Ref": "RunOverdueSeconds"}
    }
    assert overdue == {"WorkQueue", "FinalizeQueue"}
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert REQUIRED_OUTPUTS <= set(outputs)
    assert outputs["CachePrefix"]["Value"] == {"Fn::Sub": f"s3://${{CacheBucket}}/{CACHE_PREFIX}/"}
    assert referenced_logical_id(outputs["WorkQueueUrl"]["Value"]) == "WorkQueue"
    assert referenced_logical_id(outputs["FinalizeQueueUrl"]["Value"]) == "FinalizeQueue"
    assert referenced_logical_id(outputs["RunLedgerTableName"]["Value"]) == "RunLedgerTable"
    for function_id in FUNCTIONS:
        output = outputs[function_id.replace("Function", "FunctionName")]
        assert referenced_logical_id(output["Value"]) == function_id


def test_parameters_have_the_documented_defaults(template: dict[str, Any]) -> None:
    defaults = {name: p.get("Default") for name, p in template["Parameters"].items()}
    assert defaults["CacheBucket"] == "allen-data-views"
    assert defaults["SourceBucket"] == "aind-open-data"
    assert defaults["BehaviorBucket"] == "aind-behavior-data"
    assert defaults["DocDBHost"] == "api.allenneuraldynamics.org"
    assert defaults["LogLevel"] == "INFO"
    assert defaults["LogRetentionDays"] == 30


# -- translated template --------------------------------------------------------------


def test_translation_wires_event_sources(translated: dict[str, Any]) -> None:
    mappings = resources_of(translated, "AWS::Lambda::EventSourceMapping")
    by_function = {
        referenced_logical_id(m["Properties"]["FunctionName"]): m["Properties"] for m in mappings.values()
    }
    assert set(by_function) == {"WorkerFunction", "FinalizerFunction"}
    for properties in by_function.values():
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert properties["BatchSize"] == 1
    assert by_function["WorkerFunction"]["ScalingConfig"] == {
        "MaximumConcurrency": {"Ref": "WorkerMaxConcurrency"}
    }
    (rule,) = resources_of(translated, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert referenced_logical_id(rule["Properties"]["Targets"][0]["Arn"]) == "DispatcherFunction"
    assert resources_of(translated, "AWS::Lambda::Permission")
    assert len(resources_of(translated, "AWS::Lambda::LayerVersion")) == 2


# -- the stack in moto ----------------------------------------------------------------


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def test_stack_creates_its_resources_in_moto(aws_credentials: None) -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from bdc_sync.settings import ENVIRONMENT_VARIABLES

    with moto.mock_aws():
        outputs = create_stack(
            boto3.client("s3", region_name=REGION),
            boto3.client("cloudformation", region_name=REGION),
            stack_name="bdc-test",
            parameters={"CacheBucket": "bdc-test-cache", "WorkerMaxConcurrency": "8"},
        )
        assert REQUIRED_OUTPUTS <= set(outputs)
        assert outputs["CachePrefix"] == f"s3://bdc-test-cache/{CACHE_PREFIX}/"

        sqs = boto3.client("sqs", region_name=REGION)
        work = sqs.get_queue_attributes(QueueUrl=outputs["WorkQueueUrl"], AttributeNames=["All"])[
            "Attributes"
        ]
        assert int(work["VisibilityTimeout"]) == 5400
        assert json.loads(work["RedrivePolicy"])["maxReceiveCount"] in (3, "3")
        finalize = sqs.get_queue_attributes(QueueUrl=outputs["FinalizeQueueUrl"], AttributeNames=["All"])[
            "Attributes"
        ]
        assert int(finalize["VisibilityTimeout"]) >= 1800
        assert "RedrivePolicy" in finalize

        table = boto3.client("dynamodb", region_name=REGION).describe_table(
            TableName=outputs["RunLedgerTableName"]
        )["Table"]
        assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

        lambda_ = boto3.client("lambda", region_name=REGION)
        for key, timeout in (
            ("DispatcherFunctionName", 60),
            ("WorkerFunctionName", 900),
            ("FinalizerFunctionName", 300),
        ):
            config = lambda_.get_function(FunctionName=outputs[key])["Configuration"]
            assert config["Runtime"] == "python3.12"
            assert config["Handler"] == "app.lambda_handler"
            assert config["Timeout"] == timeout
            variables = config["Environment"]["Variables"]
            assert set(ENVIRONMENT_VARIABLES) - LOCAL_ONLY_VARIABLES <= set(variables)
            assert variables["WORK_QUEUE_URL"] == outputs["WorkQueueUrl"]
            assert variables["FINALIZE_QUEUE_URL"] == outputs["FinalizeQueueUrl"]
            assert variables["RUN_LEDGER_TABLE"] == outputs["RunLedgerTableName"]
            assert variables["CACHE_BUCKET"] == "bdc-test-cache"
        (mapping,) = lambda_.list_event_source_mappings(FunctionName=outputs["WorkerFunctionName"])[
            "EventSourceMappings"
        ]
        assert mapping["EventSourceArn"] == work["QueueArn"]
        assert mapping["BatchSize"] == 1
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["ScalingConfig"]["MaximumConcurrency"] == 8
        (mapping,) = lambda_.list_event_source_mappings(FunctionName=outputs["FinalizerFunctionName"])[
            "EventSourceMappings"
        ]
        assert mapping["EventSourceArn"] == finalize["QueueArn"]
        # (moto names layers itself, ignoring LayerName)
        assert len(lambda_.list_layers()["Layers"]) == 2

        (rule,) = boto3.client("events", region_name=REGION).list_rules()["Rules"]
        assert rule["ScheduleExpression"] == "cron(0 8 * * ? *)"
        assert rule["State"] == "ENABLED"

        logs = boto3.client("logs", region_name=REGION)
        groups = {
            g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]
        }
        for name in FUNCTIONS.values():
            assert groups[f"/aws/lambda/bdc-test-{name}"] == 30


def schedule_interval_minutes(expression: str) -> int:
    """Minutes between runs of an EventBridge ``rate(...)`` or once-a-day ``cron(...)``."""
    rate = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", expression)
    if rate:
        unit = {"minute": 1, "hour": 60, "day": 1440}[rate.group(2).rstrip("s")]
        return int(rate.group(1)) * unit
    cron = re.fullmatch(r"cron\((\d+) (\d+) \* \* \? \*\)", expression)
    assert cron, f"not a rate or a daily cron: {expression}"
    return 1440


def test_no_run_finalized_alarm_covers_one_and_a_half_intervals(template: dict[str, Any]) -> None:
    """NoRunFinalizedAlarm: missing RunsFinalized for 1.5 schedule intervals pages.

    The finalizer's side (one RunsFinalized per finalized run, none on redelivery) is
    tests/e2e/test_lambda_logging.py.
    """
    alarm = template["Resources"]["NoRunFinalizedAlarm"]["Properties"]
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"] == "BiodataCache"
    assert alarm["MetricName"] == "RunsFinalized"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]
    assert alarm["Statistic"] == "Sum"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert alarm["TreatMissingData"] == "breaching"  # no run, no data: that is the alarm
    assert [referenced_logical_id(a) for a in alarm["AlarmActions"]] == ["AlarmTopic"]

    parameter = template["Parameters"]["ScheduleIntervalMinutes"]
    window = template["Mappings"]["FreshnessWindow"]
    assert sorted(int(v) for v in parameter["AllowedValues"]) == sorted(int(k) for k in window)
    by_parameter = {"Fn::FindInMap": ["FreshnessWindow", {"Ref": "ScheduleIntervalMinutes"}]}
    for key in ("Period", "EvaluationPeriods"):
        assert alarm[key] == {"Fn::FindInMap": [*by_parameter["Fn::FindInMap"], key]}
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]  # every period empty
    for minutes, row in window.items():
        seconds = row["Period"] * row["EvaluationPeriods"]
        wanted = 1.5 * int(minutes) * 60
        # 1.5 intervals, rounded up to at most one period more; CloudWatch periods are
        # whole minutes and an alarm looks back at most 7 days.
        assert wanted <= seconds < wanted + row["Period"], minutes
        assert row["Period"] % 60 == 0 and row["Period"] <= 3600 and seconds <= 7 * 86400
    default_interval = schedule_interval_minutes(parameter_default(template, {"Ref": "ScheduleExpression"}))
    assert parameter["Default"] == default_interval


def test_the_schedule_retries_and_keeps_failed_starts(template: dict[str, Any]) -> None:
    """A failed scheduled start is retried, then kept in a dead-letter queue that pages."""
    dispatcher = template["Resources"]["DispatcherFunction"]["Properties"]
    nightly = dispatcher["Events"]["Nightly"]["Properties"]
    assert nightly["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert referenced_logical_id(nightly["DeadLetterConfig"]["Arn"]) == "DispatcherDeadLetterQueue"
    assert referenced_logical_id(dispatcher["DeadLetterQueue"]["TargetArn"]) == "DispatcherDeadLetterQueue"
    assert dispatcher["EventInvokeConfig"]["MaximumRetryAttempts"] >= 1
    queue = template["Resources"]["DispatcherDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    statements = policy_statements(template, "DispatcherRole")
    assert allowed(statements, "sqs:SendMessage", "DispatcherDeadLetterQueue")
    policy = template["Resources"]["DispatcherDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert _dimension_target(template["Resources"]["DispatcherDeadLetterAlarm"]["Properties"]) == (
        "DispatcherDeadLetterQueue"
    )


def test_every_queue_is_encrypted_at_rest(template: dict[str, Any]) -> None:
    for logical_id, queue in resources_of(template, "AWS::SQS::Queue").items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, logical_id
