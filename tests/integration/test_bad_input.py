"""Bad-input table: wrong inputs across the playbooks, each rejected before any change, the variable named.

One parametrized test over (playbook, extra vars, variable the message must name): types, ranges, formats,
conflicting modes, missing required values, unknown regions and services. Every row runs the playbook as a user
would (``-e`` JSON) against the in-thread AWS emulator (``aws_only``; no lab, no root) and asserts:

- the run fails (rc != 0) and reports no change (PLAY RECAP changed=0);
- the emulator saw no mutating AWS call during the run (``/_lab/calls``);
- no on-prem host was contacted: the host-side playbooks get a temporary inventory whose hosts are at an address
  nothing listens on (127.0.0.1 port 1), so a run that got past the checks shows up as UNREACHABLE;
- the failed task's message (``msg`` / ``argument_errors`` of the result, not the whole output, which also lists
  every option of an argument spec) names the variable.

Rows that the roles do not reject in time today are ``xfail(strict=True)`` with the reason, so they are reported
and turn into a failure (XPASS) once fixed. ``test_good_input_passes_the_checks`` runs each playbook without the
bad value, so a row cannot pass because the base inventory itself is rejected.
"""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest
import yaml
from labtools import ROOT, PlaybookRun, parse_recap, playbook

pytestmark = pytest.mark.integration

# A site name of its own: should a bad input ever get through, what it builds is easy to tell apart.
BASE = {"hybrid_name": "badinput"}
# One JSON result per failed task line ("fatal: [h]: FAILED! => {...}"), whatever ansible.cfg asks for.
ANSIBLE_ENV = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_CALLBACK_FORMAT_PRETTY": "false"}
# Actions that change something in AWS (a request the emulator could not name is "<METHOD> <path>").
_MUTATING_VERBS = (
    "Create Put Delete Update Register Deregister Add Remove Modify Associate Disassociate Start Stop Attach Detach "
    "Send Tag Untag Authorize Revoke Change Replace Reset Set Enable Disable Import Upload Cancel Terminate Rotate "
    "Schedule Run Copy Restore"
)
MUTATING = (*_MUTATING_VERBS.split(), "POST ", "PUT ", "DELETE ", "PATCH ")
NOWHERE = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_connection": "ssh"}  # connection refused
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def row(playbook_name: str, extra_vars: dict, variable: str, case_id: str, broken: str | None = None):
    """One wrong input; ``broken`` says what the role does instead of rejecting it in time (strict xfail)."""
    marks = [pytest.mark.xfail(strict=True, reason=broken)] if broken else []
    return pytest.param(playbook_name, extra_vars, variable, id=case_id, marks=marks)


CASES = [
    # --- network.yml (aws_endpoints, aws_resolver_inbound, aws_s3_private_dns; checked in pre_tasks) ---
    row(
        "network.yml",
        {"hybrid_onprem_cidrs": ["onprem-lan"]},
        "aws_endpoints_allowed_cidrs",
        "network-onprem_cidrs-not-a-cidr",
    ),
    row(
        "network.yml",
        {"aws_endpoints_extra_services": ["no-such-service"]},
        "aws_endpoints_extra_services",
        "network-extra_services-unknown-service",
    ),
    row(
        "network.yml",
        {"hybrid_s3_private_dns_mode": "bogus"},
        "aws_endpoints_s3_private_dns_mode",
        "network-s3_private_dns_mode-bogus",
    ),
    row("network.yml", {"hybrid_network_state": "gone"}, "hybrid_network_state", "network-network_state-gone"),
    row(
        "network.yml",
        {
            "hybrid_network_aws_profile": "network",
            "hybrid_network_aws_role_arn": "arn:aws:iam::222222222222:role/hybrid-onboard-network",
        },
        "hybrid_network_aws_role_arn",
        "network-profile-and-role_arn-both",
    ),
    row("network.yml", {"hybrid_vpc_id": ""}, "aws_endpoints_vpc_id", "network-vpc_id-missing"),
    row(
        "network.yml",
        {"hybrid_subnet_ids": {"a": "subnet-0c0ffee000000000a"}},
        "aws_endpoints_subnet_ids",
        "network-subnet_ids-dict-not-list",
    ),
    row(
        "network.yml",
        {"hybrid_region": "mars-1"},
        "aws_endpoints_region",
        "network-region-mars-1",
    ),
    # --- identity.yml (aws_hybrid_identity) ---
    row(
        "identity.yml",
        {"aws_hybrid_identity_role_name": "arn:aws:iam::123456789012:role/badinput-ssm-hybrid"},
        "aws_hybrid_identity_role_name",
        "identity-role_name-arn",
    ),
    row(
        "identity.yml",
        {"aws_hybrid_identity_cw_agent_log_groups": ["*"]},
        "aws_hybrid_identity_cw_agent_log_groups",
        "identity-cw_agent_log_groups-star",
    ),
    row(
        "identity.yml",
        {"aws_hybrid_identity_cw_agent_iam_user": "perhaps"},
        "aws_hybrid_identity_cw_agent_iam_user",
        "identity-cw_agent_iam_user-not-a-bool",
    ),
    row(
        "identity.yml",
        {
            "aws_hybrid_identity_cw_agent_iam_user": True,
            "aws_hybrid_identity_cw_agent_key_kms_key": "alias/no-such-key",
        },
        "aws_hybrid_identity_cw_agent_key_kms_key",
        "identity-cw_agent_key_kms_key-unknown",
    ),
    # --- activation.yml (ssm_activation) ---
    row(
        "activation.yml",
        {"ssm_activation_registration_limit": 0},
        "ssm_activation_registration_limit",
        "activation-registration_limit-0",
    ),
    row(
        "activation.yml",
        {"ssm_activation_registration_limit": 1001},
        "ssm_activation_registration_limit",
        "activation-registration_limit-1001",
    ),
    row(
        "activation.yml",
        {"ssm_activation_registration_limit": "lots"},
        "ssm_activation_registration_limit",
        "activation-registration_limit-not-an-int",
    ),
    row(
        "activation.yml",
        {"ssm_activation_expiration_days": 31},
        "ssm_activation_expiration_days",
        "activation-expiration_days-31",
    ),
    row(
        "activation.yml",
        {"ssm_activation_iam_role": "arn:aws:iam::123456789012:role/badinput-ssm-hybrid"},
        "ssm_activation_iam_role",
        "activation-iam_role-arn",
    ),
    row(
        "activation.yml",
        {"ssm_activation_rotate_margin_hours": 168},
        "ssm_activation_rotate_margin_hours",
        "activation-rotate_margin_hours-whole-lifetime",
    ),
    row(
        "activation.yml",
        {"ssm_activation_session_manager": True},
        "ssm_activation_advanced_tier_acknowledged",
        "activation-session_manager-without-advanced-tier-ack",
    ),
    row("activation.yml", {"hybrid_region": "mars-1"}, "ssm_activation_region", "activation-region-mars-1"),
    # --- preflight.yml (endpoint_preflight) ---
    row("preflight.yml", {"hybrid_region": "mars-1"}, "endpoint_preflight_region", "preflight-region-mars-1"),
    row(
        "preflight.yml",
        {"hybrid_vpc_cidrs": ["10.0.0.0/8x"]},
        "endpoint_preflight_vpc_cidrs",
        "preflight-vpc_cidrs-not-a-cidr",
    ),
    row(
        "preflight.yml",
        {"endpoint_preflight_clock_warn_offset": 600},
        "endpoint_preflight_clock_warn_offset",
        "preflight-clock_warn_offset-above-max",
    ),
    row(
        "preflight.yml",
        {"endpoint_preflight_disk_min_free_mb": [500]},
        "endpoint_preflight_disk_min_free_mb",
        "preflight-disk_min_free_mb-list-not-dict",
    ),
    row(
        "preflight.yml",
        {"endpoint_preflight_port": 70000},
        "endpoint_preflight_port",
        "preflight-port-70000",
    ),
    # --- ssm_agent.yml (endpoint_preflight, then ssm_agent) ---
    row("ssm_agent.yml", {"hybrid_vpc_id": ""}, "endpoint_preflight_vpc_id", "ssm_agent-vpc_id-missing"),
    row(
        "ssm_agent.yml",
        {"ssm_agent_download_mode": "bogus"},
        "ssm_agent_download_mode",
        "ssm_agent-download_mode-bogus",
    ),
    row(
        "ssm_agent.yml",
        {
            "ssm_agent_verify": "sha256",
            "ssm_agent_version": "3.3.1142.0",
            "ssm_agent_sha256": {"debian_amd64": "abc123"},
        },
        "ssm_agent_sha256",
        "ssm_agent-sha256-wrong-length",
    ),
    row(
        "ssm_agent.yml",
        {"ssm_agent_download_mode": "mirror", "ssm_agent_mirror_url": "http://mirror.example.internal/agents"},
        "ssm_agent_mirror_url",
        "ssm_agent-http-mirror-with-latest",
    ),
    # --- cloudwatch_agent.yml (cloudwatch_agent) ---
    row(
        "cloudwatch_agent.yml",
        {"cloudwatch_agent_install_method": "bogus"},
        "cloudwatch_agent_install_method",
        "cloudwatch_agent-install_method-bogus",
    ),
    row(
        "cloudwatch_agent.yml",
        {"cloudwatch_agent_download_mode": "mirror"},
        "cloudwatch_agent_mirror_url",
        "cloudwatch_agent-download_mode-mirror-without-url",
    ),
    row(
        "cloudwatch_agent.yml",
        {"cloudwatch_agent_download_mode": "mirror",
         "cloudwatch_agent_mirror_url": "HTTP://mirror.example.internal/agents"},
        "cloudwatch_agent_mirror_url",
        "cloudwatch_agent-http-mirror-with-latest",
    ),
    row(
        "cloudwatch_agent.yml",
        {
            "cloudwatch_agent_verify": "sha256",
            "cloudwatch_agent_version": "1.300057.1b1167",
            "cloudwatch_agent_sha256": {"debian/amd64": "abc123"},
        },
        "cloudwatch_agent_sha256",
        "cloudwatch_agent-sha256-wrong-length",
    ),
    row(
        "cloudwatch_agent.yml",
        {
            "cloudwatch_agent_logs": [
                {
                    "file_path": "/var/log/syslog",
                    "log_group_name": "/hybrid-onboard/badinput/syslog",
                    "retention_in_days": 5000,
                }
            ]
        },
        "cloudwatch_agent_logs[0].retention_in_days",
        "cloudwatch_agent-logs-retention-5000",
    ),
    row(
        "cloudwatch_agent.yml",
        {"cloudwatch_agent_install_method": "ssm", "cloudwatch_agent_ssm_max_concurrency": "0"},
        "cloudwatch_agent_ssm_max_concurrency",
        "cloudwatch_agent-ssm_max_concurrency-0",
    ),
    row(
        "cloudwatch_agent.yml",
        {"cloudwatch_agent_metrics_interval": 0},
        "cloudwatch_agent_metrics_interval",
        "cloudwatch_agent-metrics_interval-0",
    ),
    row(
        "cloudwatch_agent.yml",
        {"cloudwatch_agent_credentials": "iam_user"},
        "cloudwatch_agent_iam_user_parameter",
        "cloudwatch_agent-credentials-iam_user-without-the-user",
    ),
    # --- fleet.yml (ssm_fleet) ---
    row(
        "fleet.yml",
        {"ssm_fleet_inventory_schedule": "every day"},
        "ssm_fleet_inventory_schedule",
        "fleet-inventory_schedule-every-day",
    ),
    row(
        "fleet.yml",
        {"ssm_fleet_update_ssm_agent_schedule": "rate(5 minutes)"},
        "ssm_fleet_update_ssm_agent_schedule",
        "fleet-update_ssm_agent_schedule-5-minutes",
    ),
    row("fleet.yml", {"ssm_fleet_max_concurrency": "0"}, "ssm_fleet_max_concurrency", "fleet-max_concurrency-0"),
    row(
        "fleet.yml",
        {"ssm_fleet_sync_member_accounts": ["12345"]},
        "ssm_fleet_sync_member_accounts",
        "fleet-sync_member_accounts-12345",
    ),
    row("fleet.yml", {"ssm_fleet_target_tags": {}}, "ssm_fleet_target_tags", "fleet-target_tags-empty"),
    row(
        "fleet.yml",
        {"ssm_fleet_compliance_severity": "SEVERE"},
        "ssm_fleet_compliance_severity",
        "fleet-compliance_severity-SEVERE",
    ),
    row(
        "fleet.yml",
        {"ssm_fleet_extra_associations": [{"name": "patch-now"}]},
        "ssm_fleet_extra_associations[0]",
        "fleet-extra_associations-without-document_name",
    ),
    row(
        "fleet.yml",
        {"hybrid_region": "mars-1"},
        "ssm_fleet_region",
        "fleet-region-mars-1",
    ),
    # --- offboard.yml (hybrid_offboard) ---
    row(
        "offboard.yml",
        {"hybrid_offboard_deregister": "perhaps"},
        "hybrid_offboard_deregister",
        "offboard-deregister-not-a-bool",
    ),
    row(
        "offboard.yml",
        {"hybrid_offboard_region": "mars-1"},
        "hybrid_offboard_region",
        "offboard-region-mars-1",
    ),
    # --- onprem_dns.yml (onprem_dns_forwarder) ---
    row(
        "onprem_dns.yml",
        {"onprem_dns_forwarder_server": "dnsmasq"},
        "onprem_dns_forwarder_server",
        "onprem_dns-forwarder_server-dnsmasq",
    ),
    # --- every playbook: botocore's retries (playbooks/group_vars/all/aws_retries.yml) ---
    row(
        "identity.yml",
        {"hybrid_aws_max_attempts": "ten"},
        "hybrid_aws_max_attempts",
        "retries-max-attempts-not-a-number",
    ),
    row(
        "activation.yml",
        {"hybrid_aws_retry_mode": "fast"},
        "hybrid_aws_retry_mode",
        "retries-mode-unknown",
    ),
]

AWS_PLAYBOOKS = ["network.yml", "identity.yml", "activation.yml", "fleet.yml"]
HOST_PLAYBOOKS = ["preflight.yml", "ssm_agent.yml", "cloudwatch_agent.yml", "offboard.yml", "onprem_dns.yml"]


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> str:
    """The lab's site settings with on-prem hosts nothing answers for (the lab's own inventory comes and goes)."""
    inv = tmp_path_factory.mktemp("bad-input-inventory")
    shutil.copytree(ROOT / "inventory" / "lab" / "group_vars", inv / "group_vars")
    shutil.copy(ROOT / "inventory" / "lab" / "localhost.yml", inv / "localhost.yml")
    # The agents' GPG key files of the lab exist only while it is up; the checks only need a file there. The lab's
    # SSH key and known_hosts are left out: nothing here may reach into the lab.
    key = tmp_path_factory.mktemp("bad-input-keys") / "agent-signing.gpg"  # outside the inventory directory
    key.write_text("stand-in key: the roles' checks only test that the file exists\n")
    onprem_file = inv / "group_vars" / "onprem.yml"
    onprem_vars = yaml.safe_load(onprem_file.read_text())
    for name in ("ansible_ssh_private_key_file", "ansible_ssh_common_args"):
        onprem_vars.pop(name, None)
    onprem_vars.update(ssm_agent_gpg_key_file=str(key), cloudwatch_agent_gpg_key_file=str(key))
    onprem_file.write_text(yaml.safe_dump(onprem_vars, sort_keys=False))
    groups = {
        "onprem_hosts": {"hosts": {"host1": NOWHERE, "host2": NOWHERE}},
        "onprem_dns": {"hosts": {"dns1": NOWHERE}},
    }
    (inv / "onprem.yml").write_text(yaml.safe_dump({"all": {"children": {"onprem": {"children": groups}}}}))
    return str(inv)


def lab_calls(env: dict[str, str], reset: bool = False) -> dict[str, dict[str, int]]:
    url = env["AWS_ENDPOINT_URL"] + ("/_lab/calls/reset" if reset else "/_lab/calls")
    request = urllib.request.Request(url, method="POST" if reset else "GET")  # noqa: S310 - emulator URL
    with _OPENER.open(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def mutations(calls: dict[str, dict[str, int]]) -> dict[str, int]:
    return {
        f"{svc}:{action}": n
        for svc, actions in calls.items()
        for action, n in actions.items()
        if action.startswith(MUTATING)
    }


def failure_messages(stdout: str) -> list[str]:
    """``msg`` and ``argument_errors`` of every failed task result (``fatal: [...]`` / ``failed: [...]`` lines)."""
    messages = []
    for line in stdout.splitlines():
        if not line.startswith(("fatal: [", "failed: [")) or " => {" not in line:
            continue
        try:
            result = json.loads(line.split(" => ", 1)[1])
        except ValueError:
            continue
        messages += [str(result.get("msg", ""))] + [str(e) for e in result.get("argument_errors", [])]
    return [m for m in messages if m]


def run(env: dict[str, str], inventory: str, name: str, extra_vars: dict, *args: str, check_mode: bool = False):
    """Run the playbook (``args``: more ansible-playbook options); return it with the mutating AWS calls the emulator
    saw meanwhile (``lab_calls(env)`` has them all until the next run)."""
    lab_calls(env, reset=True)
    result = playbook(
        name,
        *args,
        env={**env, **ANSIBLE_ENV},
        inventory=inventory,
        extra_vars={**BASE, **extra_vars},
        check_mode=check_mode,
        timeout=600,
    )
    return result, mutations(lab_calls(env))


def unreachable(result: PlaybookRun) -> list[str]:
    return sorted(h for h, counts in result.recap.items() if counts.get("unreachable", 0))


# --- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("playbook_name", "extra_vars", "variable"), CASES)
def test_bad_input_is_rejected_before_any_change(aws_only, inventory, playbook_name, extra_vars, variable):
    result, changed_in_aws = run(aws_only, inventory, playbook_name, extra_vars)
    messages = failure_messages(result.stdout)
    problems = []
    if result.rc == 0:
        problems.append("the playbook succeeded")
    if result.total_changed:
        problems.append(f"changes reported: {result.recap}")
    if changed_in_aws:
        problems.append(f"mutating AWS calls: {changed_in_aws}")
    if unreachable(result) or "UNREACHABLE" in result.stdout:
        problems.append(f"on-prem hosts contacted before the input was rejected: {unreachable(result)}")
    if not any(variable in m for m in messages):
        problems.append(f"{variable} is not named in the failure messages {messages}")
    output = result.stdout[-3000:] + result.stderr[-1500:]
    assert not problems, "; ".join(problems) + "\n--- output (end) ---\n" + output


# --- the base the rows change one thing of ----------------------------------------------------------


@pytest.mark.parametrize("playbook_name", AWS_PLAYBOOKS + HOST_PLAYBOOKS)
def test_good_input_passes_the_checks(aws_only, inventory, playbook_name):
    """Without the bad value each playbook gets past its checks: AWS-side ones finish in check mode, host-side ones
    go on to contact the (absent) hosts. So a row above fails because of its one wrong input, nothing else."""
    aws_side = playbook_name in AWS_PLAYBOOKS
    result, changed_in_aws = run(aws_only, inventory, playbook_name, {}, check_mode=aws_side)
    output = result.stdout[-3000:] + result.stderr[-1500:]
    assert changed_in_aws == {}, output
    if aws_side:
        assert result.rc == 0, output
    else:
        messages = failure_messages(result.stdout)
        assert messages and all("Failed to connect to the host" in m for m in messages), output
        assert unreachable(result) == sorted(result.recap), output


@pytest.mark.parametrize("limit", ["host1", "onprem_hosts:!host2"])
def test_report_limited_without_localhost_says_so_and_reads_no_host(aws_only, inventory, tmp_path, limit):
    """`report.yml --limit <hosts>` without localhost cannot write a report (its AWS side and files are a localhost
    play): it says so, with the limit to use instead, before reading any host, and writes nothing."""
    result, _out = run(aws_only, inventory, "report.yml", {"hybrid_report_dir": str(tmp_path / "report")},
                       "--limit", limit)
    output = result.stdout[-3000:] + result.stderr[-1500:]
    assert result.rc == 0, output
    assert f"--limit '{limit},localhost'" in result.stdout, output
    assert unreachable(result) == [] and "UNREACHABLE" not in result.stdout, output  # no host was contacted
    assert "localhost" not in result.recap and lab_calls(aws_only) in ({}, None), output  # nor AWS
    assert not (tmp_path / "report").exists(), output


def test_report_limited_with_localhost_goes_on_to_read_the_hosts(aws_only, inventory, tmp_path):
    """The same limit with localhost added passes that check and goes on to read the host (unreachable here: the
    lab's test_fleet_lab checks the report such a run writes)."""
    result, _out = run(aws_only, inventory, "report.yml", {"hybrid_report_dir": str(tmp_path)},
                       "--limit", "host1,localhost")
    output = result.stdout[-3000:] + result.stderr[-1500:]
    assert "No report is written" not in result.stdout, output
    assert unreachable(result) == ["host1"], output


# --- the lab inventory outside the lab --------------------------------------------------------------


@pytest.fixture
def connect_recorder():
    """A TCP listener standing in for an HTTPS proxy: every AWS call a run makes would reach it first."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def accept():
        while True:
            try:
                conn, _peer = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    seen.append(conn.recv(200))
                except OSError:
                    seen.append(b"")

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    finally:
        server.close()


@pytest.mark.parametrize("playbook_name", ["site.yml", *AWS_PLAYBOOKS, "audit.yml"])
def test_the_lab_inventory_refuses_real_aws(tmp_path, connect_recorder, playbook_name):
    """Real-looking credentials and no AWS_ENDPOINT_URL, with ansible.cfg's default inventory (the lab's): the run
    stops at its first task that needs the site's name or region, says why, and sends AWS nothing. Every request the
    run would send to AWS goes through HTTPS_PROXY, a listener here that records any connection."""
    import os
    import subprocess

    proxy, seen = connect_recorder
    inv = tmp_path / "lab"
    shutil.copytree(ROOT / "inventory" / "lab" / "group_vars", inv / "group_vars")
    shutil.copy(ROOT / "inventory" / "lab" / "localhost.yml", inv / "localhost.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", AWS_ACCESS_KEY_ID="AKIA-NOT-A-REAL-KEY",
               AWS_SECRET_ACCESS_KEY="real/looking/secret/key/for/the/test/000", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, HTTPS_PROXY=proxy, HTTP_PROXY=proxy, NO_PROXY="")
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inv),
                             str(ROOT / "playbooks" / playbook_name)],
                            capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=600, check=False)
    output = result.stdout[-3000:] + result.stderr[-1500:]
    assert result.returncode != 0, output
    assert "runs only against the lab's AWS emulator" in result.stdout + result.stderr, output
    assert all(counts.get("changed", 0) == 0 for counts in parse_recap(result.stdout).values()), output
    assert seen == [], f"the run reached for AWS before refusing: {seen}"


@pytest.mark.parametrize(("playbook_name", "extra_vars"), [
    ("ssm_agent.yml", {"ssm_agent_download_mode": "mirror", "ssm_agent_version": "3.3.1142.0",
                       "ssm_agent_mirror_url": "http://mirror.example.internal/agents"}),
    ("ssm_agent.yml", {"ssm_agent_download_mode": "mirror", "ssm_agent_mirror_url": "https://mirror.example.internal"}),
    ("cloudwatch_agent.yml", {"cloudwatch_agent_download_mode": "mirror", "cloudwatch_agent_version": "1.300057.1b1167",
                              "cloudwatch_agent_mirror_url": "http://mirror.example.internal/agents"}),
], ids=["ssm-http-pinned", "ssm-https-latest", "cloudwatch-http-pinned"])
def test_a_mirror_over_http_passes_with_a_pinned_version(aws_only, inventory, playbook_name, extra_vars):
    """The other side of the http-mirror rows above: pinned (or over HTTPS) the mirror passes the checks, and the run
    goes on to contact the (absent) hosts."""
    result, changed_in_aws = run(aws_only, inventory, playbook_name, extra_vars)
    output = result.stdout[-3000:] + result.stderr[-1500:]
    assert changed_in_aws == {}, output
    assert "latest/VERSION is unsigned" not in result.stdout, output
    assert unreachable(result) and unreachable(result) == sorted(h for h in result.recap if h != "localhost"), output
