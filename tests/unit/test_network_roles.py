"""The network phase's pure pieces and the route53_zone_vpc_association module.

- the preflight filters (plugins/filter/hybrid_network.py);
- the three roles' interfaces: `main` and `preflight` entry points share one option list, the S3 mode has the
  same two choices everywhere, the default services are the seven the agents need;
- the regional-name pattern the S3 zone's alias target is picked with;
- route53_zone_vpc_association run through Ansible (ad-hoc, as a user would) against the in-thread emulator:
  same account, across accounts (temporary credentials of an assumed role select the moto account),
  check mode, idempotency, removal, the last-VPC rule, and RETURN matching what the module returns.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("aws_endpoints", "aws_resolver_inbound", "aws_s3_private_dns")
REGION = "eu-west-1"
VPC_A = "vpc-0c0ffee0000000001"  # seeded by the emulator in the default account
ACCOUNT_B = "222222222222"


# --- filters ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net():
    from plugin_loader import load_plugin

    return load_plugin("filter", "hybrid_network")


@pytest.mark.parametrize("value", ["172.16.10.0/24", "10.0.0.0/8", "192.168.1.53/32", "0.0.0.0/0"])
def test_valid_ipv4_cidrs_pass(net, value):
    assert net.invalid_ipv4_cidrs([value]) == []


@pytest.mark.parametrize(
    "value",
    ["172.16.10.0/33", "172.16.10.5/24", "172.16.10.0", "dns1.example.net", "fd00::/8", "", None, 42, "300.1.1.0/24"],
)
def test_malformed_cidrs_are_named(net, value):
    assert net.invalid_ipv4_cidrs(["10.0.0.0/16", value]) == [value]


def test_a_single_string_counts_as_one_entry(net):
    assert net.invalid_ipv4_cidrs("10.0.0.0/33") == ["10.0.0.0/33"]
    assert net.invalid_ipv4_cidrs(None) == []


def test_host_addresses_become_slash_32(net):
    assert net.ipv4_host_cidrs(["172.16.10.53", "10.1.1.0/24", " 10.2.2.2 "]) == [
        "172.16.10.53/32", "10.1.1.0/24", "10.2.2.2/32"]
    assert net.ipv4_host_cidrs(None) == []


def test_filters_are_registered(net):
    assert set(net.FilterModule().filters()) == {"invalid_ipv4_cidrs", "ipv4_host_cidrs"}


# --- role interfaces --------------------------------------------------------------------------------


def _specs(role):
    return yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


@pytest.mark.parametrize("role", ROLES)
def test_preflight_checks_the_same_options_as_main(role):
    specs = _specs(role)
    assert specs["preflight"]["options"] == specs["main"]["options"]
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    required = {name for name, opt in specs["main"]["options"].items() if opt.get("required")}
    assert set(defaults) == set(specs["main"]["options"]) - required
    assert required >= {f"{role}_region", f"{role}_vpc_id"}


def test_s3_mode_has_the_same_two_choices_in_both_roles():
    endpoints = _specs("aws_endpoints")["main"]["options"]["aws_endpoints_s3_private_dns_mode"]
    s3 = _specs("aws_s3_private_dns")["main"]["options"]["aws_s3_private_dns_mode"]
    assert endpoints["choices"] == s3["choices"] == ["hosted_zone", "endpoint_private_dns"]
    assert endpoints["default"] == s3["default"] == "hosted_zone"


def test_the_playbooks_give_both_roles_the_sites_one_s3_mode():
    mapped = yaml.safe_load((ROOT / "playbooks" / "group_vars" / "all" / "roles.yml").read_text())
    assert mapped["aws_endpoints_s3_private_dns_mode"] == mapped["aws_s3_private_dns_mode"] == (
        "{{ hybrid_s3_private_dns_mode | default('hosted_zone') }}")


def test_default_services_are_the_seven_the_agents_need():
    defaults = yaml.safe_load((ROOT / "roles" / "aws_endpoints" / "defaults" / "main.yml").read_text())
    assert defaults["aws_endpoints_services"] == ["ssm", "ssmmessages", "ec2messages", "kms", "s3", "logs",
                                                  "monitoring"]
    assert defaults["aws_endpoints_extra_services"] == []


def test_regional_pattern_picks_the_regional_s3_name_only():
    pattern = yaml.safe_load((ROOT / "roles" / "aws_s3_private_dns" / "vars" / "main.yml").read_text())[
        "_aws_s3_private_dns_regional_re"]
    regional = "*.vpce-0c93f8adb62e2136e-89iz2rfv.s3.eu-west-1.vpce.amazonaws.com"
    assert re.match(pattern, regional)
    assert not re.match(pattern, "*.vpce-0c93f8adb62e2136e-89iz2rfv-eu-west-1a.s3.eu-west-1.vpce.amazonaws.com")
    assert not re.match(pattern, "s3.eu-west-1.amazonaws.com")
    assert not re.match(pattern, "vpce-0204a18362a354f8e-0vx6r0es.ssm.eu-west-1.vpce.amazonaws.com")


# --- route53_zone_vpc_association through Ansible ----------------------------------------------------


@pytest.fixture(scope="module")
def emulator_url():
    from emulator import server
    from emulator.middleware import FaultConfig

    handle = server.start_in_thread(port=0, faults=FaultConfig())
    try:
        yield handle.url
    finally:
        handle.stop()


def _client(url, service, account_id=None):
    client = boto3.client(service, endpoint_url=url, region_name=REGION,
                          aws_access_key_id="labaccesskey", aws_secret_access_key="labsecretkey")
    if account_id:
        client.meta.events.register(
            "before-sign", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account_id))
    return client


def _module(url, args, check=False):
    env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
               AWS_ACCESS_KEY_ID="labaccesskey", AWS_SECRET_ACCESS_KEY="labsecretkey",
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               # ansible.cfg's empty `callbacks_enabled =` breaks ansible-core 2.19; any real callback avoids it.
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer")
    argv = [str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + str(ROOT / ".venv" / "bin" / "python"),
            "-m", "hybrid.onboard.route53_zone_vpc_association", "-a", json.dumps(args)]
    if check:
        argv += ["--check", "--diff"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=120, check=False)
    try:
        # The JSON document comes first; the timer callback (see ANSIBLE_CALLBACKS_ENABLED) prints after it.
        payload, _end = json.JSONDecoder().raw_decode(done.stdout.lstrip())
        return payload["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(f"no module result:\n{done.stdout}\n{done.stderr}") from exc


def _lab_calls(url):
    """Route 53 calls the emulator counted so far, by action."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/_lab/calls", timeout=10) as response:  # noqa: S310 - the emulator's own URL
        return json.loads(response.read()).get("route53", {})


@pytest.fixture
def zone(emulator_url):
    """A private zone of account A (the default account) associated with the seeded VPC."""
    r53 = _client(emulator_url, "route53")
    name = f"z{uuid.uuid4().hex[:8]}.example.internal"
    created = r53.create_hosted_zone(Name=name, CallerReference=name, HostedZoneConfig={"PrivateZone": True},
                                     VPC={"VPCRegion": REGION, "VPCId": VPC_A})
    return created["HostedZone"]["Id"].rsplit("/", 1)[-1]


def _zone_vpcs(url, zone_id):
    return sorted(v["VPCId"] for v in _client(url, "route53").get_hosted_zone(Id=zone_id)["VPCs"])


def test_same_account_association_check_run_rerun_absent(emulator_url, zone):
    vpc = _client(emulator_url, "ec2").create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    args = {"hosted_zone_id": zone, "vpc_id": vpc}

    checked = _module(emulator_url, args, check=True)
    assert checked["changed"] is True and checked["associated"] is True
    assert _zone_vpcs(emulator_url, zone) == [VPC_A]

    done = _module(emulator_url, args)
    assert done["changed"] is True and done["cross_account"] is False
    assert _zone_vpcs(emulator_url, zone) == sorted([VPC_A, vpc])
    assert {v["vpc_id"] for v in done["vpcs"]} == {VPC_A, vpc}

    again = _module(emulator_url, args)
    assert again["changed"] is False

    removed = _module(emulator_url, {**args, "state": "absent"})
    assert removed["changed"] is True and removed["associated"] is False
    assert _zone_vpcs(emulator_url, zone) == [VPC_A]
    assert _module(emulator_url, {**args, "state": "absent"})["changed"] is False


def test_cross_account_association_authorizes_associates_and_cleans_up(emulator_url, zone):
    vpc_b = _client(emulator_url, "ec2", ACCOUNT_B).create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    creds = _client(emulator_url, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT_B}:role/share", RoleSessionName="unit")["Credentials"]
    args = {"hosted_zone_id": zone, "vpc_id": vpc_b, "vpc_region": REGION,
            "vpc_owner_access_key": creds["AccessKeyId"], "vpc_owner_secret_key": creds["SecretAccessKey"],
            "vpc_owner_session_token": creds["SessionToken"]}

    lab_calls = _lab_calls(emulator_url)
    done = _module(emulator_url, args)
    assert done["changed"] is True and done["cross_account"] is True, done
    made = {a: n - lab_calls.get(a, 0) for a, n in _lab_calls(emulator_url).items() if n != lab_calls.get(a, 0)}
    assert made == {"GetHostedZone": 2, "CreateVPCAssociationAuthorization": 1, "AssociateVPCWithHostedZone": 1,
                    "DeleteVPCAssociationAuthorization": 1}
    assert _zone_vpcs(emulator_url, zone) == sorted([VPC_A, vpc_b])
    r53 = _client(emulator_url, "route53")
    assert r53.list_vpc_association_authorizations(HostedZoneId=zone)["VPCs"] == []
    assert "vpc_owner_secret_key" not in json.dumps(done.get("diff", {}))
    assert done["invocation"]["module_args"]["vpc_owner_secret_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

    assert _module(emulator_url, args)["changed"] is False

    # A leftover authorization (e.g. an interrupted run) is removed with the association.
    r53.create_vpc_association_authorization(HostedZoneId=zone, VPC={"VPCId": vpc_b, "VPCRegion": REGION})
    removed = _module(emulator_url, {**args, "state": "absent"})
    assert removed["changed"] is True
    assert _zone_vpcs(emulator_url, zone) == [VPC_A]
    assert r53.list_vpc_association_authorizations(HostedZoneId=zone)["VPCs"] == []


def test_the_last_vpc_of_a_zone_is_not_removed(emulator_url, zone):
    result = _module(emulator_url, {"hosted_zone_id": zone, "vpc_id": VPC_A, "state": "absent"})
    assert result.get("failed") is True
    assert "last VPC" in result["msg"]
    assert _zone_vpcs(emulator_url, zone) == [VPC_A]


def test_unknown_zone_fails_naming_the_option(emulator_url):
    result = _module(emulator_url, {"hosted_zone_id": "ZNOSUCHZONE0000", "vpc_id": VPC_A})
    assert result.get("failed") is True
    assert "hosted_zone_id" in result["msg"]


def test_returned_keys_match_return_documentation(emulator_url, zone):
    from plugin_loader import load_plugin

    documented = set(yaml.safe_load(load_plugin("modules", "route53_zone_vpc_association").RETURN))
    result = _module(emulator_url, {"hosted_zone_id": zone, "vpc_id": VPC_A})
    returned = set(result) - {"changed", "invocation", "diff", "_ansible_no_log", "action", "failed",
                              "warnings", "deprecations"}
    assert returned == documented
