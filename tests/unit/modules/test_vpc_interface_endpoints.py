"""vpc_interface_endpoints run for real (child process, as Ansible runs it) against the in-process emulator."""

from __future__ import annotations

import ipaddress
import json

import pytest

MODULE = "vpc_interface_endpoints"
AGENT_SERVICES = ["ssm", "ssmmessages", "ec2messages", "kms", "logs", "monitoring", "s3"]
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ssm:*", "Resource": "*"}],
}


def base_args(vpc, services=("ssm", "logs"), **extra):
    args = {
        "vpc_id": vpc["vpc_id"],
        "services": list(services),
        "subnet_ids": [vpc["subnets"]["a"], vpc["subnets"]["b"]],
    }
    args.update(extra)
    return args


def live_endpoints(emulator, vpc_id):
    ec2 = emulator.client("ec2")
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    return {e["ServiceName"].split(".")[-1]: e for e in endpoints if e["State"] not in ("deleted", "deleting")}


def test_check_create_check_rerun(tools, run_module, emulator, lab_vpc):
    args = base_args(lab_vpc, tags={"Name": "hybrid-onboard"})

    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True, check
    assert [e["state"] for e in check["endpoints"]] == ["would be created"] * 2
    assert set(check["diff"]["after"]) == {"ssm", "logs"}
    assert tools.mutations(emulator.calls()) == {}
    assert live_endpoints(emulator, lab_vpc["vpc_id"]) == {}

    created = run_module(MODULE, args, diff=True)
    assert created["changed"] is True, created
    assert set(created) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    live = live_endpoints(emulator, lab_vpc["vpc_id"])
    assert set(live) == {"ssm", "logs"}
    by_service = created["endpoints_by_service"]
    assert [e["service"] for e in created["endpoints"]] == ["ssm", "logs"]
    for service, endpoint in by_service.items():
        assert endpoint["vpc_endpoint_id"] == live[service]["VpcEndpointId"]
        assert endpoint["state"] == "available"
        assert endpoint["private_dns_enabled"] is True
        assert endpoint["tags"] == {"Name": "hybrid-onboard"}
        assert sorted(endpoint["subnet_ids"]) == sorted(args["subnet_ids"])
        assert len(endpoint["ip_addresses"]) == 2
        assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.20.0.0/16") for ip in endpoint["ip_addresses"])
        names = [d["dns_name"] for d in endpoint["dns_entries"]]
        assert f"{service}.{lab_vpc['region']}.amazonaws.com" in names
        assert names[0].startswith(endpoint["vpc_endpoint_id"] + "-")

    emulator.reset_calls()
    again = run_module(MODULE, args, check=True, diff=True)
    assert again["changed"] is False, again["diff"]
    rerun = run_module(MODULE, args)
    assert rerun["changed"] is False
    assert rerun["endpoints_by_service"]["ssm"]["vpc_endpoint_id"] == by_service["ssm"]["vpc_endpoint_id"]
    assert tools.mutations(emulator.calls()) == {}


def test_full_service_names_are_the_same_endpoints(run_module, lab_vpc):
    run_module(MODULE, base_args(lab_vpc, services=["ssm"]))
    full = run_module(MODULE, base_args(lab_vpc, services=[f"com.amazonaws.{lab_vpc['region']}.ssm"]))
    assert full["changed"] is False
    assert list(full["endpoints_by_service"]) == ["ssm"]


def test_noop_rerun_makes_the_same_few_calls_whatever_the_number_of_services(run_module, emulator, tools):
    counts = {}
    for vpc, services in ((tools.make_vpc(emulator), ["ssm"]), (tools.make_vpc(emulator), AGENT_SERVICES)):
        args = base_args(vpc, services=services, security_group_ids=[vpc["sg"]], tags={"Site": "dc1"})
        args["private_dns_overrides"] = {"s3": False} if "s3" in services else {}
        assert run_module(MODULE, args)["changed"] is True
        emulator.reset_calls()
        assert run_module(MODULE, args)["changed"] is False
        calls = emulator.calls()
        assert tools.mutations(calls) == {}
        counts[len(services)] = calls
    assert counts[1] == counts[len(AGENT_SERVICES)]
    assert tools.total_calls(counts[1]) <= 5, counts[1]


def test_modify_each_field_in_place(tools, run_module, emulator, lab_vpc):
    args = base_args(lab_vpc, services=["ssm"], security_group_ids=[lab_vpc["sg"]], tags={"Name": "a", "Old": "x"})
    first = run_module(MODULE, args)["endpoints_by_service"]["ssm"]
    endpoint_id = first["vpc_endpoint_id"]
    steps = [
        ("subnets", {"subnet_ids": [lab_vpc["subnets"]["a"], lab_vpc["subnets"]["c"]]}),
        ("groups", {"security_group_ids": [lab_vpc["sg2"]]}),
        ("private dns", {"private_dns_enabled": False}),
        ("dns options", {"dns_options": {"ssm": {"dns_record_ip_type": "service-defined"}}}),
        ("policy", {"policy": POLICY}),
        ("tags", {"tags": {"Name": "b"}}),
    ]
    for what, change in steps:
        args.update(change)
        emulator.reset_calls()
        check = run_module(MODULE, args, check=True, diff=True)
        assert check["changed"] is True, what
        assert check["diff"]["after"]["ssm"], what
        assert tools.mutations(emulator.calls()) == {}, what
        result = run_module(MODULE, args, diff=True)
        assert result["changed"] is True, what
        calls = tools.mutations(emulator.calls())
        assert "ec2:CreateVpcEndpoint" not in calls and "ec2:DeleteVpcEndpoints" not in calls, what
        endpoint = result["endpoints_by_service"]["ssm"]
        assert endpoint["vpc_endpoint_id"] == endpoint_id, what
        assert run_module(MODULE, args)["changed"] is False, what

    live = live_endpoints(emulator, lab_vpc["vpc_id"])["ssm"]
    assert sorted(live["SubnetIds"]) == sorted([lab_vpc["subnets"]["a"], lab_vpc["subnets"]["c"]])
    assert [g["GroupId"] for g in live["Groups"]] == [lab_vpc["sg2"]]
    assert live["PrivateDnsEnabled"] is False
    assert live["DnsOptions"]["DnsRecordIpType"] == "service-defined"
    assert json.loads(live["PolicyDocument"]) == POLICY
    assert {t["Key"]: t["Value"] for t in live["Tags"]} == {"Name": "b"}
    assert len(endpoint["ip_addresses"]) == 2
    assert any(ip.startswith("10.20.3.") for ip in endpoint["ip_addresses"])  # the AZ c subnet's ENI


def test_parameters_not_set_are_left_alone(tools, run_module, emulator, lab_vpc):
    full = base_args(
        lab_vpc, services=["ssm"], security_group_ids=[lab_vpc["sg"]], policy=POLICY, tags={"Owner": "ops"}
    )
    run_module(MODULE, full)
    emulator.reset_calls()
    minimal = run_module(MODULE, base_args(lab_vpc, services=["ssm"]))
    assert minimal["changed"] is False
    assert tools.mutations(emulator.calls()) == {}
    endpoint = minimal["endpoints_by_service"]["ssm"]
    assert endpoint["tags"] == {"Owner": "ops"}
    assert endpoint["policy_document"] == POLICY
    assert [g["group_id"] for g in endpoint["groups"]] == [lab_vpc["sg"]]
    kept = run_module(MODULE, base_args(lab_vpc, services=["ssm"], tags={"Site": "dc1"}, purge_tags=False))
    assert kept["endpoints_by_service"]["ssm"]["tags"] == {"Owner": "ops", "Site": "dc1"}


def test_s3_inbound_only_private_dns_creates_the_gateway_endpoint_first(tools, run_module, emulator, lab_vpc):
    args = base_args(
        lab_vpc,
        services=["s3"],
        dns_options={"s3": {"private_dns_only_for_inbound_resolver_endpoint": True}},
        gateway_endpoints=[{"service": "s3", "route_table_ids": [lab_vpc["route_table"]]}],
        tags={"Name": "s3"},
    )
    check = run_module(MODULE, args, check=True)
    assert check["changed"] is True
    assert check["gateway_endpoints"][0]["state"] == "would be created"
    result = run_module(MODULE, args)
    assert result["changed"] is True, result
    s3 = result["endpoints_by_service"]["s3"]
    assert s3["dns_options"]["private_dns_only_for_inbound_resolver_endpoint"] is True
    assert s3["private_dns_enabled"] is True
    gateway = result["gateway_endpoints"][0]
    assert gateway["service"] == "s3"
    assert gateway["route_table_ids"] == [lab_vpc["route_table"]]
    assert gateway["tags"] == {"Name": "s3"}
    assert run_module(MODULE, args)["changed"] is False

    emulator.reset_calls()
    deleted = run_module(MODULE, dict(args, state="absent"))
    assert deleted["changed"] is True
    assert live_endpoints(emulator, lab_vpc["vpc_id"]) == {}
    assert tools.mutations(emulator.calls()) == {"ec2:DeleteVpcEndpoints": 2}  # interface first, then gateway


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"services": ["ssm", "no-such-service"]}, "services: no-such-service not offered"),
        ({"subnet_ids": ["SUBNETS:a", "SUBNETS:a2"]}, "at most one subnet per availability zone"),
        ({"subnet_ids": ["SUBNETS:a", "subnet-0c0ffee000000000b"]}, "subnet_ids: subnet-0c0ffee000000000b is in vpc-"),
        ({"subnet_ids": ["subnet-0000000000000dead"]}, "subnet_ids:"),
        ({"services": ["ssm", "s3"]}, "needs a s3 gateway endpoint"),
        ({"dns_options": {"ssm": {"record_type": "ipv4"}}}, "dns_options.ssm: unknown key(s) record_type"),
        ({"dns_options": {"ssm": {"dns_record_ip_type": "ipv5"}}}, "dns_record_ip_type must be one of"),
        ({"private_dns_overrides": {"kms": False}}, "private_dns_overrides: 'kms' is not one of services"),
        ({"security_group_ids": ["sg-0000000000000dead"]}, "security_group_ids:"),
        ({"subnet_ids": None}, "subnet_ids is required"),
    ],
)
def test_invalid_input_fails_before_any_change(tools, run_module, emulator, lab_vpc, change, message):
    args = base_args(lab_vpc)
    for key, value in change.items():
        if isinstance(value, list):
            value = [lab_vpc["subnets"][v.split(":")[1]] if v.startswith("SUBNETS:") else v for v in value]
        args[key] = value
    emulator.reset_calls()
    result = run_module(MODULE, args)
    assert result.get("failed"), result
    assert message in result["msg"], result["msg"]
    assert tools.mutations(emulator.calls()) == {}
    assert live_endpoints(emulator, lab_vpc["vpc_id"]) == {}


def test_unknown_service_lists_what_the_region_offers(run_module, lab_vpc):
    result = run_module(MODULE, base_args(lab_vpc, services=["ssmm"]))
    assert result["failed"]
    offered = result["msg"].split("DescribeVpcEndpointServices offers: ")[1].split(", ")
    assert {"ssm", "ssmmessages", "ec2messages", "kms", "s3", "logs", "monitoring"} <= set(offered)


def test_delete_then_absent_is_unchanged(tools, run_module, emulator, lab_vpc):
    args = base_args(lab_vpc)
    created = run_module(MODULE, args)
    enis = [eni for e in created["endpoints"] for eni in e["network_interface_ids"]]

    absent = {"vpc_id": lab_vpc["vpc_id"], "services": ["ssm", "logs"], "state": "absent"}
    emulator.reset_calls()
    check = run_module(MODULE, absent, check=True, diff=True)
    assert check["changed"] is True
    assert {e["state"] for e in check["endpoints"]} == {"would be deleted"}
    assert set(check["diff"]["before"]) == {"ssm", "logs"}
    assert tools.mutations(emulator.calls()) == {}
    assert set(live_endpoints(emulator, lab_vpc["vpc_id"])) == {"ssm", "logs"}

    deleted = run_module(MODULE, absent)
    assert deleted["changed"] is True
    assert deleted["endpoints"] == []
    assert live_endpoints(emulator, lab_vpc["vpc_id"]) == {}
    ec2 = emulator.client("ec2")
    left = ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": enis}])
    assert left["NetworkInterfaces"] == []

    assert run_module(MODULE, absent, check=True)["changed"] is False
    assert run_module(MODULE, absent)["changed"] is False


def test_through_ansible_with_check_and_diff(run_module, emulator, lab_vpc):
    args = base_args(lab_vpc, services=["monitoring"])
    check = run_module(MODULE, args, check=True, diff=True, via="ansible")
    assert check["changed"] is True, check
    diff = check["diff"][0] if isinstance(check["diff"], list) else check["diff"]
    assert diff["after"]["monitoring"]["private_dns_enabled"] is True
    assert live_endpoints(emulator, lab_vpc["vpc_id"]) == {}
    created = run_module(MODULE, args, via="ansible")
    assert created["changed"] is True, created
    assert created["endpoints_by_service"]["monitoring"]["state"] == "available"
    assert run_module(MODULE, args, via="ansible")["changed"] is False
