"""Tests of the lab's AWS emulator core: middleware, fault injection, /_lab endpoints, seed, and the
EC2 / Route 53 / Route 53 Resolver / IAM fidelity the product relies on.

They talk to the in-process emulator over HTTP with boto3 (fixture ``emulator`` in conftest.py), and
one end-to-end test starts the real CLI (``python -m emulator``) and drives it with the AWS CLI.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.retries.standard
import labconst
import pytest
from botocore.exceptions import ClientError
from emulator import clock
from emulator.middleware import CallCounter, FaultConfig, LabMiddleware, action_of, service_of

PROJECT = Path(__file__).resolve().parents[3]
VENV_BIN = PROJECT / ".venv" / "bin"
SVC = f"com.amazonaws.{labconst.REGION}"
SUBNET_A, SUBNET_B = labconst.SUBNETS[0][0], labconst.SUBNETS[1][0]
OTHER_ACCOUNT = "210987654321"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's real retry logic, minus its seconds-long backoff sleeps."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.001)


def _error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _new_vpc(ec2, cidr: str = "10.20.0.0/16") -> tuple[str, list[str]]:
    """A scratch VPC with two subnets in different AZs (tests must not disturb the seeded one)."""
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    net = ipaddress.ip_network(cidr)
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=str(sub), AvailabilityZone=f"{labconst.REGION}{az}")[
            "Subnet"
        ]["SubnetId"]
        for sub, az in zip(net.subnets(new_prefix=24), "ab", strict=False)
    ]
    return vpc_id, subnets


# --- seed -------------------------------------------------------------------------------------


def test_seeded_vpc_and_subnets_have_the_lab_ids(emulator) -> None:
    ec2 = emulator.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["hybrid-lab"]}])["Vpcs"]
    assert [(v["VpcId"], v["CidrBlock"]) for v in vpcs] == [(labconst.VPC_ID, labconst.VPC_CIDR)]
    for attribute, key in (
        ("enableDnsSupport", "EnableDnsSupport"),
        ("enableDnsHostnames", "EnableDnsHostnames"),
    ):
        assert ec2.describe_vpc_attribute(VpcId=labconst.VPC_ID, Attribute=attribute)[key]["Value"] is True
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [labconst.VPC_ID]}])["Subnets"]
    assert sorted((s["SubnetId"], s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == sorted(
        labconst.SUBNETS
    )
    by_az = ec2.describe_subnets(
        Filters=[
            {"Name": "availability-zone", "Values": [labconst.SUBNETS[1][1]]},
            {"Name": "vpc-id", "Values": [labconst.VPC_ID]},
        ]
    )["Subnets"]
    assert [s["SubnetId"] for s in by_az] == [SUBNET_B]


def test_a_metric_is_listed_once_whatever_its_dimension_order(emulator) -> None:
    """ListMetrics names each metric once: namespace, name and the set of its dimensions (moto lists one per datum)."""
    cw = emulator.client("cloudwatch")
    host_then_cpu = [{"Name": "host", "Value": "web1"}, {"Name": "cpu", "Value": "cpu-total"}]
    for dims in (host_then_cpu, host_then_cpu, host_then_cpu[::-1]):
        cw.put_metric_data(Namespace="DimsOrder", MetricData=[{"MetricName": "cpu_usage_idle", "Dimensions": dims,
                                                               "Value": 97.0}])
    cw.put_metric_data(Namespace="DimsOrder", MetricData=[{"MetricName": "cpu_usage_idle", "Value": 1.0,
                                                           "Dimensions": [{"Name": "host", "Value": "web2"},
                                                                          {"Name": "cpu", "Value": "cpu-total"}]}])
    listed = cw.list_metrics(Namespace="DimsOrder")["Metrics"]
    assert sorted(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in listed) == [
        [("cpu", "cpu-total"), ("host", "web1")], [("cpu", "cpu-total"), ("host", "web2")]]


def test_list_metrics_lists_each_metric_once_and_filters_by_name_and_dimension(emulator) -> None:
    """ListMetrics' own search (moto's compares every data point with every metric found: minutes on a 50-host
    lab) lists each metric once however many data points it has, and filters by name and by dimension, with or
    without a value, as AWS does."""
    cw = emulator.client("cloudwatch")
    for round_ in range(40):
        cw.put_metric_data(Namespace="Many", MetricData=[
            {"MetricName": name, "Value": float(round_),
             "Dimensions": [{"Name": "host", "Value": f"h{host}"}, {"Name": "cpu", "Value": "cpu-total"}]}
            for host in range(25) for name in ("cpu_usage_idle", "mem_used_percent")][:1000])
    pages = list(cw.get_paginator("list_metrics").paginate(Namespace="Many"))
    assert len([m for page in pages for m in page["Metrics"]]) == 50
    one = cw.list_metrics(Namespace="Many", MetricName="mem_used_percent",
                          Dimensions=[{"Name": "host", "Value": "h7"}])["Metrics"]
    assert [sorted((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in one] == [
        [("cpu", "cpu-total"), ("host", "h7")]]
    any_host = cw.list_metrics(Namespace="Many", MetricName="cpu_usage_idle", Dimensions=[{"Name": "host"}])
    assert len(any_host["Metrics"]) == 25
    assert not cw.list_metrics(Namespace="Many", Dimensions=[{"Name": "disk"}])["Metrics"]


def test_seed_is_idempotent_and_buckets_exist(emulator) -> None:
    from emulator import seed

    seed.seed()
    ec2 = emulator.client("ec2")
    assert len(ec2.describe_vpcs(VpcIds=[labconst.VPC_ID])["Vpcs"]) == 1
    assert (
        len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [labconst.VPC_ID]}])["Subnets"]) == 2
    )
    names = {b["Name"] for b in emulator.client("s3").list_buckets()["Buckets"]}
    assert {labconst.SSM_AGENT_BUCKET, labconst.CW_AGENT_BUCKET} <= names


# --- call counting ----------------------------------------------------------------------------


def test_calls_are_counted_per_service_and_action(emulator) -> None:
    emulator.reset_calls()
    ec2, ssm, s3, r53 = (emulator.client(s) for s in ("ec2", "ssm", "s3", "route53"))
    ec2.describe_vpcs()
    ec2.describe_vpcs()
    ssm.describe_parameters()
    s3.put_object(Bucket=labconst.SSM_AGENT_BUCKET, Key="probe/count.txt", Body=b"x")
    s3.get_object(Bucket=labconst.SSM_AGENT_BUCKET, Key="probe/count.txt")
    s3.list_objects_v2(Bucket=labconst.SSM_AGENT_BUCKET)
    r53.list_hosted_zones()
    emulator.client("cloudwatch").put_metric_data(
        Namespace="Lab", MetricData=[{"MetricName": "m", "Value": 1.0}]
    )
    calls = emulator.calls()
    assert calls["ec2"] == {"DescribeVpcs": 2}
    assert calls["ssm"] == {"DescribeParameters": 1}
    assert calls["s3"] == {"PutObject": 1, "GetObject": 1, "ListObjectsV2": 1}
    assert calls["route53"] == {"ListHostedZones": 1}
    assert calls["monitoring"] == {"PutMetricData": 1}
    emulator.reset_calls()
    assert emulator.calls() == {}


def test_calls_are_also_counted_per_caller(emulator) -> None:
    """The bench tells the controller's calls from the agents': each signing key has its own counts."""
    import boto3
    import requests

    emulator.reset_calls()
    emulator.client("ec2").describe_vpcs()
    boto3.client("ssm", endpoint_url=emulator.url, region_name=labconst.REGION, aws_access_key_id="agentkey",
                 aws_secret_access_key="x").describe_parameters()
    requests.post(emulator.url, headers={"X-Amz-Target": "AmazonSSM.DescribeParameters",
                                         "Content-Type": "application/x-amz-json-1.1"}, data="{}", timeout=5)
    status, by_caller = emulator.lab("GET", "/_lab/calls/by-caller")
    assert status == 200
    assert by_caller[labconst.ACCESS_KEY] == {"ec2": {"DescribeVpcs": 1}}
    assert by_caller["agentkey"] == {"ssm": {"DescribeParameters": 1}}
    assert by_caller["anonymous"] == {"ssm": {"DescribeParameters": 1}}
    assert emulator.calls()["ssm"] == {"DescribeParameters": 2}
    emulator.reset_calls()
    assert emulator.lab("GET", "/_lab/calls/by-caller")[1] == {}


def test_internal_requests_are_neither_counted_nor_faulted(emulator) -> None:
    emulator.reset_calls()
    ec2 = emulator.client("ec2")

    def mark_internal(request, **_kwargs) -> None:
        request.headers["X-Hybrid-Lab-Internal"] = "1"

    ec2.meta.events.register("before-sign", mark_internal)
    with emulator.faults(throttle_rate=1.0, seed=1):
        assert ec2.describe_vpcs(VpcIds=[labconst.VPC_ID])["Vpcs"]
    assert emulator.calls() == {}


def test_classification_of_unsigned_agent_calls() -> None:
    environ = {
        "HTTP_HOST": f"ssm.{labconst.REGION}.amazonaws.com",
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_X_AMZ_TARGET": "AmazonSSM.RegisterManagedInstance",
        "CONTENT_TYPE": "application/x-amz-json-1.1",
    }
    assert service_of(environ) == "ssm"
    assert action_of("ssm", environ, b"{}") == "RegisterManagedInstance"
    environ = {
        "HTTP_HOST": "127.0.0.1:4566",
        "HTTP_X_AMZ_TARGET": "EC2WindowsMessageDeliveryService.GetMessages",
    }
    assert service_of(environ) == "ec2messages"
    environ = {
        "HTTP_HOST": f"{labconst.SSM_AGENT_BUCKET}.s3.{labconst.REGION}.amazonaws.com",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/latest/debian_amd64/amazon-ssm-agent.deb",
    }
    assert service_of(environ) == "s3"


def test_counter_is_thread_safe() -> None:
    import threading

    counter = CallCounter()
    threads = [
        threading.Thread(target=lambda: [counter.record("ssm", "X") for _record in range(1000)]) for _thread in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.snapshot() == {"ssm": {"X": 8000}}


# --- middleware body handling and the SSM interceptor hook ------------------------------------


def _call(app, body: bytes, target: str) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_HOST": f"ssm.{labconst.REGION}.amazonaws.com",
        "CONTENT_TYPE": "application/x-amz-json-1.1",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_AMZ_TARGET": target,
        "wsgi.input": io.BytesIO(body),
    }
    status = {}

    def start_response(line, _headers):
        status["line"] = line

    out = b"".join(app(environ, start_response))
    return status["line"], out


def test_interceptor_and_moto_both_see_the_whole_body() -> None:
    seen = {}

    def moto_app(environ, start_response):
        seen["moto"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [])
        return [b"moto"]

    def intercept(environ):
        body = environ["wsgi.input"].read()
        seen["intercept"] = body
        if environ["HTTP_X_AMZ_TARGET"].endswith("RegisterManagedInstance"):
            return (
                200,
                [("Content-Type", "application/x-amz-json-1.1")],
                b'{"InstanceId": "mi-0123456789abcdef0"}',
            )
        return None

    app = LabMiddleware(moto_app, FaultConfig(), intercept)
    body = json.dumps({"ActivationId": str(uuid.uuid4()), "pad": "x" * 5000}).encode()
    assert _call(app, body, "AmazonSSM.RegisterManagedInstance") == (
        "200 OK",
        b'{"InstanceId": "mi-0123456789abcdef0"}',
    )
    assert "moto" not in seen and seen["intercept"] == body
    assert _call(app, body, "AmazonSSM.DescribeInstanceInformation") == ("200 OK", b"moto")
    assert seen["moto"] == body
    assert app.calls.snapshot() == {"ssm": {"RegisterManagedInstance": 1, "DescribeInstanceInformation": 1}}


# --- fault injection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "call", "code", "status"),
    [
        ("ssm", lambda c: c.describe_parameters(), "ThrottlingException", 400),
        ("logs", lambda c: c.describe_log_groups(), "ThrottlingException", 400),
        ("cloudwatch", lambda c: c.list_metrics(), "ThrottlingException", 400),
        ("iam", lambda c: c.list_roles(), "Throttling", 400),
        ("ec2", lambda c: c.describe_vpcs(), "RequestLimitExceeded", 400),
        ("s3", lambda c: c.list_buckets(), "SlowDown", 503),
        ("route53", lambda c: c.list_hosted_zones(), "Throttling", 400),
    ],
)
def test_throttling_is_the_services_real_error_and_botocore_retries_it(
    emulator, fast_retries, service, call, code, status
) -> None:
    client = emulator.client(service, retries={"total_max_attempts": 3, "mode": "standard"})
    emulator.reset_calls()
    with emulator.faults(throttle_rate=1.0, seed=7):
        with pytest.raises(ClientError) as exc:
            call(client)
        assert emulator.lab("GET", "/_lab/faults")[1]["injected"] == {"throttle": 3}  # what fault tests read back
    assert _error_code(exc) == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 2  # botocore saw a retryable throttle
    counted = next(iter(emulator.calls().values()))
    assert sum(counted.values()) == 3


def test_partial_throttling_is_absorbed_by_retries_and_deterministic(emulator, fast_retries) -> None:
    def run() -> list[int]:
        ec2 = emulator.client("ec2", retries={"total_max_attempts": 10, "mode": "standard"})
        with emulator.faults(throttle_rate=0.5, seed=42):
            return [
                ec2.describe_vpcs(VpcIds=[labconst.VPC_ID])["ResponseMetadata"]["RetryAttempts"]
                for _i in range(12)
            ]

    first, second = run(), run()
    assert first == second, "the same fault seed must give the same fault sequence"
    assert sum(first) > 0


def test_5xx_faults(emulator, fast_retries) -> None:
    seen = set()
    for seed in range(6):
        ssm = emulator.client("ssm", retries={"total_max_attempts": 1, "mode": "standard"})
        with emulator.faults(error_5xx_rate=1.0, seed=seed), pytest.raises(ClientError) as exc:
            ssm.describe_parameters()
        seen.add((_error_code(exc), exc.value.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert seen <= {("ServiceUnavailable", 503), ("InternalFailure", 500)}
    assert len(seen) == 2, f"both 5xx kinds should appear over several seeds, saw {seen}"
    ec2 = emulator.client("ec2", retries={"total_max_attempts": 4, "mode": "standard"})
    with emulator.faults(error_5xx_rate=1.0, seed=3), pytest.raises(ClientError) as exc:
        ec2.describe_vpcs()
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 3
    assert _error_code(exc) in {"ServiceUnavailable", "InternalError"}


def test_latency_fault(emulator) -> None:
    ec2 = emulator.client("ec2")
    with emulator.faults(latency_ms=300):
        start = time.monotonic()
        ec2.describe_vpcs(VpcIds=[labconst.VPC_ID])
        slow = time.monotonic() - start
    start = time.monotonic()
    ec2.describe_vpcs(VpcIds=[labconst.VPC_ID])
    assert slow >= 0.3 > time.monotonic() - start


def test_faults_from_environment() -> None:
    config = FaultConfig.from_env(
        {
            "HYBRID_LAB_FAULT_THROTTLE_RATE": "0.25",
            "HYBRID_LAB_FAULT_5XX_RATE": "0.1",
            "HYBRID_LAB_FAULT_LATENCY_MS": "5",
            "HYBRID_LAB_FAULT_SEED": "9",
        }
    )
    assert (config.throttle_rate, config.error_5xx_rate, config.latency_ms, config.seed) == (
        0.25,
        0.1,
        5.0,
        9,
    )
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultConfig.from_env({"HYBRID_LAB_FAULT_THROTTLE_RATE": "2"})


# --- /_lab endpoints --------------------------------------------------------------------------


def test_lab_endpoints(emulator) -> None:
    assert emulator.lab("GET", "/_lab/health")[0] == 200
    with emulator.faults(throttle_rate=1.0, seed=1):
        # /_lab/ is never faulted, even at a 100% throttle rate.
        status, payload = emulator.lab("GET", "/_lab/health")
        assert (status, payload["status"]) == (200, "ok")
        status, faults = emulator.lab("GET", "/_lab/faults")
        assert faults["throttle_rate"] == 1.0
    assert emulator.lab("POST", "/_lab/faults", {"throttle_rate": 7})[0] == 400
    assert emulator.lab("POST", "/_lab/faults", {"bogus": 1})[0] == 400
    assert emulator.lab("GET", "/_lab/nope")[0] == 404
    assert emulator.lab("GET", "/_lab/calls/reset")[0] == 405


def test_clock_offset(emulator) -> None:
    try:
        before = clock.now()
        payload = emulator.set_clock_offset(7200)
        assert payload["offset_seconds"] == 7200
        assert 7190 < (clock.now() - before).total_seconds() < 7260
        assert emulator.lab("POST", "/_lab/clock", {"offset": 1})[0] == 400
    finally:
        emulator.set_clock_offset(0)
    assert abs(clock.offset()) == 0


# --- EC2 interface endpoints ------------------------------------------------------------------


def test_interface_endpoint_dns_entries_enis_and_dns_options(emulator) -> None:
    ec2 = emulator.client("ec2")
    vpc_id, subnets = _new_vpc(ec2, "10.31.0.0/16")
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"{SVC}.ssm",
        VpcEndpointType="Interface",
        SubnetIds=subnets,
        PrivateDnsEnabled=True,
        DnsOptions={"DnsRecordIpType": "ipv4"},
    )["VpcEndpoint"]
    vpce = endpoint["VpcEndpointId"]
    assert endpoint["State"] == "available"
    assert re.fullmatch(r"vpce-[0-9a-f]{17}", vpce)
    names = [e["DnsName"] for e in endpoint["DnsEntries"]]
    regional = rf"{vpce}-[a-z0-9]{{8}}\.ssm\.{labconst.REGION}\.vpce\.amazonaws\.com"
    assert re.fullmatch(regional, names[0])
    suffix = names[0].split(".")[0]
    assert names[1:3] == [
        f"{suffix}-{labconst.REGION}{az}.ssm.{labconst.REGION}.vpce.amazonaws.com" for az in "ab"
    ]
    assert names[3:] == [f"ssm.{labconst.REGION}.amazonaws.com"]
    assert endpoint["DnsOptions"] == {"DnsRecordIpType": "ipv4"}

    described = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [f"{SVC}.ssm"]}]
    )["VpcEndpoints"]
    assert [e["VpcEndpointId"] for e in described] == [vpce]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])[
        "NetworkInterfaces"
    ]
    cidrs = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]}
    assert sorted(e["SubnetId"] for e in enis) == sorted(subnets)
    for eni in enis:
        assert ipaddress.ip_address(eni["PrivateIpAddress"]) in ipaddress.ip_network(cidrs[eni["SubnetId"]])
        assert eni["InterfaceType"] == "vpc_endpoint" and eni["RequesterManaged"] is True
        assert vpce in eni["Description"]


def test_modify_interface_endpoint(emulator) -> None:
    ec2 = emulator.client("ec2")
    vpc_id, subnets = _new_vpc(ec2, "10.32.0.0/16")
    group = ec2.create_security_group(GroupName="lab-endpoints", Description="endpoints", VpcId=vpc_id)[
        "GroupId"
    ]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"{SVC}.ec2messages",
        VpcEndpointType="Interface",
        SubnetIds=subnets[:1],
        PrivateDnsEnabled=False,
    )["VpcEndpoint"]
    vpce = endpoint["VpcEndpointId"]
    assert len(endpoint["DnsEntries"]) == 2  # regional + one zonal, no private DNS
    old_eni = endpoint["NetworkInterfaceIds"][0]
    policy = json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ssm:*", "Resource": "*"}]}
    )
    ec2.modify_vpc_endpoint(
        VpcEndpointId=vpce,
        AddSubnetIds=[subnets[1]],
        RemoveSubnetIds=[subnets[0]],
        AddSecurityGroupIds=[group],
        PrivateDnsEnabled=True,
        PolicyDocument=policy,
    )
    after = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
    assert after["SubnetIds"] == [subnets[1]]
    assert group in {g["GroupId"] for g in after["Groups"]}
    assert after["PrivateDnsEnabled"] is True and json.loads(after["PolicyDocument"]) == json.loads(policy)
    names = [e["DnsName"] for e in after["DnsEntries"]]
    assert names[1].endswith(f"-{labconst.REGION}b.ec2messages.{labconst.REGION}.vpce.amazonaws.com")
    assert names[-1] == f"ec2messages.{labconst.REGION}.amazonaws.com"
    assert old_eni not in after["NetworkInterfaceIds"]
    with pytest.raises(ClientError) as exc:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[old_eni])
    assert _error_code(exc) == "InvalidNetworkInterfaceID.NotFound"
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=after["NetworkInterfaceIds"])[
        "NetworkInterfaces"
    ][0]
    assert eni["SubnetId"] == subnets[1]


def test_s3_interface_endpoint_private_dns_rules(emulator) -> None:
    ec2 = emulator.client("ec2")
    vpc_id, subnets = _new_vpc(ec2, "10.33.0.0/16")
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc_endpoint(
            VpcId=vpc_id,
            ServiceName=f"{SVC}.s3",
            VpcEndpointType="Interface",
            SubnetIds=subnets,
            PrivateDnsEnabled=True,
            DnsOptions={"PrivateDnsOnlyForInboundResolverEndpoint": True},
        )
    assert "must have a Gateway endpoint" in exc.value.response["Error"]["Message"]
    # Private DNS for S3 defaults to "only for inbound resolver", so the same rule applies.
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc_endpoint(
            VpcId=vpc_id,
            ServiceName=f"{SVC}.s3",
            VpcEndpointType="Interface",
            SubnetIds=subnets,
            PrivateDnsEnabled=True,
        )
    assert "must have a Gateway endpoint" in exc.value.response["Error"]["Message"]

    route_table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"][
        0
    ]
    ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"{SVC}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[route_table["RouteTableId"]],
    )
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"{SVC}.s3",
        VpcEndpointType="Interface",
        SubnetIds=subnets,
        PrivateDnsEnabled=True,
        DnsOptions={"PrivateDnsOnlyForInboundResolverEndpoint": True},
    )["VpcEndpoint"]
    assert endpoint["DnsOptions"] == {
        "DnsRecordIpType": "ipv4",
        "PrivateDnsOnlyForInboundResolverEndpoint": True,
    }
    names = [e["DnsName"] for e in endpoint["DnsEntries"]]
    assert names[0].startswith(f"*.{endpoint['VpcEndpointId']}-")
    assert names[-2:] == [f"s3.{labconst.REGION}.amazonaws.com", f"*.s3.{labconst.REGION}.amazonaws.com"]

    ec2.modify_vpc_endpoint(
        VpcEndpointId=endpoint["VpcEndpointId"],
        DnsOptions={"PrivateDnsOnlyForInboundResolverEndpoint": False},
    )
    after = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])["VpcEndpoints"][0]
    assert after["DnsOptions"]["PrivateDnsOnlyForInboundResolverEndpoint"] is False

    with pytest.raises(ClientError) as exc:  # only S3-like services know this option
        ec2.create_vpc_endpoint(
            VpcId=vpc_id,
            ServiceName=f"{SVC}.logs",
            VpcEndpointType="Interface",
            SubnetIds=subnets,
            DnsOptions={"PrivateDnsOnlyForInboundResolverEndpoint": True},
        )
    assert _error_code(exc) == "InvalidParameter"


def test_endpoint_validation_errors(emulator) -> None:
    ec2 = emulator.client("ec2")
    vpc_id, subnets = _new_vpc(ec2, "10.34.0.0/16")
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc_endpoint(
            VpcId=vpc_id, ServiceName=f"{SVC}.no-such-service", VpcEndpointType="Interface", SubnetIds=subnets
        )
    assert _error_code(exc) == "InvalidServiceName"

    same_az = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock="10.34.9.0/24", AvailabilityZone=f"{labconst.REGION}a"
    )["Subnet"]["SubnetId"]
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc_endpoint(
            VpcId=vpc_id,
            ServiceName=f"{SVC}.ssm",
            VpcEndpointType="Interface",
            SubnetIds=[subnets[0], same_az],
        )
    assert _error_code(exc) == "DuplicateSubnetsInSameZone"

    ec2.create_vpc_endpoint(
        VpcId=vpc_id, ServiceName=f"{SVC}.kms", VpcEndpointType="Interface", SubnetIds=subnets
    )
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc_endpoint(
            VpcId=vpc_id, ServiceName=f"{SVC}.kms", VpcEndpointType="Interface", SubnetIds=subnets
        )
    assert "conflicting DNS domain" in exc.value.response["Error"]["Message"]

    no_dns_vpc = ec2.create_vpc(CidrBlock="10.35.0.0/16")["Vpc"]["VpcId"]  # DNS hostnames off by default
    subnet = ec2.create_subnet(VpcId=no_dns_vpc, CidrBlock="10.35.1.0/24")["Subnet"]["SubnetId"]
    with pytest.raises(ClientError) as exc:
        ec2.create_vpc_endpoint(
            VpcId=no_dns_vpc,
            ServiceName=f"{SVC}.ssm",
            VpcEndpointType="Interface",
            SubnetIds=[subnet],
            PrivateDnsEnabled=True,
        )
    assert "enableDnsHostnames" in exc.value.response["Error"]["Message"]
    # Nothing half-created by the failures: no endpoint ENIs left in that VPC.
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [no_dns_vpc]}])[
        "NetworkInterfaces"
    ]
    assert enis == []


def test_delete_interface_endpoint_releases_enis(emulator) -> None:
    ec2 = emulator.client("ec2")
    vpc_id, subnets = _new_vpc(ec2, "10.36.0.0/16")
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id, ServiceName=f"{SVC}.ssmmessages", VpcEndpointType="Interface", SubnetIds=subnets
    )["VpcEndpoint"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "NetworkInterfaces"
    ]
    assert enis == []


# --- Route 53 Resolver ------------------------------------------------------------------------


def test_resolver_inbound_endpoint_ips_are_in_the_subnets(emulator) -> None:
    ec2, resolver = emulator.client("ec2"), emulator.client("route53resolver")
    vpc_id, subnets = _new_vpc(ec2, "10.37.0.0/16")
    group = ec2.create_security_group(GroupName="resolver", Description="dns", VpcId=vpc_id)["GroupId"]
    endpoint = resolver.create_resolver_endpoint(
        CreatorRequestId=str(uuid.uuid4()),
        Name="lab-inbound",
        SecurityGroupIds=[group],
        Direction="INBOUND",
        IpAddresses=[{"SubnetId": s} for s in subnets],
    )["ResolverEndpoint"]
    ips = resolver.list_resolver_endpoint_ip_addresses(ResolverEndpointId=endpoint["Id"])["IpAddresses"]
    cidrs = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]}
    assert len(ips) == 2
    for ip in ips:
        assert ipaddress.ip_address(ip["Ip"]) in ipaddress.ip_network(cidrs[ip["SubnetId"]])
    # botocore refuses one address client-side; skip that check so the emulator's own validation answers.
    unvalidated = emulator.client("route53resolver", parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        unvalidated.create_resolver_endpoint(
            CreatorRequestId=str(uuid.uuid4()),
            Name="one-ip",
            SecurityGroupIds=[group],
            Direction="INBOUND",
            IpAddresses=[{"SubnetId": subnets[0]}],
        )
    assert _error_code(exc) == "InvalidRequestException"


# --- Route 53 ---------------------------------------------------------------------------------


def test_private_zone_with_alias_record_to_an_endpoint(emulator) -> None:
    ec2, r53 = emulator.client("ec2"), emulator.client("route53")
    vpc_id, subnets = _new_vpc(ec2, "10.38.0.0/16")
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"{SVC}.sts",
        VpcEndpointType="Interface",
        SubnetIds=subnets,
        PrivateDnsEnabled=False,
    )["VpcEndpoint"]
    zone = r53.create_hosted_zone(
        Name="sts.lab.internal",
        CallerReference=str(uuid.uuid4()),
        HostedZoneConfig={"PrivateZone": True},
        VPC={"VPCRegion": labconst.REGION, "VPCId": vpc_id},
    )["HostedZone"]
    target = endpoint["DnsEntries"][0]
    r53.change_resource_record_sets(
        HostedZoneId=zone["Id"],
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "sts.lab.internal",
                        "Type": "A",
                        "AliasTarget": {
                            "HostedZoneId": target["HostedZoneId"],
                            "DNSName": target["DnsName"],
                            "EvaluateTargetHealth": False,
                        },
                    },
                }
            ]
        },
    )
    records = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    alias = [r for r in records if r["Type"] == "A"]
    assert alias[0]["AliasTarget"]["DNSName"].rstrip(".") == target["DnsName"]
    by_vpc = r53.list_hosted_zones_by_vpc(VPCId=vpc_id, VPCRegion=labconst.REGION)["HostedZoneSummaries"]
    assert zone["Id"].split("/")[-1] in [z["HostedZoneId"] for z in by_vpc]


def test_vpc_association_authorization_across_accounts(emulator) -> None:
    owner_ec2, owner_r53 = emulator.client("ec2"), emulator.client("route53")
    other_ec2 = emulator.client("ec2", account_id=OTHER_ACCOUNT)
    other_r53 = emulator.client("route53", account_id=OTHER_ACCOUNT)
    home_vpc, _home_subnet = _new_vpc(owner_ec2, "10.39.0.0/16")
    foreign_vpc = other_ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    unauthorized_vpc = other_ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    zone_id = owner_r53.create_hosted_zone(
        Name="shared.lab.internal",
        CallerReference=str(uuid.uuid4()),
        HostedZoneConfig={"PrivateZone": True},
        VPC={"VPCRegion": labconst.REGION, "VPCId": home_vpc},
    )["HostedZone"]["Id"]
    foreign = {"VPCRegion": labconst.REGION, "VPCId": foreign_vpc}

    created = owner_r53.create_vpc_association_authorization(HostedZoneId=zone_id, VPC=foreign)
    assert created["VPC"] == foreign and created["HostedZoneId"] == zone_id.split("/")[-1]
    listed = owner_r53.list_vpc_association_authorizations(HostedZoneId=zone_id)["VPCs"]
    assert listed == [foreign]

    other_r53.associate_vpc_with_hosted_zone(HostedZoneId=zone_id, VPC=foreign)
    vpcs = owner_r53.get_hosted_zone(Id=zone_id)["VPCs"]
    assert foreign_vpc in [v["VPCId"] for v in vpcs]
    with pytest.raises(ClientError) as exc:
        other_r53.associate_vpc_with_hosted_zone(
            HostedZoneId=zone_id, VPC={"VPCRegion": labconst.REGION, "VPCId": unauthorized_vpc}
        )
    assert _error_code(exc) == "NotAuthorizedException"

    owner_r53.delete_vpc_association_authorization(HostedZoneId=zone_id, VPC=foreign)
    assert owner_r53.list_vpc_association_authorizations(HostedZoneId=zone_id)["VPCs"] == []
    with pytest.raises(ClientError) as exc:
        owner_r53.delete_vpc_association_authorization(HostedZoneId=zone_id, VPC=foreign)
    assert _error_code(exc) == "VPCAssociationAuthorizationNotFound"
    with pytest.raises(ClientError) as exc:
        owner_r53.create_vpc_association_authorization(HostedZoneId="/hostedzone/ZNOSUCHZONE", VPC=foreign)
    assert _error_code(exc) == "NoSuchHostedZone"


# --- IAM --------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"])
def test_aws_managed_policies_are_attachable(emulator, policy) -> None:
    iam = emulator.client("iam")
    arn = f"arn:aws:iam::aws:policy/{policy}"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["PolicyName"] == policy
    role = f"lab-{policy}-{uuid.uuid4().hex[:6]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]


# --- the real CLI, driven with the AWS CLI ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(
    not (VENV_BIN / "aws").exists(), reason="the AWS CLI is not installed in the project venv"
)
def test_cli_server_with_aws_cli(tmp_path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "tests" / "lab"), "HYBRID_LAB_FAULT_THROTTLE_RATE": "0"}
    log_file = (tmp_path / "emulator.log").open("w")
    proc = subprocess.Popen(
        # Its own marker, so a lab brought up or down meanwhile (another test stream) leaves it alone.
        [sys.executable, "-m", "emulator", "--port", str(port), "--process-marker", "hybrid-onboard-unit-emulator"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(f"{url}/_lab/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"emulator did not start: {(tmp_path / 'emulator.log').read_text()}")
                time.sleep(0.2)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"hybrid-onboard-unit-emulator" in cmdline, "stale emulators must be findable with pkill -f"

        cli_env = {
            **os.environ,
            **labconst.controller_env(),
            "AWS_ENDPOINT_URL": url,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

        def aws(*args: str) -> dict:
            done = subprocess.run(
                [str(VENV_BIN / "aws"), *args, "--output", "json"],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=60, check=False,
            )
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        vpcs = aws("ec2", "describe-vpcs", "--filters", "Name=tag:Name,Values=hybrid-lab")["Vpcs"]
        assert [v["VpcId"] for v in vpcs] == [labconst.VPC_ID]
        endpoint = aws(
            "ec2",
            "create-vpc-endpoint",
            "--vpc-id",
            labconst.VPC_ID,
            "--vpc-endpoint-type",
            "Interface",
            "--service-name",
            f"{SVC}.ssm",
            "--subnet-ids",
            SUBNET_A,
            SUBNET_B,
            "--private-dns-enabled",
        )["VpcEndpoint"]
        assert endpoint["DnsEntries"][-1]["DnsName"] == f"ssm.{labconst.REGION}.amazonaws.com"
        with opener.open(f"{url}/_lab/calls", timeout=5) as response:
            calls = json.load(response)
        assert calls["ec2"] == {"DescribeVpcs": 1, "CreateVpcEndpoint": 1}

        # moto's own reset wipes everything; the lab seed comes back by itself.
        reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310 - loopback http
        opener.open(reset, timeout=10).close()
        assert aws("ec2", "describe-vpc-endpoints")["VpcEndpoints"] == []
        assert [v["VpcId"] for v in aws("ec2", "describe-vpcs", "--vpc-ids", labconst.VPC_ID)["Vpcs"]] == [
            labconst.VPC_ID
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
    assert proc.returncode == 0, (tmp_path / "emulator.log").read_text()


def test_iam_user_with_key_and_policy_can_be_deleted_like_amazon_aws_does(emulator) -> None:
    iam = emulator.client("iam")
    iam.create_user(UserName="lab-ext-user")
    assert iam.list_service_specific_credentials(UserName="lab-ext-user")["ServiceSpecificCredentials"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.list_service_specific_credentials(UserName="nobody-here")
    iam.delete_user(UserName="lab-ext-user")


def test_private_emulator_is_not_the_labs_to_stop(tmp_path) -> None:
    """scripts/run-molecule's emulator carries its own marker: `scripts/lab up/down` must not stop it."""
    from onprem import cleanup
    from onprem.system import processes

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "tests" / "lab")}
    marker = "hybrid-onboard-molecule-emulator"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--process-marker", marker],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while marker.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0"):
            assert proc.poll() is None and time.monotonic() < deadline, "emulator did not re-execute with its marker"
            time.sleep(0.1)
        (me,) = [p for p in processes() if p.pid == proc.pid]
        assert me.cmdline.count(marker) == 1 and not cleanup.has_marker(me), me.cmdline
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_health(opener, url: str, proc: subprocess.Popen, seconds: float, failure: str) -> None:
    """Poll the emulator's /_lab/health until it answers; fail with ``failure`` after ``seconds`` or if it exited."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            opener.open(f"{url}/_lab/health", timeout=2).close()
            return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, failure
            time.sleep(0.2)


def test_restart_refuses_connections_for_a_while_and_keeps_the_state(tmp_path) -> None:
    """POST /_lab/restart: the endpoint is gone for down_seconds, then back with everything created before."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "tests" / "lab")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--process-marker", "hybrid-onboard-unit-emulator"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        _wait_for_health(opener, url, proc, 30, "emulator did not start")
        ssm = boto3.client("ssm", endpoint_url=url, region_name=labconst.REGION,
                           aws_access_key_id=labconst.ACCESS_KEY, aws_secret_access_key=labconst.SECRET_KEY)
        ssm.put_parameter(Name="/restart/kept", Value="before", Type="String")
        bad = urllib.request.Request(f"{url}/_lab/restart", data=b'{"down_seconds": 0}', method="POST")  # noqa: S310 - loopback
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(bad, timeout=5)
        assert refused.value.code == 400
        request = urllib.request.Request(f"{url}/_lab/restart", data=b'{"down_seconds": 5}', method="POST")  # noqa: S310 - loopback
        with opener.open(request, timeout=5) as resp:
            assert resp.status == 202
        # The listener goes down shortly after the 202 (later on a loaded machine): look for the refusal for up
        # to 4 s of the 5 s it stays down, then wait for it to come back.
        refused_at = time.monotonic() + 4
        while time.monotonic() < refused_at:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            except ConnectionRefusedError:
                break
            except OSError:  # reset or timed out while the listener closes: not down yet
                pass
            time.sleep(0.1)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        _wait_for_health(opener, url, proc, 20, "emulator did not come back after its restart")
        assert ssm.get_parameter(Name="/restart/kept")["Parameter"]["Value"] == "before"
    finally:
        # A loaded machine (CI runs the lab stream beside this one) can take longer than 10 s to stop it.
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
