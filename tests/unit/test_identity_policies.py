"""The aws_hybrid_identity policy templates, rendered with sample variables, against the least-privilege rules:
no *FullAccess, no Action * on Resource *, every statement scoped to the ARNs the site configured (the only
Resource * is PutMetricData, which has no resource-level permissions, held to the CWAgent namespace)."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "aws_hybrid_identity"
ACCOUNT = "111122223333"
REGION = "eu-central-1"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SAMPLE = {
    "aws_hybrid_identity_name": "dc1",
    "aws_hybrid_identity_region": REGION,
    "aws_hybrid_identity_output_bucket": "dc1-ssm-output",
    "aws_hybrid_identity_output_prefix": "dc1/",
    "aws_hybrid_identity_ssm_log_groups": ["/hybrid-onboard/dc1/ssm"],
    "aws_hybrid_identity_kms_key_arn": KEY_ARN,
    "aws_hybrid_identity_cw_agent_log_groups": ["/hybrid-onboard/dc1/*", "/var/log/app"],
    "aws_hybrid_identity_cw_agent_config_parameter_path": "/hybrid-onboard/dc1/cloudwatch-agent",
    "__aws_hybrid_identity_account": ACCOUNT,
    "__aws_hybrid_identity_partition": "aws",
}


def render(name: str, **overrides) -> dict:
    # JSON, not HTML: autoescaping would corrupt the documents (Ansible renders templates without it too).
    env = jinja2.Environment(  # noqa: S701
        loader=jinja2.FileSystemLoader(str(ROLE / "templates")), undefined=jinja2.StrictUndefined
    )
    env.filters["to_json"] = json.dumps
    return json.loads(env.get_template(name).render(**{**SAMPLE, **overrides}))


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


CONFIGURED = [
    "arn:aws:s3:::dc1-ssm-output/dc1/",
    "arn:aws:s3:::dc1-ssm-output",
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/hybrid-onboard/dc1/",
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/var/log/app",
    f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/hybrid-onboard/dc1/cloudwatch-agent",
    KEY_ARN,
]


def check_least_privilege(policy: dict) -> None:
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        resources = as_list(statement["Resource"])
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in actions:
            assert "*" not in action, f"wildcard action {action} in {statement['Sid']}"
            assert "FullAccess" not in action
        for resource in resources:
            if resource == "*":
                # Only PutMetricData, which cannot be scoped by resource, and only into CWAgent.
                assert actions == ["cloudwatch:PutMetricData"], statement
                assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CWAgent"}}
                continue
            assert any(resource.startswith(prefix) for prefix in CONFIGURED), f"{resource} is not a configured ARN"
            assert resource.count("*") <= 2 and not resource.endswith(":*:*")


@pytest.mark.parametrize("template", ["ssm_output_policy.json.j2", "cw_agent_policy.json.j2"])
def test_policies_are_least_privilege(template):
    policy = render(template)
    assert policy["Statement"], "the sample configures every resource"
    check_least_privilege(policy)


def test_output_policy_scopes_each_resource():
    statements = {s["Sid"]: s for s in render("ssm_output_policy.json.j2")["Statement"]}
    assert statements["CommandOutputObjects"]["Resource"] == ["arn:aws:s3:::dc1-ssm-output/dc1/*"]
    assert statements["CommandOutputLogs"]["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/hybrid-onboard/dc1/ssm",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/hybrid-onboard/dc1/ssm:log-stream:*",
    ]
    assert statements["SessionAndSecureStringKey"] == {
        "Sid": "SessionAndSecureStringKey", "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY_ARN],
    }


def test_unconfigured_parts_are_left_out():
    policy = render("ssm_output_policy.json.j2", aws_hybrid_identity_output_bucket="",
                    aws_hybrid_identity_ssm_log_groups=[], aws_hybrid_identity_kms_key_arn="")
    assert policy["Statement"] == []  # the role then removes the inline policy instead of writing an empty one
    only_logs = render("ssm_output_policy.json.j2", aws_hybrid_identity_output_bucket="",
                       aws_hybrid_identity_kms_key_arn="")
    assert [s["Sid"] for s in only_logs["Statement"]] == ["CommandOutputLogs"]


def test_cw_agent_policy_covers_what_the_agent_does():
    statements = {s["Sid"]: s for s in render("cw_agent_policy.json.j2")["Statement"]}
    assert set(statements) == {"MetricsIntoCWAgentNamespace", "AgentLogGroups", "AgentConfigurationParameter"}
    needed = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert needed <= set(statements["AgentLogGroups"]["Action"])
    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/hybrid-onboard/dc1/cloudwatch-agent"
    assert statements["AgentConfigurationParameter"]["Resource"] == [parameter, parameter + "/*"]


def test_trust_policy_is_ssm_of_this_account_only():
    trust = render("trust_policy.json.j2")
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "ssm.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:ssm:{REGION}:{ACCOUNT}:*"}


def test_role_attaches_only_the_core_managed_policy():
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    (role_task,) = [t for t in tasks if "amazon.aws.iam_role" in t]
    managed = role_task["amazon.aws.iam_role"]["managed_policies"]
    assert [m.rsplit("/", 1)[-1] for m in managed] == ["AmazonSSMManagedInstanceCore"]
    assert role_task["amazon.aws.iam_role"]["purge_policies"] is True
    # The role's own files (its molecule tests legitimately name what they check is absent).
    everything = "".join(p.read_text() for p in ROLE.rglob("*")
                         if p.is_file() and p.suffix in {".yml", ".j2"} and "molecule" not in p.parts)
    assert "FullAccess" not in everything.replace("*FullAccess", "")
