"""Issue #8 on the lab, after ssm_agent.yml: both install methods bring every host to a running CloudWatch agent whose
CWAgent metrics and {hostname} log streams reach the emulator; reruns change nothing; a config the agent's
translator rejects fails on the host and the previous config keeps running; credentials switch both ways without
leaving a key behind.

Asserted from outside: boto3 on the emulator (CloudWatch, Logs, SSM Run Command), files and systemctl over SSH.
"""

from __future__ import annotations

import configparser
import json

import pytest
from labtools import playbook, stage, wait_until

pytestmark = pytest.mark.integration

GROUP = "/hybrid-onboard/lab/syslog"
CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/hybrid-onboard.json"
COMMON = "/opt/aws/amazon-cloudwatch-agent/etc/common-config.toml"
KEY_PARAMETER = "/hybrid-onboard/lab/cloudwatch-agent-credentials"


def host_metrics(lab, host) -> set[str]:
    pages = lab.client("cloudwatch").get_paginator("list_metrics").paginate(
        Namespace="CWAgent", Dimensions=[{"Name": "host", "Value": host}])
    return {m["MetricName"] for page in pages for m in page["Metrics"]}


def streams(lab) -> set[str]:
    logs = lab.client("logs")
    if not logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]:
        return set()
    return {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]}


def profiles(lab, host, path="/root/.aws/credentials") -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(lab.ssh(host, f"cat {path} 2>/dev/null || true").stdout)
    return parser


def agent_active(lab, host) -> bool:
    return lab.ssh(host, "systemctl is-active amazon-cloudwatch-agent", check=False).stdout.strip() == "active"


def purge_cloudwatch_agent(lab):
    for host in lab.hosts:
        lab.ssh(host, "dpkg --purge amazon-cloudwatch-agent >/dev/null 2>&1; rm -rf /opt/aws "
                      "/var/cache/hybrid-onboard/cloudwatch-agent", check=False)


@pytest.fixture(scope="module")
def onboarded(lab, request):
    """Every host Online in SSM (the phases before), no CloudWatch agent yet. Handed over with the agent installed
    by the last test's SSM method (cloudwatch_agent.yml with its defaults is not vouched for)."""
    phases = ["network.yml", "identity.yml", "activation.yml", "onprem_dns.yml", "ssm_agent.yml"]
    with stage(lab, request, needs=phases, leaves=phases):
        purge_cloudwatch_agent(lab)
        yield


def test_package_method_brings_metrics_and_logs_and_rerun_changes_nothing(lab, onboarded):
    result = playbook("cloudwatch_agent.yml")
    assert result.rc == 0, result.stdout[-5000:]
    wanted = {"cpu_usage_idle", "mem_used_percent", "disk_used_percent", "swap_used_percent"}
    for host in lab.hosts:
        assert agent_active(lab, host)
        wait_until(f"CWAgent metrics of {host}", lambda h=host: wanted <= host_metrics(lab, h), timeout=90)
        common = lab.ssh(host, f"cat {COMMON}").stdout
        assert 'shared_credential_profile = "default"' in common
    assert set(lab.hosts) <= streams(lab)
    group = lab.client("logs").describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]
    assert group["retentionInDays"] == 30
    again = playbook("cloudwatch_agent.yml")
    assert again.rc == 0 and again.total_changed == 0, again.stdout[-4000:]
    check = playbook("cloudwatch_agent.yml", check_mode=True)
    assert check.rc == 0 and check.total_changed == 0, check.stdout[-4000:]


@pytest.mark.parametrize("bad", [
    {"cloudwatch_agent_metrics": {"cpu": {"measurement": ["cpu_usage_bogus"], "totalcpu": True}}},
    {"cloudwatch_agent_logs": [{"file_path": "/var/log/syslog", "log_group_name": GROUP,
                                "log_stream_name": "{hostname}", "retention_in_days": 42}]},
], ids=["unknown-measurement", "bad-retention"])
def test_invalid_config_is_rejected_on_the_host_and_the_old_one_keeps_running(lab, onboarded, bad):
    host = sorted(lab.hosts)[0]
    before = lab.ssh(host, f"sha256sum {CONFIG}").stdout
    result = playbook("cloudwatch_agent.yml", extra_vars=bad)
    assert result.rc != 0
    assert "the new content failed validation" in result.stdout, result.stdout[-4000:]
    assert ("cpu_usage_bogus" if "cloudwatch_agent_metrics" in bad else "retention_in_days") in result.stdout
    for name in lab.hosts:
        assert result.recap[name]["failed"] == 1 and result.recap[name]["changed"] == 0
    assert lab.ssh(host, f"sha256sum {CONFIG}").stdout == before
    # The rejected content was checked in a temporary file beside the config; none is left behind.
    assert lab.ssh(host, f"ls -A {CONFIG.rsplit('/', 1)[0]} | grep -c '^\\.' || true").stdout.strip() == "0"
    assert agent_active(lab, host)
    status = json.loads(lab.ssh(host, "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a status")
                        .stdout)
    assert status["status"] == "running"


def test_credentials_switch_both_ways_and_leave_no_key_behind(lab, onboarded):
    identity = playbook("identity.yml", extra_vars={"aws_hybrid_identity_cw_agent_iam_user": True})
    assert identity.rc == 0, identity.stdout[-3000:]
    key = json.loads(lab.client("ssm").get_parameter(Name=KEY_PARAMETER, WithDecryption=True)["Parameter"]["Value"])
    to_user = playbook("cloudwatch_agent.yml", extra_vars={"cloudwatch_agent_credentials": "iam_user"})
    assert to_user.rc == 0, to_user.stdout[-4000:]
    assert key["aws_secret_access_key"] not in to_user.stdout
    for host in lab.hosts:
        creds = profiles(lab, host)
        assert creds.get("AmazonCloudWatchAgent", "aws_access_key_id") == key["aws_access_key_id"]
        assert creds.has_section("default")  # the SSM agent's profile is untouched
        assert lab.ssh(host, "stat -c '%a %U' /root/.aws/credentials").stdout.split() == ["600", "root"]
        assert profiles(lab, host, "/root/.aws/config").get("profile AmazonCloudWatchAgent", "region")
        assert 'shared_credential_profile = "AmazonCloudWatchAgent"' in lab.ssh(host, f"cat {COMMON}").stdout
        assert agent_active(lab, host)
    assert playbook("cloudwatch_agent.yml", extra_vars={"cloudwatch_agent_credentials": "iam_user"}).total_changed == 0
    back = playbook("cloudwatch_agent.yml")
    assert back.rc == 0, back.stdout[-4000:]
    for host in lab.hosts:
        creds = profiles(lab, host)
        assert not creds.has_section("AmazonCloudWatchAgent") and creds.has_section("default")
        assert key["aws_access_key_id"] not in lab.ssh(host, "cat /root/.aws/credentials /root/.aws/config").stdout
        assert 'shared_credential_profile = "default"' in lab.ssh(host, f"cat {COMMON}").stdout
        assert agent_active(lab, host)


def test_ssm_method_installs_every_host_with_one_run_command(lab, onboarded):
    purge_cloudwatch_agent(lab)
    ssm = lab.client("ssm")
    before = {c["CommandId"] for c in ssm.list_commands()["Commands"]}
    result = playbook("cloudwatch_agent.yml", extra_vars={"cloudwatch_agent_install_method": "ssm"})
    assert result.rc == 0, result.stdout[-5000:]
    new = [c for c in ssm.list_commands()["Commands"] if c["CommandId"] not in before]
    assert [c["DocumentName"] for c in new] == ["AWS-ConfigureAWSPackage"]
    assert len(new[0]["InstanceIds"]) == len(lab.hosts)
    for host in lab.hosts:
        assert agent_active(lab, host)
        wait_until(f"CWAgent metrics of {host}", lambda h=host: "mem_used_percent" in host_metrics(lab, h),
                   timeout=90)
    again = playbook("cloudwatch_agent.yml", extra_vars={"cloudwatch_agent_install_method": "ssm"})
    assert again.rc == 0 and again.total_changed == 0, again.stdout[-4000:]
    assert len(ssm.list_commands()["Commands"]) == len(before) + 1
