"""AWS's published closed-network procedure, done by hand on a lab host, works end to end.

This proves the agent stand-ins and the lab together, the way an ops engineer would do it without this
project: forward amazonaws.com to the Resolver inbound endpoint on the on-prem DNS server, `wget` the
agent from the S3 endpoint-specific URL, `dpkg -i`, register with an activation, start, and see the node
Online from the AWS side; then the CloudWatch agent on the SSM-shared credentials sends metrics and logs.
The same download through a regional S3 name without S3 private DNS fails: the public trap.
"""

from __future__ import annotations

import ipaddress
import json
import uuid

import pytest
from labtools import C, wait_until

pytestmark = pytest.mark.integration

SERVICES_PRIVATE_DNS = ("ssm", "ssmmessages", "ec2messages", "logs", "monitoring")


@pytest.fixture(scope="module")
def manual_site(lab):
    """The AWS side built by hand (endpoints, inbound resolver, role) and bind9 forwarding on dns1."""
    ec2, r53r, iam = lab.client("ec2"), lab.client("route53resolver"), lab.client("iam")
    subnet_ids = [s[0] for s in C.SUBNETS]
    suffix = uuid.uuid4().hex[:6]
    sg = ec2.create_security_group(GroupName=f"manual-vpce-{suffix}", Description="443 from on-prem",
                                   VpcId=C.VPC_ID)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": C.ONPREM_CIDR}]},
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": C.ONPREM_CIDR}]},
        {"IpProtocol": "tcp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": C.ONPREM_CIDR}]}])
    endpoints = {
        svc: ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=C.VPC_ID, ServiceName=f"com.amazonaws.{C.REGION}.{svc}",
            SubnetIds=subnet_ids, SecurityGroupIds=[sg], PrivateDnsEnabled=svc != "s3",
        )["VpcEndpoint"]
        for svc in (*SERVICES_PRIVATE_DNS, "s3")
    }
    resolver = r53r.create_resolver_endpoint(
        CreatorRequestId=uuid.uuid4().hex, Name=f"manual-inbound-{suffix}", SecurityGroupIds=[sg],
        Direction="INBOUND", IpAddresses=[{"SubnetId": s} for s in subnet_ids])["ResolverEndpoint"]
    inbound = [a["Ip"] for a in r53r.list_resolver_endpoint_ip_addresses(
        ResolverEndpointId=resolver["Id"])["IpAddresses"]]
    role = f"manual-hybrid-{suffix}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy")
    # What the on-prem DNS team does by hand (and the onprem_dns role will do): forward amazonaws.com.
    forwarders = "; ".join(inbound)
    lab.ssh(lab.dns_host[0], "cp -p /etc/bind/named.conf.options /root/named.conf.options.orig")
    lab.ssh(lab.dns_host[0], (
        "cat > /etc/bind/named.conf.options <<'EOF'\n"
        "options {\n  directory \"/var/cache/bind\";\n  dnssec-validation no;\n  listen-on-v6 { none; };\n"
        "  allow-query { any; };\n};\n"
        f"zone \"amazonaws.com\" {{ type forward; forward only; forwarders {{ {forwarders}; }}; }};\n"
        "EOF\n"
        "named-checkconf && systemctl restart named"))
    s3_dns = next((e["DnsName"] for e in endpoints["s3"]["DnsEntries"] if e["DnsName"].startswith("*.")), None)
    assert s3_dns, endpoints["s3"]["DnsEntries"]
    s3_host = s3_dns.replace("*.", "bucket.", 1)
    # As on AWS, new endpoints take a moment to serve (here: the lab's VPC side picks them up about once a second,
    # later on a busy machine), and named has just restarted. Whoever follows the procedure waits until a host
    # resolves the names and reaches them on 443 (bash's /dev/tcp does both); so does this test, before the first
    # wget.
    names = (s3_host, f"ssm.{C.REGION}.amazonaws.com", f"ec2messages.{C.REGION}.amazonaws.com")
    probe = " && ".join(f"timeout 5 bash -c '</dev/tcp/{n}/443'" for n in names)
    for host in lab.hosts:
        wait_until(f"{host} to resolve and reach {', '.join(names)}",
                   lambda host=host: lab.ssh(host, probe, check=False).returncode == 0, timeout=120, interval=2)
    yield {"role": role, "s3_host": s3_host, "inbound": inbound}
    # Later tests onboard clean hosts: take the agents, their state and the managed instances away again.
    for host in lab.hosts:
        lab.ssh(host, "dpkg --purge amazon-ssm-agent amazon-cloudwatch-agent >/dev/null 2>&1; "
                      "rm -rf /var/lib/amazon /etc/amazon /opt/aws /root/.aws /tmp/*.deb", check=False)
    ssm = lab.client("ssm")
    for node in ssm.describe_instance_information()["InstanceInformationList"]:
        ssm.deregister_managed_instance(InstanceId=node["InstanceId"])
    # The lab is shared: give dns1 back its stock bind9 configuration.
    lab.ssh(lab.dns_host[0], "mv /root/named.conf.options.orig /etc/bind/named.conf.options && systemctl restart named")
    r53r.delete_resolver_endpoint(ResolverEndpointId=resolver["Id"])
    ec2.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in endpoints.values()])


def online(lab, host_ip):
    info = lab.aws_json("ssm", "describe-instance-information")["InstanceInformationList"]
    return next((i for i in info if i.get("IPAddress") == host_ip and i["PingStatus"] == "Online"), None)


def test_published_manual_procedure_registers_the_node(lab, manual_site):
    host = sorted(lab.hosts)[0]
    url = (f"https://{manual_site['s3_host']}/{C.SSM_AGENT_BUCKET}/latest/debian_amd64/amazon-ssm-agent.deb")
    activation = lab.aws_json("ssm", "create-activation", "--iam-role", manual_site["role"],
                              "--registration-limit", "5", "--default-instance-name", "manual")
    lab.ssh(host, (
        "set -e; cd /tmp; "
        f"wget -q {url} -O amazon-ssm-agent.deb; "
        "dpkg -i amazon-ssm-agent.deb >/dev/null; "
        "service amazon-ssm-agent stop; "
        f"amazon-ssm-agent -register -code '{activation['ActivationCode']}' -id '{activation['ActivationId']}' "
        f"-region {C.REGION}; "
        "service amazon-ssm-agent start"), timeout=120)
    node = wait_until("the node to be Online", lambda: online(lab, lab.hosts[host]), timeout=90)
    assert node["ComputerName"] == host
    assert node["ResourceType"] == "ManagedInstance" and node["InstanceId"].startswith("mi-")
    vault = json.loads(lab.ssh(host, "cat /var/lib/amazon/ssm/Vault/Store/RegistrationKey").stdout)
    assert vault["instanceID"] == node["InstanceId"]
    # ShareCreds: the hybrid role's temporary credentials for other tools (the CloudWatch agent).
    assert "[default]" in lab.ssh(host, "cat /root/.aws/credentials").stdout


def test_cloudwatch_agent_on_shared_credentials_sends_metrics_and_logs(lab, manual_site):
    host = sorted(lab.hosts)[0]
    wait_until("the node to be Online", lambda: online(lab, lab.hosts[host]), timeout=90)
    group = f"/hybrid/manual-{uuid.uuid4().hex[:6]}"
    config = {
        "agent": {"metrics_collection_interval": 10, "run_as_user": "root", "region": C.REGION},
        "metrics": {"metrics_collected": {
            "cpu": {"measurement": ["cpu_usage_idle"], "totalcpu": True},
            "mem": {"measurement": ["mem_used_percent"]},
            "disk": {"measurement": ["used_percent"], "resources": ["*"]}}},
        "logs": {"logs_collected": {"files": {"collect_list": [
            {"file_path": "/var/log/syslog", "log_group_name": group, "log_stream_name": "{hostname}",
             "retention_in_days": 7}]}}},
    }
    url = (f"https://{manual_site['s3_host']}/{C.CW_AGENT_BUCKET}/debian/amd64/latest/amazon-cloudwatch-agent.deb")
    lab.ssh(host, (
        "set -e; cd /tmp; "
        f"wget -q {url} -O amazon-cloudwatch-agent.deb; dpkg -i amazon-cloudwatch-agent.deb >/dev/null; "
        "echo \"$(date) manual test line\" >> /var/log/syslog; "
        "printf '[credentials]\\n  shared_credential_profile = \"default\"\\n"
        "  shared_credential_file = \"/root/.aws/credentials\"\\n' "
        "> /opt/aws/amazon-cloudwatch-agent/etc/common-config.toml; "
        f"cat > /tmp/cw.json <<'EOF'\n{json.dumps(config)}\nEOF\n"
        "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m onPremise "
        "-s -c file:/tmp/cw.json"), timeout=120)
    cw, logs = lab.client("cloudwatch"), lab.client("logs")

    def host_metrics():
        metrics = cw.list_metrics(Namespace="CWAgent", Dimensions=[{"Name": "host", "Value": host}])["Metrics"]
        return {m["MetricName"] for m in metrics} >= {"cpu_usage_idle", "mem_used_percent", "disk_used_percent"}

    wait_until("CWAgent metrics of the host", host_metrics, timeout=90, interval=3)
    streams = wait_until("the host's log stream", lambda: logs.describe_log_streams(
        logGroupName=group)["logStreams"] if logs.describe_log_groups(
        logGroupNamePrefix=group)["logGroups"] else None, timeout=90, interval=3)
    assert [s["logStreamName"] for s in streams] == [host]
    # The agent creates the stream, then puts the events (as the real agent does): wait for the line itself.
    wait_until("the test line in the host's log stream", lambda: any(
        "manual test line" in e["message"]
        for e in logs.get_log_events(logGroupName=group, logStreamName=host)["events"]), timeout=60, interval=2)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 7


def test_regional_s3_name_without_private_dns_is_the_public_trap(lab, manual_site):
    host = sorted(lab.hosts)[-1]
    name = f"s3.{C.REGION}.amazonaws.com"
    addresses = lab.ssh(host, f"getent ahostsv4 {name} | awk '{{print $1}}' | sort -u").stdout.split()
    assert addresses and all(ipaddress.ip_address(a) in C.PUBLIC_TRAP_NET for a in addresses)
    url = f"https://{name}/{C.SSM_AGENT_BUCKET}/latest/debian_amd64/amazon-ssm-agent.deb"
    result = lab.ssh(host, f"wget -q --timeout=5 --tries=1 {url} -O /tmp/a.deb", check=False)
    assert result.returncode != 0
    assert lab.ssh(host, "dpkg-query -W amazon-ssm-agent", check=False).returncode != 0
