"""route53_resolver_endpoint(_info) run for real (child process, as Ansible runs it) against the emulator."""

from __future__ import annotations

import ipaddress
import uuid

import pytest

MODULE = "route53_resolver_endpoint"
INFO = "route53_resolver_endpoint_info"


@pytest.fixture
def endpoint_name(emulator):
    """A unique name; whatever the test leaves behind is deleted (moto allows few endpoints per region)."""
    name = f"test-inbound-{uuid.uuid4().hex[:8]}"
    yield name
    client = emulator.client("route53resolver")
    for endpoint in client.list_resolver_endpoints()["ResolverEndpoints"]:
        if endpoint["Name"] == name:
            client.delete_resolver_endpoint(ResolverEndpointId=endpoint["Id"])


def base_args(vpc, name, **extra):
    args = {
        "name": name,
        "direction": "INBOUND",
        "security_group_ids": [vpc["sg"]],
        "ip_addresses": [{"subnet_id": vpc["subnets"]["a"]}, {"subnet_id": vpc["subnets"]["b"]}],
    }
    args.update(extra)
    return args


def live(emulator, name):
    client = emulator.client("route53resolver")
    found = [e for e in client.list_resolver_endpoints()["ResolverEndpoints"] if e["Name"] == name]
    if not found:
        return None
    endpoint = found[0]
    endpoint["IpAddresses"] = client.list_resolver_endpoint_ip_addresses(ResolverEndpointId=endpoint["Id"])[
        "IpAddresses"
    ]
    endpoint["Tags"] = {
        t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceArn=endpoint["Arn"])["Tags"]
    }
    return endpoint


def test_check_create_check_rerun(tools, run_module, emulator, lab_vpc, endpoint_name, plugin):
    args = base_args(lab_vpc, endpoint_name, tags={"Name": endpoint_name})
    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True, check
    assert check["resolver_endpoint"]["status"] == "would be created"
    assert check["diff"]["after"]["direction"] == "INBOUND"
    assert tools.mutations(emulator.calls()) == {}
    assert live(emulator, endpoint_name) is None

    created = run_module(MODULE, args, diff=True)
    assert created["changed"] is True, created
    assert set(created) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    endpoint = created["resolver_endpoint"]
    actual = live(emulator, endpoint_name)
    assert endpoint["id"] == actual["Id"]
    assert endpoint["status"] == "OPERATIONAL"
    assert endpoint["host_vpc_id"] == lab_vpc["vpc_id"]
    assert endpoint["security_group_ids"] == [lab_vpc["sg"]]
    assert endpoint["tags"] == {"Name": endpoint_name}
    assert created["ip_addresses"] == sorted((ip["Ip"] for ip in actual["IpAddresses"]), key=ipaddress.ip_address)
    assert {a["subnet_id"] for a in endpoint["ip_addresses"]} == {lab_vpc["subnets"]["a"], lab_vpc["subnets"]["b"]}
    # CreatorRequestId comes from the name, so a create retried after a lost response finds the first one.
    assert actual["CreatorRequestId"] == plugin("modules", MODULE).creator_request_id(endpoint_name)

    emulator.reset_calls()
    assert run_module(MODULE, args, check=True)["changed"] is False
    rerun = run_module(MODULE, dict(args, protocols=["Do53"]))
    assert rerun["changed"] is False
    assert rerun["resolver_endpoint"]["id"] == endpoint["id"]
    assert tools.mutations(emulator.calls()) == {}


def test_modify_addresses_and_tags_in_place(tools, run_module, emulator, lab_vpc, endpoint_name):
    args = base_args(lab_vpc, endpoint_name, tags={"Name": "a", "Old": "x"})
    endpoint_id = run_module(MODULE, args)["resolver_endpoint"]["id"]
    steps = [
        ("add an address in AZ c", {"ip_addresses": args["ip_addresses"] + [{"subnet_id": lab_vpc["subnets"]["c"]}]}),
        (
            "fixed address instead of the AZ a one",
            {
                "ip_addresses": [
                    {"subnet_id": lab_vpc["subnets"]["a"], "ip": "10.20.1.53"},
                    {"subnet_id": lab_vpc["subnets"]["b"]},
                    {"subnet_id": lab_vpc["subnets"]["c"]},
                ]
            },
        ),
        (
            "drop AZ c",
            {
                "ip_addresses": [
                    {"subnet_id": lab_vpc["subnets"]["a"], "ip": "10.20.1.53"},
                    {"subnet_id": lab_vpc["subnets"]["b"]},
                ]
            },
        ),
        ("tags", {"tags": {"Name": "b"}}),
    ]
    for what, change in steps:
        args.update(change)
        emulator.reset_calls()
        check = run_module(MODULE, args, check=True, diff=True)
        assert check["changed"] is True, what
        assert check["diff"]["after"], what
        assert tools.mutations(emulator.calls()) == {}, what
        result = run_module(MODULE, args, diff=True)
        assert result["changed"] is True, what
        calls = tools.mutations(emulator.calls())
        assert "route53resolver:CreateResolverEndpoint" not in calls, what
        assert "route53resolver:DeleteResolverEndpoint" not in calls, what
        assert result["resolver_endpoint"]["id"] == endpoint_id, what
        assert run_module(MODULE, args)["changed"] is False, what

    actual = live(emulator, endpoint_name)
    ips = {ip["Ip"]: ip["SubnetId"] for ip in actual["IpAddresses"]}
    assert len(ips) == 2
    assert ips["10.20.1.53"] == lab_vpc["subnets"]["a"]
    assert set(ips.values()) == {lab_vpc["subnets"]["a"], lab_vpc["subnets"]["b"]}
    assert actual["Tags"] == {"Name": "b"}
    assert result["ip_addresses"] == sorted(ips, key=ipaddress.ip_address)


def test_unset_parameters_are_left_alone(tools, run_module, emulator, lab_vpc, endpoint_name):
    run_module(MODULE, base_args(lab_vpc, endpoint_name, tags={"Owner": "ops"}))
    emulator.reset_calls()
    result = run_module(MODULE, {"name": endpoint_name})
    assert result["changed"] is False
    assert result["resolver_endpoint"]["tags"] == {"Owner": "ops"}
    assert len(result["ip_addresses"]) == 2
    assert tools.mutations(emulator.calls()) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"direction": "OUTBOUND"}, "the direction cannot change"),
        ({"security_group_ids": ["SG2"]}, "cannot change the security groups"),
    ],
)
def test_what_aws_cannot_change_fails_clearly(tools, run_module, emulator, lab_vpc, endpoint_name, change, message):
    run_module(MODULE, base_args(lab_vpc, endpoint_name))
    args = base_args(lab_vpc, endpoint_name, **change)
    if args["security_group_ids"] == ["SG2"]:
        args["security_group_ids"] = [lab_vpc["sg2"]]
    emulator.reset_calls()
    result = run_module(MODULE, args)
    assert result.get("failed"), result
    assert message in result["msg"]
    assert tools.mutations(emulator.calls()) == {}


def _addresses(vpc, spec):
    return [{"subnet_id": vpc["subnets"][key], **({"ip": ip} if ip else {})} for key, ip in spec]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([("a", None)], "needs 2 to 20 addresses, got 1"),
        ([("a", None), ("b", None)] * 11, "needs 2 to 20 addresses, got 22"),
        ([("a", None), ("a2", None)], "at least two availability zones"),
        ([("a", "10.20.9.9"), ("b", None)], "10.20.9.9 is not an address of"),
        ([("a", "10.20.1.9"), ("b", "10.20.1.9")], "an ip is listed twice"),
    ],
)
def test_invalid_addresses_fail_before_any_change(tools, run_module, emulator, lab_vpc, endpoint_name, spec, message):
    args = base_args(lab_vpc, endpoint_name, ip_addresses=_addresses(lab_vpc, spec))
    emulator.reset_calls()
    result = run_module(MODULE, args)
    assert result.get("failed"), result
    assert message in result["msg"], result["msg"]
    assert tools.mutations(emulator.calls()) == {}
    assert live(emulator, endpoint_name) is None


def test_addresses_in_two_vpcs_fail_before_any_change(tools, run_module, emulator, lab_vpc, endpoint_name):
    other = tools.make_vpc(emulator)
    args = base_args(lab_vpc, endpoint_name)
    args["ip_addresses"][1]["subnet_id"] = other["subnets"]["b"]
    emulator.reset_calls()
    result = run_module(MODULE, args)
    assert "several VPCs" in result["msg"]
    assert tools.mutations(emulator.calls()) == {}


def test_create_needs_direction_groups_and_addresses(tools, run_module, emulator, endpoint_name):
    emulator.reset_calls()
    result = run_module(MODULE, {"name": endpoint_name})
    assert result.get("failed")
    assert "direction, security_group_ids, ip_addresses required" in result["msg"]
    assert tools.mutations(emulator.calls()) == {}


def test_delete_then_absent_is_unchanged(tools, run_module, emulator, lab_vpc, endpoint_name):
    run_module(MODULE, base_args(lab_vpc, endpoint_name))
    absent = {"name": endpoint_name, "state": "absent"}
    emulator.reset_calls()
    check = run_module(MODULE, absent, check=True, diff=True)
    assert check["changed"] is True
    assert check["diff"]["before"]["name"] == endpoint_name
    assert tools.mutations(emulator.calls()) == {}
    assert live(emulator, endpoint_name) is not None

    deleted = run_module(MODULE, absent)
    assert deleted["changed"] is True
    assert deleted["resolver_endpoint"] == {}
    assert deleted["ip_addresses"] == []
    assert live(emulator, endpoint_name) is None
    assert run_module(MODULE, absent, check=True)["changed"] is False
    assert run_module(MODULE, absent)["changed"] is False


def test_info_finds_by_any_combination(tools, run_module, emulator, lab_vpc, endpoint_name):
    created = run_module(MODULE, base_args(lab_vpc, endpoint_name, tags={"Name": endpoint_name}))["resolver_endpoint"]
    queries = [
        {"name": endpoint_name},
        {"resolver_endpoint_id": created["id"]},
        {"direction": "INBOUND", "vpc_id": lab_vpc["vpc_id"]},
        {"resolver_endpoint_id": created["id"], "vpc_id": lab_vpc["vpc_id"], "name": endpoint_name},
    ]
    for query in queries:
        emulator.reset_calls()
        result = run_module(INFO, query, check=True)
        assert result["changed"] is False
        assert set(result) - tools.STANDARD_KEYS == tools.return_keys(INFO)
        assert [e["id"] for e in result["resolver_endpoints"]] == [created["id"]], query
        found = result["resolver_endpoints"][0]
        assert sorted(a["ip"] for a in found["ip_addresses"]) == sorted(a["ip"] for a in created["ip_addresses"])
        assert found["tags"] == {"Name": endpoint_name}
        assert tools.mutations(emulator.calls()) == {}
    for query in (
        {"name": endpoint_name, "direction": "OUTBOUND"},
        {"resolver_endpoint_id": created["id"], "vpc_id": "vpc-00000000000000000"},
        {"resolver_endpoint_id": "rslvr-in-00000000000000000"},
        {"name": "no-such-endpoint"},
    ):
        assert run_module(INFO, query)["resolver_endpoints"] == [], query
