"""The aws_audit role's default metric filter patterns against sample CloudTrail events, and its templates.

moto's CloudWatch Logs cannot judge these patterns: its FilterLogEvents treats every pattern that starts with
``{`` as "unsupported" and matches all events, and its metric filters never evaluate anything. So the patterns
are evaluated here by a small evaluator of the JSON filter subset they use, written from the CloudWatch Logs
filter pattern syntax: ``{ <expr> }`` with ``$.a.b`` selectors, ``=`` / ``!=`` against a quoted string
(``*`` matches any run of characters) or a bare number/word, ``&&``, ``||`` and parentheses. It refuses what it
does not know (other operators, array selectors, regex, ``&&`` and ``||`` mixed without parentheses), so a pattern
outside the subset fails the test instead of being judged wrongly. A property missing from the event makes
its comparison false, ``!=`` included (an assumption; no default pattern uses ``!=``).

Each default filter has events that must match and near misses that must not: the same call from another
service, a read of the same role, another role whose name starts the same, an error code that is not a denial.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "aws_audit"
AGENT_SRC = ROOT / "tests" / "lab" / "agents" / "src"
HYBRID_ROLE = "lab-ssm-hybrid"
ACCOUNT = "111122223333"
REGION = "eu-west-1"


# --- the evaluator -----------------------------------------------------------------------------------------


class PatternError(ValueError):
    """The pattern is not in the supported JSON filter subset (or not valid at all)."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lpar>\()|(?P<rpar>\))|(?P<and>&&)|(?P<or>\|\|)|(?P<op>!=|=)
      | (?P<selector>\$(?:\.[A-Za-z_][A-Za-z0-9_-]*)+)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<bare>[A-Za-z0-9_.+-]+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise PatternError(f"unsupported syntax at {text[pos : pos + 20]!r}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _wildcard(value: str) -> re.Pattern:
    return re.compile("^" + ".*".join(re.escape(part) for part in value.split("*")) + "$", re.DOTALL)


class _Parser:
    def __init__(self, tokens):
        self.tokens, self.pos = tokens, 0

    def peek(self):
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind):
        if self.peek() != kind:
            found = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "end of pattern"
            raise PatternError(f"expected {kind}, found {found!r}")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def expr(self):
        terms, joiner = [self.term()], None
        while self.peek() in ("and", "or"):
            kind = self.peek()
            if joiner and kind != joiner:
                raise PatternError("&& and || mixed without parentheses: the evaluation order would be a guess")
            joiner = kind
            self.take(kind)
            terms.append(self.term())
        if joiner is None:
            return terms[0]
        combine = all if joiner == "and" else any
        return lambda event: combine(term(event) for term in terms)

    def term(self):
        if self.peek() == "lpar":
            self.take("lpar")
            inner = self.expr()
            self.take("rpar")
            return inner
        path = self.take("selector")[2:].split(".")
        op = self.take("op")
        if self.peek() == "string":
            regex = _wildcard(json.loads(self.take("string")))

            def equal(value):
                return isinstance(value, str) and bool(regex.match(value))
        else:
            literal = self.take("bare")

            def equal(value):
                if isinstance(value, bool) or value is None:
                    return str(value).lower() == literal
                return str(value) == literal

        def compare(event):
            value = event
            for key in path:
                if not isinstance(value, dict) or key not in value:
                    return False
                value = value[key]
            return equal(value) if op == "=" else not equal(value)

        return compare


def compile_pattern(pattern: str):
    """A predicate over one JSON log event (a dict) for a JSON filter pattern of the supported subset."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise PatternError("a JSON filter pattern is enclosed in { }")
    parser = _Parser(_tokens(text[1:-1]))
    predicate = parser.expr()
    if parser.peek() is not None:
        raise PatternError(f"unexpected {parser.tokens[parser.pos][1]!r} after a complete expression")
    return predicate


def matches(pattern: str, event: dict) -> bool:
    return compile_pattern(pattern)(event)


# --- the role's data -----------------------------------------------------------------------------------------


def _defaults() -> dict:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def _render(text: str, **variables) -> str:
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(**variables)  # noqa: S701


def default_filters() -> dict[str, str]:
    """name -> pattern, as the role renders them for the lab's hybrid role."""
    return {
        item["name"]: _render(item["pattern"], aws_audit_hybrid_role_name=HYBRID_ROLE).strip()
        for item in _defaults()["aws_audit_metric_filters"]
    }


def event(source: str, call: str, error: str | None = None, **request) -> dict:
    """A CloudTrail record as CloudTrail delivers it to CloudWatch Logs (one JSON event per log event)."""
    record = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "accountId": ACCOUNT,
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/x",
        },
        "eventTime": "2026-11-22T10:00:00Z",
        "eventSource": source,
        "eventName": call,
        "awsRegion": REGION,
        "sourceIPAddress": "192.0.2.10",
        "requestParameters": request or None,
        "responseElements": None,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = "User is not authorized to perform this operation"
    return record


SSM, IAM = "ssm.amazonaws.com", "iam.amazonaws.com"
ROLE_CHANGES = [
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "UpdateRoleDescription",
    "DeleteRole",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "AddRoleToInstanceProfile",
    "TagRole",
    "UntagRole",
]

# name -> (events that must match, near misses that must not)
SAMPLES = {
    "DeregisterManagedInstance": (
        [event(SSM, "DeregisterManagedInstance", instanceId="mi-0123456789abcdef0")],
        [
            event(SSM, "DescribeInstanceInformation"),
            event(SSM, "DeregisterTargetFromMaintenanceWindow", windowId="mw-0c50858d01EXAMPLE"),
            event("ec2.amazonaws.com", "DeregisterImage", imageId="ami-0123456789abcdef0"),
        ],
    ),
    "DeleteActivation": (
        [event(SSM, "DeleteActivation", activationId="e488f2f6-0000-4a5c-b4fe-000000000000")],
        [event(SSM, "DescribeActivations"), event(SSM, "CreateActivation", iamRole=HYBRID_ROLE)],
    ),
    "CreateActivation": (
        [event(SSM, "CreateActivation", iamRole=HYBRID_ROLE, registrationLimit=100)],
        [event(SSM, "DeleteActivation", activationId="e488f2f6"), event(SSM, "CreateAssociation", name="x")],
    ),
    "UpdateServiceSetting": (
        [
            event(
                SSM, "UpdateServiceSetting", settingId="/ssm/managed-instance/activation-tier", settingValue="advanced"
            )
        ],
        [
            event(SSM, "GetServiceSetting", settingId="/ssm/managed-instance/activation-tier"),
            event(SSM, "ResetServiceSetting", settingId="/ssm/managed-instance/activation-tier"),
        ],
    ),
    "DeleteAssociation": (
        [event(SSM, "DeleteAssociation", associationId="fa94c678-85c6-4d40-926b-7c791EXAMPLE")],
        [event(SSM, "UpdateAssociation", associationId="fa94c678"), event(SSM, "DeleteDocument", name="doc")],
    ),
    "HybridRoleChanged": (
        [event(IAM, name, roleName=HYBRID_ROLE) for name in ROLE_CHANGES],
        [
            event(IAM, "GetRole", roleName=HYBRID_ROLE),
            event(IAM, "ListAttachedRolePolicies", roleName=HYBRID_ROLE),
            event(IAM, "PutRolePolicy", roleName="lab-other-role", policyName="p"),
            event(IAM, "PutRolePolicy", roleName=HYBRID_ROLE + "-2", policyName="p"),
            event(IAM, "AttachUserPolicy", userName=HYBRID_ROLE),
            event(SSM, "UpdateRole", roleName=HYBRID_ROLE),
        ],
    ),
    "AccessDenied": (
        [
            event("s3.amazonaws.com", "GetObject", "AccessDenied", bucketName="b"),
            event(SSM, "DescribeInstanceInformation", "AccessDeniedException"),
            event("ec2.amazonaws.com", "DescribeInstances", "Client.UnauthorizedOperation"),
            event("ec2.amazonaws.com", "RunInstances", "UnauthorizedOperation"),
        ],
        [
            event(SSM, "DescribeInstanceInformation"),
            event(SSM, "GetParameter", "ThrottlingException", name="/x"),
            event(SSM, "GetParameter", "ParameterNotFound", name="/x"),
            event("ec2.amazonaws.com", "DescribeInstances", "Client.UnauthorizedOperationX"),
        ],
    ),
}


# --- the evaluator judges, it does not nod everything through -----------------------------------------------


@pytest.mark.parametrize(
    "pattern, record, expected",
    [
        ('{ $.a = "x" }', {"a": "x"}, True),
        ('{ $.a = "x" }', {"a": "xy"}, False),
        ('{ $.a = "x*" }', {"a": "xy"}, True),
        ('{ $.a = "*y" }', {"a": "xy"}, True),
        ('{ $.a = "*y" }', {"a": "yx"}, False),
        ('{ $.a != "x" }', {"a": "y"}, True),
        ('{ $.a != "x" }', {"a": "x"}, False),
        ('{ $.a != "x" }', {}, False),
        ('{ $.a.b = "x" }', {"a": {"b": "x"}}, True),
        ('{ $.a.b = "x" }', {"a": "x"}, False),
        ("{ $.n = 5 }", {"n": 5}, True),
        ('{ ($.a = "x") && ($.b = "y") }', {"a": "x", "b": "z"}, False),
        ('{ ($.a = "x") || ($.b = "y") }', {"a": "q", "b": "y"}, True),
        ('{ ($.a = "x") && (($.b = "y") || ($.b = "z")) }', {"a": "x", "b": "z"}, True),
    ],
)
def test_evaluator(pattern, record, expected):
    assert matches(pattern, record) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        '$.a = "x"',  # not enclosed in { }
        '{ ($.a = "x") }}',
        '{ ($.a = "x" }',
        '{ $.a = "x" && $.b = "y" || $.c = "z" }',  # && and || mixed without parentheses
        "{ $.a > 5 }",  # numeric comparisons are outside the subset
        '{ $.a[0] = "x" }',
        "{ $.a = %regex% }",
        '{ $.a = "x" $.b = "y" }',
        "ERROR",  # a term pattern, not JSON
    ],
)
def test_evaluator_refuses_what_it_does_not_know(pattern):
    with pytest.raises(PatternError):
        compile_pattern(pattern)


# --- the default patterns ------------------------------------------------------------------------------------


def test_every_default_filter_has_samples():
    assert set(default_filters()) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_default_pattern_matches_its_events(name):
    pattern = default_filters()[name]
    hits, misses = SAMPLES[name]
    for record in hits:
        assert matches(pattern, record), f"{name} should match {record['eventSource']} {record['eventName']}"
    for record in misses:
        assert not matches(pattern, record), (
            f"{name} must not match {record['eventSource']} {record['eventName']} {record.get('errorCode')} "
            f"{record['requestParameters']}"
        )


def test_each_sample_event_fires_only_its_own_filters():
    """A matching event of one filter raises no other metric, except a denial, which is about errorCode only."""
    filters = default_filters()
    for name, (hits, _misses) in SAMPLES.items():
        for record in hits:
            fired = {other for other, pattern in filters.items() if matches(pattern, record)}
            expected = {name} | ({"AccessDenied"} if "errorCode" in record else set())
            assert fired == expected, f"{record['eventName']}: {sorted(fired)}"


def test_default_patterns_are_within_cloudwatch_limits():
    for name, pattern in default_filters().items():
        assert 1 <= len(pattern) <= 1024, name  # PutMetricFilter's filterPattern limit
        assert "{{" not in pattern and "}}" not in pattern, f"{name} still holds a template: {pattern}"
        compile_pattern(pattern)


def test_filter_names_are_not_prefixes_of_each_other():
    # amazon.aws.cloudwatchlogs_log_group_metric_filter finds a filter by name prefix (see tasks/preflight.yml).
    names = list(default_filters())
    assert [a for a in names for b in names if a != b and b.startswith(a)] == []


def test_argument_specs_default_is_the_defaults_list():
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    spec_default = specs["argument_specs"]["main"]["options"]["aws_audit_metric_filters"]["default"]

    def normalized(items):
        return [{k: " ".join(str(v).split()) for k, v in item.items()} for item in items]

    assert normalized(spec_default) == normalized(_defaults()["aws_audit_metric_filters"])


def test_hybrid_role_and_node_log_groups_default_to_the_identity_phases():
    identity = yaml.safe_load((ROOT / "roles" / "aws_hybrid_identity" / "defaults" / "main.yml").read_text())

    def identity_default(name):
        return _render(json.dumps(identity[name]), aws_hybrid_identity_name="dc1")

    assert _render(_defaults()["aws_audit_hybrid_role_name"], aws_audit_name="dc1") == _render(
        identity["aws_hybrid_identity_role_name"], aws_hybrid_identity_name="dc1")
    node_log_groups = json.loads(_render(json.dumps(_defaults()["aws_audit_node_log_groups"]), aws_audit_name="dc1"))
    assert sorted(node_log_groups) == sorted(json.loads(identity_default("aws_hybrid_identity_cw_agent_log_groups"))
                                             + json.loads(identity_default("aws_hybrid_identity_ssm_log_groups")))


def test_the_playbooks_audit_what_the_identity_phase_made():
    """playbooks/group_vars/all/roles.yml: the identity role's variables when the inventory sets them."""
    mapped = yaml.safe_load((ROOT / "playbooks" / "group_vars" / "all" / "roles.yml").read_text())
    role_name = mapped["aws_audit_hybrid_role_name"]
    assert _render(role_name, hybrid_name="dc1") == "dc1-ssm-hybrid"
    assert _render(role_name, hybrid_name="dc1", aws_hybrid_identity_role_name="custom-nodes") == "custom-nodes"
    log_groups = mapped["aws_audit_node_log_groups"]
    assert _render(log_groups, hybrid_name="dc1") == "['/hybrid-onboard/dc1/*', '/hybrid-onboard/dc1/ssm']"
    assert _render(log_groups, hybrid_name="dc1", aws_hybrid_identity_cw_agent_log_groups=["/app/*"],
                   aws_hybrid_identity_ssm_log_groups=[]) == "['/app/*']"


# --- the policy templates -----------------------------------------------------------------------------------

TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/hybrid-onboard-audit"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/hybrid-onboard-audit/cloudtrail"


def render_template(name: str, **overrides) -> dict:
    variables = {
        "__aws_audit_account": ACCOUNT,
        "__aws_audit_partition": "aws",
        "__aws_audit_bucket": "audit-bucket",
        "__aws_audit_trail_arn": TRAIL_ARN,
        "__aws_audit_log_group_arn": GROUP_ARN,
        "aws_audit_s3_key_prefix": "",
        **overrides,
    }
    env = jinja2.Environment(  # noqa: S701 - JSON, not HTML
        loader=jinja2.FileSystemLoader(str(ROLE / "templates")), undefined=jinja2.StrictUndefined
    )
    env.filters["to_json"] = json.dumps
    return json.loads(env.get_template(name).render(**variables))


def test_cloudtrail_logs_policy_reaches_only_the_trail_streams_of_its_log_group():
    policy = render_template("cloudtrail_logs_policy.json.j2")
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == [f"{GROUP_ARN}:log-stream:{ACCOUNT}_CloudTrail_*"]


@pytest.mark.parametrize("prefix, key", [("", "AWSLogs"), ("audit/trail", "audit/trail/AWSLogs")])
def test_bucket_policy_lets_only_this_trail_write_its_prefix(prefix, key):
    policy = render_template("bucket_policy.json.j2", aws_audit_s3_key_prefix=prefix)
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in allows} == {"cloudtrail.amazonaws.com"}
    assert all(s["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL_ARN for s in allows)
    write = next(s for s in allows if s["Action"] == "s3:PutObject")
    assert write["Resource"] == f"arn:aws:s3:::audit-bucket/{key}/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    deny = next(s for s in policy["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- the host alarms: exactly the series the CloudWatch agent sends ---------------------------------------------


def agent_series(hosts: list[str]) -> dict[str, list[dict]]:
    """ListMetrics answers (metric name -> Metrics) for what the lab's CloudWatch agent stand-in sends with the
    cloudwatch_agent role's default config from each of ``hosts`` (read from this machine's /proc)."""
    if str(AGENT_SRC) not in sys.path:
        sys.path.insert(0, str(AGENT_SRC))
    import cw_agent
    from plugin_loader import load_plugin

    config_filter = load_plugin("filter", "cw_agent_config")
    config = config_filter.cw_agent_config(config_filter.DEFAULT_METRICS)
    listed: dict[str, list[dict]] = {}
    for host in hosts:
        pipeline = cw_agent.MetricsPipeline(config, host)
        for plugin, spec in pipeline.plugins.items():
            for datum in pipeline.collect(plugin, spec):
                metric = {
                    "Namespace": "CWAgent",
                    "MetricName": datum["MetricName"],
                    "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(datum["Dimensions"].items())],
                }
                if metric not in listed.setdefault(datum["MetricName"], []):
                    listed[datum["MetricName"]].append(metric)
    return listed


def plan_host_alarms(listed: dict[str, list[dict]], hosts: list[str], paths: list[str] | None = None) -> dict:
    """tasks/preflight.yml's 'Work out the host alarms' for ListMetrics answers ``listed``."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    kinds = ["cpu", "mem"] + (["disk"] if paths is None or paths else [])
    results = [
        {
            "item": kind,
            "stdout": json.dumps({"Metrics": listed.get(role_vars["_aws_audit_host_metrics"][kind]["metric"], [])}),
        }
        for kind in kinds
    ]
    variables = {
        **_defaults(),
        **role_vars,
        "aws_audit_name": "dc1",
        "aws_audit_alarm_hosts": hosts,
        "aws_audit_host_alarm_disk_paths": ["/"] if paths is None else paths,
        "__aws_audit_listed": {"results": results},
    }
    templar = Templar(loader=DataLoader(), variables=variables)
    text = (ROLE / "templates" / "host_alarms.json.j2").read_text()
    return json.loads(templar.template(trust_as_template(text)))


def test_host_alarms_watch_the_series_the_agent_sends():
    listed = agent_series(["web1", "web2"])
    plan = plan_host_alarms(listed, ["web1", "web2"])
    assert plan["problems"] == []
    by_name = {alarm["name"]: alarm for alarm in plan["alarms"]}
    assert sorted(by_name) == sorted(
        f"hybrid-onboard-audit-dc1-host-{host}-{kind}" for host in ("web1", "web2") for kind in ("cpu", "mem", "disk:/")
    )
    for alarm in plan["alarms"]:
        sent = [{d["Name"]: d["Value"] for d in metric["Dimensions"]} for metric in listed[alarm["metric"]]]
        assert alarm["dimensions"] in sent, f"{alarm['name']} watches a series the agent does not send"
    cpu = by_name["hybrid-onboard-audit-dc1-host-web1-cpu"]
    assert (cpu["metric"], cpu["dimensions"]) == ("cpu_usage_idle", {"cpu": "cpu-total", "host": "web1"})
    assert (cpu["comparison"], cpu["threshold"]) == ("LessThanThreshold", 10.0)  # busy above 90 %
    mem = by_name["hybrid-onboard-audit-dc1-host-web2-mem"]
    assert (mem["metric"], mem["dimensions"], mem["threshold"]) == ("mem_used_percent", {"host": "web2"}, 90.0)
    disk = by_name["hybrid-onboard-audit-dc1-host-web1-disk:/"]
    assert disk["metric"] == "disk_used_percent"
    assert sorted(disk["dimensions"]) == ["device", "fstype", "host", "path"]
    assert (disk["dimensions"]["host"], disk["dimensions"]["path"], disk["threshold"]) == ("web1", "/", 85.0)


def test_a_host_without_metrics_is_a_problem_not_a_silent_alarm():
    plan = plan_host_alarms(agent_series(["web1"]), ["web1", "Web1"])
    assert [a["host"] for a in plan["alarms"]] == ["web1", "web1", "web1"]
    assert len(plan["problems"]) == 3 and all(p.startswith("Web1 has no ") for p in plan["problems"])


def test_two_series_for_one_disk_are_a_problem():
    listed = agent_series(["web1"])
    root = next(m for m in listed["disk_used_percent"] if {"Name": "path", "Value": "/"} in m["Dimensions"])
    moved = {
        **root,
        "Dimensions": [d if d["Name"] != "device" else {"Name": "device", "Value": "sdz9"} for d in root["Dimensions"]],
    }
    listed["disk_used_percent"].append(moved)
    plan = plan_host_alarms(listed, ["web1"])
    assert [a["name"] for a in plan["alarms"]] == [
        "hybrid-onboard-audit-dc1-host-web1-cpu",
        "hybrid-onboard-audit-dc1-host-web1-mem",
    ]
    assert len(plan["problems"]) == 1
    assert plan["problems"][0].startswith("web1 has 2 disk_used_percent series")


def test_no_disk_paths_no_disk_alarms():
    plan = plan_host_alarms(agent_series(["web1"]), ["web1"], paths=[])
    assert [a["name"].rsplit("-", 1)[1] for a in plan["alarms"]] == ["cpu", "mem"]
    assert plan["problems"] == []
