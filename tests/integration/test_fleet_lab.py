"""Issue #9 on the lab, after the onboarding phases: fleet.yml's associations really run on the hosts (inventory of
each host via the stand-in agent, the sync's objects in the central bucket, AWS Config recording), the report
(json/md/html) says what a person would check, and offboard.yml takes one host out while the others stay Online.

Asserted from outside: boto3 on the emulator, files / packages / systemctl over SSH, the report files.
"""

from __future__ import annotations

import json

import labconst as C
import pytest
from labtools import ROOT, playbook, run, stage, wait_until

pytestmark = pytest.mark.integration

BUCKET = "lab-hybrid-onboard-inventory"
ASSOCIATIONS = {"lab-update-ssm-agent": "AWS-UpdateSSMAgent", "lab-update-cloudwatch-agent": "AWS-ConfigureAWSPackage",
                "lab-software-inventory": "AWS-GatherSoftwareInventory"}


@pytest.fixture(scope="module")
def onboarded(lab, request):
    """Every host Online with both agents (the phases before fleet.yml). The last test offboards a host: the lab
    is handed over changed (the next stage brings it up afresh)."""
    with stage(lab, request, needs=["network.yml", "identity.yml", "activation.yml", "onprem_dns.yml",
                                    "ssm_agent.yml", "cloudwatch_agent.yml"]):
        yield


def test_fleet_associations_run_on_the_hosts_and_sync_lands_in_the_bucket(lab, onboarded):
    # Four steps: check mode first reports the changes and makes none ...
    first_check = playbook("fleet.yml", check_mode=True)
    assert first_check.rc == 0 and first_check.total_changed > 0, first_check.stdout[-5000:]
    ssm = lab.client("ssm")
    assert not [a for a in ssm.list_associations()["Associations"] if a.get("AssociationName") in ASSOCIATIONS]
    assert BUCKET not in {b["Name"] for b in lab.client("s3").list_buckets()["Buckets"]}
    assert not ssm.list_resource_data_sync()["ResourceDataSyncItems"]
    assert not lab.client("config").describe_configuration_recorders()["ConfigurationRecorders"]
    # ... then the real run.
    result = playbook("fleet.yml")
    assert result.rc == 0, result.stdout[-5000:]
    found = {a.get("AssociationName"): a for a in ssm.list_associations()["Associations"]}
    for name, document in ASSOCIATIONS.items():
        assert found[name]["Name"] == document  # ListAssociations' Name is the document's
        assert found[name]["Targets"] == [{"Key": "tag:HybridName", "Values": ["lab"]}]
        assert ssm.describe_association(AssociationId=found[name]["AssociationId"])[
            "AssociationDescription"]["Name"] == document
    ids = {lab.vault_id(h) for h in lab.hosts}
    # The associations really ran: every node reports success, and its software inventory arrived from the agent.
    for node in lab.nodes():
        assert node["InstanceId"] in ids and node.get("AssociationStatus") == "Success", node
        entries = ssm.list_inventory_entries(InstanceId=node["InstanceId"], TypeName="AWS:Application")["Entries"]
        assert any(e.get("Name") == "amazon-ssm-agent" for e in entries), entries[:5]
    # The resource data sync wrote each node's inventory into the central bucket.
    keys = wait_until("inventory objects in the central bucket", lambda: [
        o["Key"] for o in lab.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="inventory/").get("Contents", [])],
        timeout=60)
    for instance_id in ids:
        assert any(k.endswith(f"/{instance_id}.json") and "/AWS:Application/" in k for k in keys), keys[:10]
    # AWS Config records the SSM inventory.
    config = lab.client("config")
    recorder = config.describe_configuration_recorders()["ConfigurationRecorders"][0]
    assert set(recorder["recordingGroup"]["resourceTypes"]) >= {"AWS::SSM::ManagedInstanceInventory",
                                                                "AWS::SSM::FileData"}
    assert config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"][0]["recording"] is True

    check = playbook("fleet.yml", check_mode=True)
    assert check.rc == 0 and check.total_changed == 0, check.stdout[-4000:]
    again = playbook("fleet.yml")
    assert again.rc == 0 and again.total_changed == 0, again.stdout[-4000:]


def test_a_failed_association_ends_the_wait_at_once_and_runs_again_on_the_rerun(lab, onboarded):
    """An association that fails on the nodes (a check for a file that is not there yet): fleet.yml runs it once
    more, then fails at once naming the nodes, instead of waiting ssm_fleet_wait_timeout for a run that AWS would only
    retry at its schedule. With the cause fixed, the rerun runs it again (a change) and converges; a third run changes
    nothing."""
    ready = {"name": "lab-ready-check", "document_name": "AWS-RunShellScript", "schedule_expression": "rate(14 days)",
             "parameters": {"commands": ["test -e /etc/hybrid-lab-ready"]}}

    def extra(item):
        return ("-e", json.dumps({"ssm_fleet_extra_associations": [item]}))

    for host in lab.hosts:
        lab.ssh(host, "rm -f /etc/hybrid-lab-ready")
    failed = playbook("fleet.yml", *extra(ready), timeout=500)
    assert failed.rc != 0, failed.stdout[-4000:]
    assert "after running the failed ones once more" in failed.stdout, failed.stdout[-4000:]
    ids = {lab.vault_id(h) for h in lab.hosts}
    for instance_id in ids:
        assert f"{instance_id} (failed)" in failed.stdout, failed.stdout[-4000:]
    ssm = lab.client("ssm")
    (found,) = [a for a in ssm.list_associations()["Associations"] if a.get("AssociationName") == "lab-ready-check"]
    assert found["Overview"]["AssociationStatusAggregatedCount"] == {"Failed": len(ids)}, found["Overview"]

    for host in lab.hosts:
        lab.ssh(host, "touch /etc/hybrid-lab-ready")
    fixed = playbook("fleet.yml", *extra(ready), timeout=500)
    assert fixed.rc == 0 and fixed.changed() == 1, fixed.stdout[-4000:]  # the rerun of lab-ready-check, nothing else
    overview = ssm.describe_association(AssociationId=found["AssociationId"])["AssociationDescription"]["Overview"]
    assert overview["AssociationStatusAggregatedCount"] == {"Success": len(ids)}, overview
    assert all(n.get("AssociationStatus") == "Success" for n in lab.nodes())
    again = playbook("fleet.yml", *extra(ready))
    assert again.rc == 0 and again.total_changed == 0, again.stdout[-4000:]
    gone = playbook("fleet.yml", *extra(dict(ready, state="absent")))
    assert gone.rc == 0 and gone.changed() == 1, gone.stdout[-4000:]
    assert "lab-ready-check" not in {a.get("AssociationName") for a in ssm.list_associations()["Associations"]}


def test_a_node_failing_another_teams_association_is_named_at_once(lab, onboarded):
    """A node can fail an association that fleet.yml does not manage (another team's, by instance ID). Nothing of the
    site's runs once more then, so fleet.yml names that node as failed at once, changes nothing, and leaves the other
    team's association alone: it does not wait ssm_fleet_wait_timeout for a run that is not coming."""
    ssm = lab.client("ssm")
    ids = {lab.vault_id(h) for h in lab.hosts}
    instance_id = lab.vault_id(sorted(lab.hosts)[0])
    foreign = ssm.create_association(
        Name="AWS-RunShellScript", AssociationName="other-team-check", ScheduleExpression="rate(14 days)",
        Targets=[{"Key": "InstanceIds", "Values": [instance_id]}], Parameters={"commands": ["exit 3"]},
    )["AssociationDescription"]["AssociationId"]
    try:
        def overview():
            return ssm.describe_association(AssociationId=foreign)["AssociationDescription"]["Overview"]

        wait_until("the other team's association to fail on the node",
                   lambda: overview().get("AssociationStatusAggregatedCount") == {"Failed": 1}, timeout=120)
        # The wait's timeout is far longer than the run is allowed to take: a wait for a rerun would be killed.
        result = playbook("fleet.yml", "-e", "ssm_fleet_wait_timeout=1800", timeout=400)
        assert result.rc != 0, result.stdout[-4000:]
        assert f"{instance_id} (failed)" in result.stdout, result.stdout[-4000:]
        # Nothing of the site's ran once more, and there was no second wait.
        assert "after running the failed ones once more" not in result.stdout, result.stdout[-4000:]
        assert "its run once more has not started yet" not in result.stdout, result.stdout[-4000:]
        for other in ids - {instance_id}:
            assert other not in result.stdout, result.stdout[-4000:]
        assert result.total_changed == 0, result.stdout[-4000:]
        description = ssm.describe_association(AssociationId=foreign)["AssociationDescription"]
        assert description["AssociationVersion"] == "1" and overview()["AssociationStatusAggregatedCount"] == {
            "Failed": 1}
    finally:
        ssm.delete_association(AssociationId=foreign)
    assert all(n.get("AssociationStatus") == "Success" for n in lab.nodes()), lab.nodes()


def test_report_has_one_onboarded_row_per_host_and_rerun_changes_nothing(lab, onboarded):
    result = playbook("report.yml")
    assert result.rc == 0, result.stdout[-5000:]
    report = json.loads((ROOT / "artifacts" / "report.json").read_text())
    rows = {r["host"]: r for r in report["hosts"]}
    assert set(rows) == set(lab.hosts)
    by_ip = {n["IPAddress"]: n for n in lab.nodes()}
    for host, ip in lab.hosts.items():
        row = rows[host]
        assert row["preflight"] == "passed" and row["ping_status"] == "Online", row
        assert row["instance_id"] == by_ip[ip]["InstanceId"] == lab.vault_id(host)
        assert row["ssm_agent_version"] == by_ip[ip]["AgentVersion"]
        assert row["cloudwatch_agent_version"] and row["metrics_seen"] > 0 and row["logs_seen"] == 1
        assert row["onboarded"] is True
    assert report["summary"]["onboarded"] == len(lab.hosts)
    html = (ROOT / "artifacts" / "report.html").read_text()
    assert all(host in html for host in lab.hosts)
    assert "| " + sorted(lab.hosts)[0] in (ROOT / "artifacts" / "report.md").read_text()
    assert sorted(lab.hosts)[0] in result.stdout  # the summary table is printed
    again = playbook("report.yml")
    assert again.rc == 0 and again.total_changed == 0, again.stdout[-3000:]


INVENTORY_CONFIG = """\
plugin: hybrid.onboard.ssm_nodes
regions: [eu-west-1]
filters:
  tag:HybridName: lab
ping_status: [Online]
hostnames: [tag:Hostname, computer_name]
keyed_groups:
  - {key: ssm_ping_status, prefix: ssm_ping}
  - {key: ssm_tags.Rack, prefix: rack}
"""


def plain(value):
    """ansible-inventory --list marks the plugin's strings {"__ansible_unsafe": ...}: read them as plain values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def graph(tmp_path) -> tuple[str, dict]:
    config = tmp_path / "lab.ssm_nodes.yml"
    config.write_text(INVENTORY_CONFIG)
    tool = str(ROOT / ".venv" / "bin" / "ansible-inventory")
    env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **C.controller_env()}
    shown = run([tool, "-i", str(config), "--graph"], env=env, cwd=str(ROOT)).stdout
    listed = plain(json.loads(run([tool, "-i", str(config), "--list"], env=env, cwd=str(ROOT)).stdout))
    return shown, listed


def test_audit_four_steps_builds_the_trail_filters_and_alarms(lab, onboarded):
    hosts = sorted(lab.hosts)
    extra = {"aws_audit_alarm_hosts": hosts,
             "aws_audit_sns_subscriptions": [{"protocol": "email", "endpoint": "audit@example.com"}]}
    trails, logs, cloudwatch, sns = (lab.client(s) for s in ("cloudtrail", "logs", "cloudwatch", "sns"))
    first_check = playbook("audit.yml", extra_vars=extra, check_mode=True)
    assert first_check.rc == 0 and first_check.total_changed > 0, first_check.stdout[-5000:]
    assert not trails.describe_trails()["trailList"]
    assert not logs.describe_log_groups(logGroupNamePrefix="/hybrid-onboard-audit/")["logGroups"]
    assert not cloudwatch.describe_alarms()["MetricAlarms"]
    assert not [t for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":hybrid-onboard-audit")]

    result = playbook("audit.yml", extra_vars=extra)
    assert result.rc == 0, result.stdout[-5000:]
    (trail,) = trails.describe_trails()["trailList"]
    assert trail["IsMultiRegionTrail"] and trail["CloudWatchLogsLogGroupArn"].split(":log-group:")[1].startswith(
        "/hybrid-onboard-audit/cloudtrail")
    assert trails.get_trail_status(Name=trail["Name"])["IsLogging"] is True
    filters = {f["filterName"] for f in logs.describe_metric_filters(
        logGroupName="/hybrid-onboard-audit/cloudtrail")["metricFilters"]}
    expected = {"DeregisterManagedInstance", "DeleteActivation", "CreateActivation", "UpdateServiceSetting",
                "DeleteAssociation", "HybridRoleChanged", "AccessDenied"}
    assert {f.removeprefix("hybrid-onboard-audit-") for f in filters} >= expected, filters
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":hybrid-onboard-audit"))
    assert len(alarms) == len(expected) + 3 * len(hosts), [a["AlarmName"] for a in alarms]
    assert all(a["AlarmActions"] == [topic] for a in alarms), alarms[:2]
    per_host = {d["Value"] for a in alarms for d in a["Dimensions"] if d["Name"] == "host"}
    assert per_host == set(hosts), per_host
    assert {a["MetricName"] for a in alarms if a["Namespace"] == "CWAgent"} == {
        "cpu_usage_idle", "mem_used_percent", "disk_used_percent"}
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Endpoint"] for s in subscriptions] == ["audit@example.com"]

    check = playbook("audit.yml", extra_vars=extra, check_mode=True)
    assert check.rc == 0 and check.total_changed == 0, check.stdout[-4000:]
    again = playbook("audit.yml", extra_vars=extra)
    assert again.rc == 0 and again.total_changed == 0, again.stdout[-4000:]


def test_inventory_plugin_lists_exactly_the_online_hosts_with_their_groups(lab, onboarded, tmp_path):
    shown, listed = graph(tmp_path)
    print(shown)
    hostvars = listed["_meta"]["hostvars"]
    assert set(hostvars) == set(lab.hosts)
    for host, ip in lab.hosts.items():
        assert hostvars[host]["ansible_host"] == ip and hostvars[host]["ssm_ping_status"] == "Online"
        assert hostvars[host]["ssm_instance_id"] == lab.vault_id(host)
    rack_groups = {f"rack_{hostvars[h]['ssm_tags']['Rack']}".replace("-", "_") for h in lab.hosts}
    lines = [line.strip() for line in shown.splitlines()]
    assert lines[0] == "@all:" and "|--@ssm_ping_Online:" in lines
    for group in rack_groups:
        assert f"|--@{group}:" in lines
    assert sorted(line.removeprefix("|  |--") for line in lines if line.startswith("|  |--") and
                  not line.startswith("|  |--@")) == sorted(list(lab.hosts) * (1 + 1))  # in both group kinds


def test_offboard_one_host_leaves_the_others_online_and_rerun_changes_nothing(lab, onboarded, tmp_path):
    host = sorted(lab.hosts)[-1]
    others = [h for h in lab.hosts if h != host]
    gone_id = lab.vault_id(host)
    assert gone_id
    check = playbook("offboard.yml", "--limit", host, check_mode=True)
    assert check.rc == 0, check.stdout[-4000:]
    assert gone_id in {n["InstanceId"] for n in lab.nodes()}  # check mode changed nothing
    # One ansible-playbook run of ssm_agent.yml, offboard.yml and report.yml: the report must find the host's
    # registration gone, not the one the ssm_agent phase of the same run kept (its fact ssm_agent_result).
    playbooks = ROOT / "playbooks"
    result = playbook("ssm_agent.yml", str(playbooks / "offboard.yml"), str(playbooks / "report.yml"),
                      "--limit", f"{host},localhost")
    assert result.rc == 0, result.stdout[-5000:]
    assert gone_id not in {n["InstanceId"] for n in lab.nodes()}
    rows = {r["host"]: r for r in json.loads((ROOT / "artifacts" / "report.json").read_text())["hosts"]}
    assert set(rows) == {host}, rows  # a --limit'ed report has rows for the hosts it read only
    assert rows[host]["instance_id"] is None and rows[host]["onboarded"] is False, rows
    out = lab.ssh(host, "dpkg-query -W -f='${db:Status-Abbrev}\\n' amazon-ssm-agent amazon-cloudwatch-agent 2>&1;"
                        " ls /var/lib/amazon/ssm /opt/aws/amazon-cloudwatch-agent 2>&1; "
                        "grep -c aws_access_key_id /root/.aws/credentials 2>/dev/null || echo no-key",
                  check=False).stdout
    assert "ii" not in out and "No such file" in out and out.strip().endswith(("0", "no-key")), out
    for unit in ("amazon-ssm-agent", "amazon-cloudwatch-agent"):
        assert lab.ssh(host, f"systemctl is-active {unit}", check=False).stdout.strip() != "active"
    online = {n["IPAddress"] for n in lab.nodes() if n["PingStatus"] == "Online"}
    assert {lab.hosts[h] for h in others} <= online
    check_again = playbook("offboard.yml", "--limit", host, check_mode=True)
    assert check_again.rc == 0 and check_again.total_changed == 0, check_again.stdout[-4000:]
    again = playbook("offboard.yml", "--limit", host)
    assert again.rc == 0 and again.total_changed == 0, again.stdout[-4000:]
    # The dynamic inventory no longer lists it; the others stay.
    _shown, listed = graph(tmp_path)
    assert set(listed["_meta"]["hostvars"]) == set(others)
