"""The lab works for clients nobody here wrote: AWS CLI, dig and curl on booted on-prem hosts.

Everything is asserted from outside: the emulator through the AWS CLI/boto3, DNS with `dig` on a host,
HTTPS with `curl` on a host (trusting the lab CA from the host's own store), routes with `ip`.
"""

from __future__ import annotations

import ipaddress
import json
import uuid

import pytest
from labtools import C, run, wait_until

pytestmark = pytest.mark.integration


def test_hosts_are_booted_systemd_machines_with_their_own_identity(lab):
    seen_ids = set()
    for name, ip in lab.hosts.items():
        out = lab.ssh(name, "hostname; cat /etc/machine-id; systemctl is-active ssh; ip -4 -o addr show eth0").stdout
        hostname, machine_id, ssh_state, addr = out.splitlines()[:4]
        assert hostname == name
        assert ssh_state == "active"
        assert f"{ip}/24" in addr
        seen_ids.add(machine_id)
    assert len(seen_ids) == len(lab.hosts), "hosts must not share a machine-id (SSM fingerprints would collide)"


def test_no_default_route_on_hosts_or_lab_namespaces(lab):
    for name in lab.hosts:
        assert "default" not in lab.ssh(name, "ip route").stdout
    for ns in (C.NS_ROUTER, C.NS_VPC):
        assert "default" not in run(["ip", "-n", ns, "route"]).stdout


def test_hosts_resolve_through_the_onprem_dns_server(lab):
    name = next(iter(lab.hosts))
    assert f"nameserver {lab.dns_host[1]}" in lab.ssh(name, "cat /etc/resolv.conf").stdout
    # bind9 runs on the DNS host but forwards nowhere yet: that is the product's job.
    assert lab.ssh(lab.dns_host[0], "systemctl is-active named").stdout.strip() == "active"


def test_seeded_account_seen_by_the_aws_cli(lab):
    vpcs = lab.aws_json("ec2", "describe-vpcs", "--vpc-ids", C.VPC_ID)["Vpcs"]
    assert vpcs[0]["CidrBlock"] == C.VPC_CIDR
    subnets = lab.aws_json("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={C.VPC_ID}")["Subnets"]
    assert {(s["SubnetId"], s["AvailabilityZone"], s["CidrBlock"]) for s in subnets} >= set(C.SUBNETS)


def test_aws_cli_hybrid_activation_round_trip(lab):
    role = f"lab-cli-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    arn = lab.aws_json("iam", "create-role", "--role-name", role,
                       "--assume-role-policy-document", json.dumps(trust))["Role"]["Arn"]
    bad = lab.aws("ssm", "create-activation", "--iam-role", arn, check=False)
    assert bad.returncode != 0 and "Not existing role" in bad.stderr
    created = lab.aws_json("ssm", "create-activation", "--iam-role", role, "--registration-limit", "2")
    assert created["ActivationId"] and created["ActivationCode"]
    listed = lab.aws_json("ssm", "describe-activations", "--filters",
                          f"FilterKey=ActivationIds,FilterValues={created['ActivationId']}")["ActivationList"]
    assert listed[0]["RegistrationLimit"] == 2 and listed[0]["RegistrationsCount"] == 0
    assert "ActivationCode" not in listed[0]
    lab.aws("ssm", "delete-activation", "--activation-id", created["ActivationId"])


@pytest.fixture
def private_path(lab):
    """Interface endpoints (ssm with private DNS, s3 without) and a Resolver inbound endpoint, then cleanup."""
    ec2, r53r = lab.client("ec2"), lab.client("route53resolver")
    subnet_ids = [s[0] for s in C.SUBNETS]
    sg_443 = ec2.create_security_group(GroupName=f"lab-vpce-{uuid.uuid4().hex[:6]}", Description="443 from on-prem",
                                       VpcId=C.VPC_ID)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg_443, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": C.ONPREM_CIDR}]}])
    sg_53 = ec2.create_security_group(GroupName=f"lab-dns-{uuid.uuid4().hex[:6]}", Description="53 from on-prem",
                                      VpcId=C.VPC_ID)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg_53, IpPermissions=[
        {"IpProtocol": proto, "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": C.ONPREM_CIDR}]}
        for proto in ("udp", "tcp")])
    endpoints = {}
    for svc, private_dns in (("ssm", True), ("s3", False)):
        endpoints[svc] = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=C.VPC_ID, ServiceName=f"com.amazonaws.{C.REGION}.{svc}",
            SubnetIds=subnet_ids, SecurityGroupIds=[sg_443], PrivateDnsEnabled=private_dns,
        )["VpcEndpoint"]
    resolver = r53r.create_resolver_endpoint(
        CreatorRequestId=uuid.uuid4().hex, Name="lab-inbound", SecurityGroupIds=[sg_53], Direction="INBOUND",
        IpAddresses=[{"SubnetId": s} for s in subnet_ids],
    )["ResolverEndpoint"]
    inbound_ips = [a["Ip"] for a in r53r.list_resolver_endpoint_ip_addresses(
        ResolverEndpointId=resolver["Id"])["IpAddresses"]]
    yield {"endpoints": endpoints, "inbound_ips": inbound_ips, "resolver": resolver}
    r53r.delete_resolver_endpoint(ResolverEndpointId=resolver["Id"])
    ec2.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in endpoints.values()])


def endpoint_ips(lab, endpoint) -> set[str]:
    enis = lab.client("ec2").describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])
    return {eni["PrivateIpAddress"] for eni in enis["NetworkInterfaces"]}


def test_resolver_stand_in_answers_from_emulator_state(lab, private_path):
    host = next(iter(lab.hosts))
    inbound = private_path["inbound_ips"][0]
    ssm_ips = endpoint_ips(lab, private_path["endpoints"]["ssm"])
    s3_ips = endpoint_ips(lab, private_path["endpoints"]["s3"])
    vpc = ipaddress.ip_network(C.VPC_CIDR)
    assert ssm_ips and all(ipaddress.ip_address(ip) in vpc for ip in ssm_ips)

    # ssm has private DNS: its service name resolves to the endpoint's ENIs.
    answer = wait_until("ssm private DNS via the inbound endpoint",
                        lambda: lab.dig(host, f"ssm.{C.REGION}.amazonaws.com", server=inbound) or None)
    assert answer == ssm_ips
    # The endpoint-specific S3 name resolves to the S3 endpoint's ENIs ...
    s3_dns = next(e["DnsName"] for e in private_path["endpoints"]["s3"]["DnsEntries"] if e["DnsName"].startswith("*."))
    bucket_name = s3_dns.replace("*.", "bucket.", 1)
    # The VPC side picks new endpoints up about once a second, later on a busy machine: wait for this name as well.
    assert wait_until(f"{bucket_name} via the inbound endpoint",
                      lambda: lab.dig(host, bucket_name, server=inbound) or None) == s3_ips
    # ... but without a private hosted zone the regional S3 name resolves "public": the classic trap.
    public = lab.dig(host, f"s3.{C.REGION}.amazonaws.com", server=inbound)
    assert public and all(ipaddress.ip_address(ip) in C.PUBLIC_TRAP_NET for ip in public)


def test_aws_cli_sees_endpoints_and_resolver(lab, private_path):
    endpoints = lab.aws_json("ec2", "describe-vpc-endpoints", "--filters", f"Name=vpc-id,Values={C.VPC_ID}")
    live = {e["VpcEndpointId"]: e for e in endpoints["VpcEndpoints"] if e["State"].lower() == "available"}
    ssm = live[private_path["endpoints"]["ssm"]["VpcEndpointId"]]
    assert any(d["DnsName"].endswith(f".ssm.{C.REGION}.vpce.amazonaws.com") for d in ssm["DnsEntries"])
    resolvers = lab.aws_json("route53resolver", "list-resolver-endpoints")["ResolverEndpoints"]
    mine = [r for r in resolvers if r["Id"] == private_path["resolver"]["Id"]]
    assert mine and mine[0]["Direction"] == "INBOUND" and mine[0]["IpAddressCount"] == 2


def test_https_through_the_endpoint_reaches_emulator_s3(lab, private_path):
    host = next(iter(lab.hosts))
    s3_endpoint = private_path["endpoints"]["s3"]
    s3_ip = sorted(endpoint_ips(lab, s3_endpoint))[0]
    s3_dns = next(e["DnsName"] for e in s3_endpoint["DnsEntries"] if e["DnsName"].startswith("*."))
    bucket_host = s3_dns.replace("*.", "bucket.", 1)
    url = f"https://{bucket_host}/{C.SSM_AGENT_BUCKET}/latest/VERSION"

    # The host trusts the lab CA through its own store (no --cacert, no -k).
    def served_version():
        return lab.ssh(host, f"curl -sS --fail --max-time 10 --resolve {bucket_host}:443:{s3_ip} {url}",
                       check=False).stdout.strip()

    body = wait_until("the HTTPS front on the S3 endpoint IP", served_version)
    assert body.count(".") >= 2  # a dotted agent version


def test_public_trap_is_unreachable_from_hosts(lab):
    host = next(iter(lab.hosts))
    result = lab.ssh(host, "curl -sS --max-time 5 https://203.0.113.10/ ; echo rc=$?", check=False)
    assert "rc=0" not in result.stdout
