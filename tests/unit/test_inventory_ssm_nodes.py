"""The ``ssm_nodes`` inventory plugin, run for real: ``ansible-inventory --list``/``--graph`` as a subprocess against
the in-process emulator (``AWS_ENDPOINT_URL``), with nodes registered and heartbeating the way the SSM agent does
(tests/lab/PROTOCOL.md), tagged with AddTagsToResource.

Every test reads its nodes from an account of its own (moto maps an IAM user's access key to its account), so the
other nodes of the shared emulator never show up. A node is ConnectionLost because its last heartbeat was sent
with the emulator's lab clock set back further than the ping timeout, or because it never sent one.

The plugin is enabled through the environment (``ANSIBLE_INVENTORY_ENABLED``); the project's ansible.cfg finds the
collection hybrid.onboard in place, and one test runs it with that ansible.cfg alone, as a user would.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "inventory" / "example" / "ssm_nodes.aws_ssm.yml"
UNIT = Path(__file__).resolve().parent
if str(UNIT) not in sys.path:
    sys.path.insert(0, str(UNIT))

import labconst  # noqa: E402  (tests/lab is on sys.path through tests/unit/conftest.py)
from lab.conftest import LabEmulator  # noqa: E402

REGION = labconst.REGION
# Direct opener: lab traffic is loopback only and must never go through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# One RSA key for every simulated agent; registration does not need unique keys.
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PUBLIC_DER = _KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)


# --- the emulator, accounts and simulated agents --------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[LabEmulator]:
    """An in-process emulator of our own: its call counter sees only this file's calls."""
    from emulator import server
    from emulator.middleware import FaultConfig

    handle = server.start_in_thread(port=0, faults=FaultConfig())
    try:
        yield LabEmulator(handle.url, handle)
    finally:
        handle.stop()


def new_account(emulator: LabEmulator, region: str = REGION) -> SimpleNamespace:
    """A fresh account: an IAM user whose key the plugin uses, the hybrid role, an activation."""
    account_id = str(100000000000 + secrets.randbelow(800000000000))
    iam = emulator.client("iam", account_id=account_id)
    iam.create_user(UserName="inventory")
    key = iam.create_access_key(UserName="inventory")["AccessKey"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName="hybrid-node", AssumeRolePolicyDocument=json.dumps(trust))
    ssm = emulator.client("ssm", account_id=account_id, region=region)
    activation = ssm.create_activation(IamRole="hybrid-node", RegistrationLimit=100)
    return SimpleNamespace(
        id=account_id,
        region=region,
        access_key=key["AccessKeyId"],
        secret_key=key["SecretAccessKey"],
        ssm=ssm,
        activation=activation,
    )


class Node:
    """A simulated SSM agent: RegisterManagedInstance, role token, UpdateInstanceInformation (the heartbeat)."""

    def __init__(self, emulator: LabEmulator, account: SimpleNamespace) -> None:
        self.url = emulator.url
        self.account = account
        self.host = f"ssm.{account.region}.amazonaws.com"
        self.instance_id = ""
        self.creds: dict[str, Any] = {}

    def _post(self, target: str, data: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
        all_headers = {"Host": self.host, "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
        all_headers.update(headers or {})
        request = urllib.request.Request(f"{self.url}/", data, all_headers, method="POST")  # noqa: S310 - loopback
        try:
            with _OPENER.open(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{target}: {exc.code} {exc.read()!r}") from exc

    def register(self) -> Node:
        body = {
            "ActivationCode": self.account.activation["ActivationCode"],
            "ActivationId": self.account.activation["ActivationId"],
            "PublicKey": base64.b64encode(_PUBLIC_DER).decode(),
            "PublicKeyType": "Rsa",
            "Fingerprint": str(uuid.uuid4()),
        }
        self.instance_id = self._post("AmazonSSM.RegisterManagedInstance", json.dumps(body).encode())["InstanceId"]
        data = json.dumps({"Fingerprint": "fp"}).encode()
        signature = base64.b64encode(_KEY.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()
        self.creds = self._post(
            "AmazonSSM.RequestManagedInstanceRoleToken",
            data,
            {"Authorization": f"SSM-RSA InstanceId={self.instance_id}, Signature={signature}"},
        )
        return self

    def heartbeat(self, **info: str) -> Node:
        body = {
            "InstanceId": self.instance_id,
            "AgentName": "amazon-ssm-agent",
            "AgentVersion": "3.3.1142.0",
            "AgentStatus": "Active",
            "PlatformType": "Linux",
            "PlatformName": "Debian GNU/Linux",
            "PlatformVersion": "12",
            **info,
        }
        data = json.dumps(body).encode()
        target = "AmazonSSM.UpdateInstanceInformation"
        request = AWSRequest(
            method="POST",
            url=f"https://{self.host}/",
            data=data,
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
        )
        creds = Credentials(self.creds["AccessKeyId"], self.creds["SecretAccessKey"], self.creds["SessionToken"])
        SigV4Auth(creds, "ssm", self.account.region).add_auth(request)
        signed = {k: v for k, v in request.headers.items() if k.lower() not in ("content-type", "x-amz-target")}
        self._post(target, data, signed)
        return self

    def tag(self, **tags: str) -> Node:
        self.account.ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId=self.instance_id,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        return self


def ping_timeout() -> float:
    from emulator import ssm_common

    return ssm_common.ping_timeout()


@contextlib.contextmanager
def in_the_past(emulator: LabEmulator, extra_seconds: float = 60) -> Iterator[None]:
    """Heartbeats sent inside are older than the ping timeout: those nodes are ConnectionLost from then on."""
    emulator.set_clock_offset(-(ping_timeout() + extra_seconds))
    try:
        yield
    finally:
        emulator.set_clock_offset(0)


# The fleet most tests read: two Online web nodes, a db node that stopped reporting, one that never reported.
WEB1 = {
    "ComputerName": "web1.fra1.example.net",
    "IPAddress": "172.16.10.11",
    "PlatformName": "Ubuntu",
    "PlatformVersion": "22.04",
}
WEB2 = {"ComputerName": "web2.ams2.example.net", "IPAddress": "172.16.10.12"}
DB1 = {"ComputerName": "db1.fra1.example.net", "IPAddress": "172.16.10.13", "AgentVersion": "3.2.582.0"}


@pytest.fixture(scope="module")
def _fleet(emulator) -> SimpleNamespace:
    account = new_account(emulator)
    with in_the_past(emulator):
        db1 = Node(emulator, account).register().heartbeat(**DB1).tag(Datacenter="fra1", Role="db", Name="db-1")
    web1 = Node(emulator, account).register().heartbeat(**WEB1).tag(Datacenter="fra1", Role="web", Name="web-1")
    web2 = Node(emulator, account).register().heartbeat(**WEB2).tag(Datacenter="ams2", Role="web", Name="web-2")
    new1 = Node(emulator, account).register()
    return SimpleNamespace(account=account, web1=web1, web2=web2, db1=db1, new1=new1)


@pytest.fixture
def fleet(_fleet) -> SimpleNamespace:
    """The fleet, with fresh heartbeats from the Online nodes (they must not age out during the module)."""
    _fleet.web1.heartbeat(**WEB1)
    _fleet.web2.heartbeat(**WEB2)
    return _fleet


# --- running ansible-inventory --------------------------------------------------------------------------------------


def inventory_env(emulator: LabEmulator, account: SimpleNamespace, plugin_enabled_by_env: bool = True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_", "BOTO_"))}
    env.update(
        AWS_ENDPOINT_URL=emulator.url,
        AWS_REGION=account.region,
        AWS_DEFAULT_REGION=account.region,
        AWS_ACCESS_KEY_ID=account.access_key,
        AWS_SECRET_ACCESS_KEY=account.secret_key,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        # Exact call counts: botocore must not retry behind the plugin's back.
        AWS_MAX_ATTEMPTS="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
    )
    if plugin_enabled_by_env:
        env.update(
            ANSIBLE_INVENTORY_ENABLED="hybrid.onboard.ssm_nodes,ansible.builtin.yaml",
        )
    return env


def write_config(tmp_path: Path, config: dict[str, Any], name: str = "fleet.ssm_nodes.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"plugin": "hybrid.onboard.ssm_nodes", **config}, sort_keys=False))
    return path


def ansible_inventory(emulator, account, source: Path, *args: str, check: bool = True, **env_options):
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), *args],
        capture_output=True,
        text=True,
        env=inventory_env(emulator, account, **env_options),
        cwd=str(ROOT),
        timeout=120, check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
        assert "Failed to parse" not in proc.stderr and "Unable to parse" not in proc.stderr, proc.stderr
        assert "DEPRECATION" not in proc.stderr, proc.stderr
    return proc


def _plain(value: Any) -> Any:
    """--list marks strings from the plugin as {"__ansible_unsafe": ...}: read them as plain values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def inventory_list(emulator, account, source: Path, *args: str, **env_options) -> dict[str, Any]:
    return _plain(json.loads(ansible_inventory(emulator, account, source, "--list", *args, **env_options).stdout))


def hostvars(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return listing["_meta"]["hostvars"]


def groups(listing: dict[str, Any]) -> dict[str, set[str]]:
    """Group -> its hosts (only groups that hold hosts directly)."""
    return {name: set(body["hosts"]) for name, body in listing.items() if name != "_meta" and body.get("hosts")}


def ssm_calls(emulator: LabEmulator, before: dict[str, dict[str, int]]) -> dict[str, int]:
    """The plugin's calls made since ``before`` (a snapshot of emulator.calls()), by action: SSM, the Tagging API
    and STS (their action names do not overlap)."""
    out = {}
    for service in ("ssm", "tagging", "sts"):
        now, old = emulator.calls().get(service, {}), before.get(service, {})
        out.update({action: count - old.get(action, 0) for action, count in now.items() if count - old.get(action, 0)})
    return out


# --- what a user sees -----------------------------------------------------------------------------------------------


def test_lists_exactly_the_hybrid_nodes_with_their_variables(emulator, fleet, tmp_path) -> None:
    source = write_config(tmp_path, {})
    before = emulator.calls()
    listing = inventory_list(emulator, fleet.account, source)
    calls = ssm_calls(emulator, before)

    hosts = hostvars(listing)
    # Whether 3.3.1142.0 is the latest agent depends on the emulator's agent bucket: AWS's answer is the truth.
    web1_row = fleet.account.ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [fleet.web1.instance_id]}]
    )["InstanceInformationList"][0]
    is_latest = web1_row["IsLatestVersion"]
    # Named by computer name; the node that never reported has none, so it is listed by its ID.
    assert set(hosts) == {
        "web1.fra1.example.net",
        "web2.ams2.example.net",
        "db1.fra1.example.net",
        fleet.new1.instance_id,
    }
    web1 = hosts["web1.fra1.example.net"]
    assert {k: v for k, v in web1.items() if k.startswith("ssm_") and "date" not in k} == {
        "ssm_instance_id": fleet.web1.instance_id,
        "ssm_resource_type": "ManagedInstance",
        "ssm_ping_status": "Online",
        "ssm_platform_type": "Linux",
        "ssm_platform_name": "Ubuntu",
        "ssm_platform_version": "22.04",
        "ssm_agent_version": "3.3.1142.0",
        "ssm_is_latest_version": is_latest,
        "ssm_ip_address": "172.16.10.11",
        "ssm_computer_name": "web1.fra1.example.net",
        "ssm_name": None,
        "ssm_activation_id": fleet.account.activation["ActivationId"],
        "ssm_iam_role": "hybrid-node",
        "ssm_association_status": None,
        "ssm_region": REGION,
        "ssm_tags": {"Datacenter": "fra1", "Role": "web", "Name": "web-1"},
    }
    assert web1["ansible_host"] == "172.16.10.11"
    assert "ansible_connection" not in web1
    last_ping = datetime.fromisoformat(web1["ssm_last_ping_date_time"])
    registered = datetime.fromisoformat(web1["ssm_registration_date"])
    assert last_ping.utcoffset() == timedelta(0) and registered.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - last_ping) < timedelta(seconds=30)
    assert registered <= last_ping

    db1 = hosts["db1.fra1.example.net"]
    assert (db1["ssm_ping_status"], db1["ssm_agent_version"], db1["ssm_tags"]["Role"]) == (
        "ConnectionLost",
        "3.2.582.0",
        "db",
    )
    assert datetime.now(UTC) - datetime.fromisoformat(db1["ssm_last_ping_date_time"]) > timedelta(
        seconds=ping_timeout()
    )
    new1 = hosts[fleet.new1.instance_id]
    assert new1["ssm_ping_status"] == "ConnectionLost"
    assert new1["ssm_last_ping_date_time"] is None and new1["ssm_platform_name"] is None
    assert new1["ssm_tags"] == {}
    assert "ansible_host" not in new1  # nothing to connect to yet

    # No groups but what the config asks for.
    assert {name for name in listing if name != "_meta"} == {"all", "ungrouped"}
    assert set(listing["ungrouped"]["hosts"]) == set(hosts)
    # One page for the whole fleet, one caller identity and one tag call for all its nodes, nothing else.
    assert calls == {"DescribeInstanceInformation": 1, "GetCallerIdentity": 1, "GetResources": 1}


def test_ping_status_online_lists_only_the_online_nodes(emulator, fleet, tmp_path) -> None:
    source = write_config(tmp_path, {"ping_status": ["Online"]})
    hosts = hostvars(inventory_list(emulator, fleet.account, source))
    assert set(hosts) == {"web1.fra1.example.net", "web2.ams2.example.net"}
    assert {v["ssm_ping_status"] for v in hosts.values()} == {"Online"}


def test_filters_are_applied_by_aws(emulator, fleet, tmp_path) -> None:
    source = write_config(tmp_path, {"filters": {"tag:Datacenter": "fra1", "PlatformTypes": ["Linux"]}})
    hosts = hostvars(inventory_list(emulator, fleet.account, source))
    assert set(hosts) == {"web1.fra1.example.net", "db1.fra1.example.net"}


def test_keyed_groups_groups_and_compose_in_the_graph(emulator, fleet, tmp_path) -> None:
    config = {
        "keyed_groups": [
            {"key": "ssm_ping_status", "prefix": "ping"},
            {"key": "ssm_tags.Datacenter", "prefix": "dc"},
        ],
        "groups": {"webservers": "ssm_tags.Role == 'web'"},
        "compose": {"ansible_host": "ssm_computer_name", "node_id": "ssm_instance_id | upper"},
    }
    source = write_config(tmp_path, config)
    graph = ansible_inventory(emulator, fleet.account, source, "--graph").stdout
    new1 = fleet.new1.instance_id
    # Groups appear in the order hosts (sorted by name) first land in them; composed groups before keyed ones.
    assert graph.splitlines() == [
        "@all:",
        "  |--@ungrouped:",
        "  |--@ping_ConnectionLost:",
        "  |  |--db1.fra1.example.net",
        f"  |  |--{new1}",
        "  |--@dc_fra1:",
        "  |  |--db1.fra1.example.net",
        "  |  |--web1.fra1.example.net",
        "  |--@webservers:",
        "  |  |--web1.fra1.example.net",
        "  |  |--web2.ams2.example.net",
        "  |--@ping_Online:",
        "  |  |--web1.fra1.example.net",
        "  |  |--web2.ams2.example.net",
        "  |--@dc_ams2:",
        "  |  |--web2.ams2.example.net",
    ]
    hosts = hostvars(inventory_list(emulator, fleet.account, source))
    # compose overrides the plugin's ansible_host (the IP address) and adds variables.
    assert hosts["web2.ams2.example.net"]["ansible_host"] == "web2.ams2.example.net"
    assert hosts["web2.ams2.example.net"]["node_id"] == fleet.web2.instance_id.upper()


def test_strict_makes_a_missing_key_an_error(emulator, fleet, tmp_path) -> None:
    # The node that never reported has no Datacenter tag: skipped without strict, an error with it.
    config = {"strict": True, "keyed_groups": [{"key": "ssm_tags.Datacenter", "prefix": "dc"}]}
    proc = ansible_inventory(emulator, fleet.account, write_config(tmp_path, config), "--graph", check=False)
    assert f"Could not generate group for host {fleet.new1.instance_id} from ssm_tags.Datacenter" in proc.stderr
    assert proc.stdout.splitlines() == ["@all:", "  |--@ungrouped:"]  # the source failed as a whole

    config["strict"] = False
    graph = ansible_inventory(emulator, fleet.account, write_config(tmp_path, config), "--graph").stdout
    assert f"  |  |--{fleet.new1.instance_id}" in graph.splitlines()  # in ungrouped, not in a dc_ group


def test_use_ssm_connection_sets_the_connection_variables(emulator, fleet, tmp_path) -> None:
    source = write_config(tmp_path, {"use_ssm_connection": True, "hostnames": ["instance_id"]})
    hosts = hostvars(inventory_list(emulator, fleet.account, source))
    nodes = (fleet.web1, fleet.web2, fleet.db1, fleet.new1)
    assert set(hosts) == {n.instance_id for n in nodes}
    for node in nodes:
        assert {
            k: hosts[node.instance_id][k] for k in ("ansible_connection", "ansible_host", "ansible_aws_ssm_region")
        } == {
            "ansible_connection": "amazon.aws.aws_ssm",
            "ansible_host": node.instance_id,
            "ansible_aws_ssm_region": REGION,
        }


def test_hostnames_preference_list(emulator, fleet, tmp_path) -> None:
    source = write_config(tmp_path, {"hostnames": ["tag:Name", "ip_address", "instance_id"]})
    hosts = hostvars(inventory_list(emulator, fleet.account, source))
    assert set(hosts) == {"web-1", "web-2", "db-1", fleet.new1.instance_id}
    assert hosts["web-1"]["ssm_instance_id"] == fleet.web1.instance_id

    source = write_config(tmp_path, {"hostnames": ["ip_address"]}, name="ip.ssm_nodes.yml")
    proc = ansible_inventory(emulator, fleet.account, source, "--list")
    hosts = hostvars(_plain(json.loads(proc.stdout)))
    assert set(hosts) == {"172.16.10.11", "172.16.10.12", "172.16.10.13"}
    # The node without an address is left out, and the user is told which one and what to do.
    assert fleet.new1.instance_id in proc.stderr and "add instance_id to hostnames" in proc.stderr


@pytest.mark.parametrize("online_listed_first", [False, True])
def test_a_host_registered_again_is_listed_once_by_its_online_node(emulator, tmp_path, online_listed_first) -> None:
    # AWS lists nodes in registration order; the Online node must win whichever comes first.
    account = new_account(emulator)
    info = {"ComputerName": "app01.fra1.example.net", "IPAddress": "172.16.10.21"}
    if online_listed_first:
        with in_the_past(emulator, extra_seconds=120):
            new = Node(emulator, account).register()
        with in_the_past(emulator):
            old = Node(emulator, account).register().heartbeat(**info)
        new.heartbeat(**info)
    else:
        with in_the_past(emulator):
            old = Node(emulator, account).register().heartbeat(**info)
        new = Node(emulator, account).register().heartbeat(**info)
    listed = [r["InstanceId"] for r in account.ssm.describe_instance_information()["InstanceInformationList"]]
    assert listed == ([new.instance_id, old.instance_id] if online_listed_first else [old.instance_id, new.instance_id])
    proc = ansible_inventory(emulator, account, write_config(tmp_path, {}), "--list")
    hosts = hostvars(_plain(json.loads(proc.stdout)))
    assert list(hosts) == ["app01.fra1.example.net"]
    assert hosts["app01.fra1.example.net"]["ssm_instance_id"] == new.instance_id
    assert old.instance_id in proc.stderr and "left out" in proc.stderr


def test_cache_answers_the_second_run_without_calling_aws(emulator, fleet, tmp_path) -> None:
    config = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")}
    source = write_config(tmp_path, config)
    before = emulator.calls()
    first = inventory_list(emulator, fleet.account, source)
    assert ssm_calls(emulator, before) == {"DescribeInstanceInformation": 1, "GetCallerIdentity": 1, "GetResources": 1}
    assert list((tmp_path / "cache").iterdir()), "nothing was cached"

    before = emulator.calls()
    second = inventory_list(emulator, fleet.account, source)
    assert ssm_calls(emulator, before) == {}
    assert hostvars(second) == hostvars(first)

    before = emulator.calls()
    inventory_list(emulator, fleet.account, source, "--flush-cache")
    assert ssm_calls(emulator, before) == {"DescribeInstanceInformation": 1, "GetCallerIdentity": 1, "GetResources": 1}

    # A changed query is not answered from the old cache entry.
    source = write_config(tmp_path, {**config, "ping_status": ["Online"]})
    before = emulator.calls()
    online = inventory_list(emulator, fleet.account, source)
    assert ssm_calls(emulator, before) == {"DescribeInstanceInformation": 1, "GetCallerIdentity": 1, "GetResources": 1}
    assert set(hostvars(online)) == {"web1.fra1.example.net", "web2.ams2.example.net"}


def test_one_describe_call_per_page_and_tags_only_when_asked(emulator, tmp_path) -> None:
    account = new_account(emulator)
    ids = {Node(emulator, account).register().instance_id for _i in range(55)}
    source = write_config(tmp_path, {"hostnames": ["instance_id"]})
    before = emulator.calls()
    hosts = hostvars(inventory_list(emulator, account, source))
    assert set(hosts) == ids
    assert ssm_calls(emulator, before) == {"DescribeInstanceInformation": 2, "GetCallerIdentity": 1, "GetResources": 1}

    source = write_config(tmp_path, {"hostnames": ["instance_id"], "tags": False})
    before = emulator.calls()
    hosts = hostvars(inventory_list(emulator, account, source))
    assert set(hosts) == ids
    assert ssm_calls(emulator, before) == {"DescribeInstanceInformation": 2}
    assert not any("ssm_tags" in v for v in hosts.values())


def test_throttling_is_retried(emulator, fleet, tmp_path) -> None:
    source = write_config(tmp_path, {"hostnames": ["instance_id"]})
    before = emulator.calls()
    # A fixed seed: the same calls are throttled on every run.
    with emulator.faults(throttle_rate=0.4, seed=1):
        hosts = hostvars(inventory_list(emulator, fleet.account, source))
    calls = ssm_calls(emulator, before)
    assert set(hosts) == {n.instance_id for n in (fleet.web1, fleet.web2, fleet.db1, fleet.new1)}
    assert hosts[fleet.db1.instance_id]["ssm_tags"] == {"Datacenter": "fra1", "Role": "db", "Name": "db-1"}
    # Some calls were throttled (botocore does not retry here: AWS_MAX_ATTEMPTS=1) and the plugin retried them.
    assert sum(calls.values()) > 3, calls


def test_denied_tagging_api_reads_each_node_with_a_warning(emulator, fleet, tmp_path, monkeypatch) -> None:
    from moto.resourcegroupstaggingapi.exceptions import ResourceGroupsTaggingAPIError
    from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse

    def denied(self):
        raise ResourceGroupsTaggingAPIError("AccessDeniedException", "not authorized to perform: tag:GetResources")

    monkeypatch.setattr(ResourceGroupsTaggingAPIResponse, "get_resources", denied)
    source = write_config(tmp_path, {"hostnames": ["instance_id"]})
    before = emulator.calls()
    proc = ansible_inventory(emulator, fleet.account, source, "--list")
    hosts = hostvars(_plain(json.loads(proc.stdout)))
    assert "tag:GetResources is denied" in proc.stderr, proc.stderr
    assert hosts[fleet.db1.instance_id]["ssm_tags"] == {"Datacenter": "fra1", "Role": "db", "Name": "db-1"}
    assert ssm_calls(emulator, before) == {
        "DescribeInstanceInformation": 1, "GetCallerIdentity": 1, "GetResources": 1, "ListTagsForResource": 4
    }


@pytest.fixture
def ec2_node_in(monkeypatch):
    """``ec2_node_in(account)``: SSM also reports an EC2 instance (i-...) in that account, honouring the
    ResourceType and PingStatus filters as AWS does. The emulator runs in this process, so this patches it."""
    from emulator import ssm_fleet

    original = ssm_fleet.describe_instance_information

    def install(account: SimpleNamespace) -> dict[str, Any]:
        row = {
            "InstanceId": "i-0123456789abcdef0",
            "PingStatus": "Online",
            "LastPingDateTime": datetime.now(UTC),
            "AgentVersion": "3.3.1142.0",
            "IsLatestVersion": True,
            "PlatformType": "Linux",
            "PlatformName": "Amazon Linux",
            "PlatformVersion": "2023",
            "ResourceType": "EC2Instance",
            "IPAddress": "10.0.1.5",
            "ComputerName": "ip-10-0-1-5.eu-west-1.compute.internal",
            "SourceId": "i-0123456789abcdef0",
            "SourceType": "AWS::EC2::Instance",
        }

        def describe(st, p):
            result = original(st, p)
            wanted = {f["Key"]: f["Values"] for f in p.get("Filters") or []}
            if (
                st.account_id == account.id
                and "EC2Instance" in wanted.get("ResourceType", ["EC2Instance"])
                and "Online" in wanted.get("PingStatus", ["Online"])
                and not p.get("NextToken")
            ):
                result["InstanceInformationList"].append(row)
            return result

        monkeypatch.setattr(ssm_fleet, "describe_instance_information", describe)
        return row

    return install


def test_ec2_instances_only_with_include_ec2(emulator, fleet, tmp_path, ec2_node_in) -> None:
    ec2 = ec2_node_in(fleet.account)
    hybrid = {"web1.fra1.example.net", "web2.ams2.example.net", "db1.fra1.example.net", fleet.new1.instance_id}

    hosts = hostvars(inventory_list(emulator, fleet.account, write_config(tmp_path, {})))
    assert set(hosts) == hybrid

    before = emulator.calls()
    source = write_config(tmp_path, {"include_ec2": True}, name="ec2.ssm_nodes.yml")
    hosts = hostvars(inventory_list(emulator, fleet.account, source))
    assert set(hosts) == hybrid | {ec2["ComputerName"]}
    node = hosts[ec2["ComputerName"]]
    assert (node["ssm_instance_id"], node["ssm_resource_type"]) == ("i-0123456789abcdef0", "EC2Instance")
    # SSM holds no tags for EC2 instances: not asked for them, and no empty ssm_tags that would look like "none".
    assert "ssm_tags" not in node
    calls = ssm_calls(emulator, before)
    assert calls["GetResources"] == 1 and "ListTagsForResource" not in calls, calls


BAD_OPTIONS = [
    pytest.param(
        {"hostnames": ["bogus"]},
        "hostnames: 'bogus' is not allowed; use computer_name, ip_address, instance_id or tag:<Key>",
        id="hostnames-bogus",
    ),
    pytest.param(
        {"hostnames": ["tag:Name"], "tags": False},
        "hostnames: tag:Name needs the tags; set tags: true",
        id="hostnames-tag-without-tags",
    ),
    pytest.param(
        {"filters": {"PingStatus": ["Online"]}},
        "filters: put ping statuses in the ping_status option",
        id="filters-pingstatus",
    ),
    pytest.param(
        {"filters": {"ResourceType": "EC2Instance"}},
        "set include_ec2: true",
        id="filters-ec2-without-include-ec2",
    ),
    pytest.param({"ping_status": ["Sleeping"]}, "ping_status", id="ping-status-choice"),
]


@pytest.mark.parametrize(("config", "message"), BAD_OPTIONS)
def test_a_bad_option_is_a_clear_error_before_any_aws_call(emulator, fleet, tmp_path, config, message) -> None:
    source = write_config(tmp_path, config)
    before = emulator.calls()
    proc = ansible_inventory(emulator, fleet.account, source, "--list", check=False)
    assert message in proc.stderr
    assert ssm_calls(emulator, before) == {}
    assert fleet.web1.instance_id not in proc.stdout
    # With unparsed sources made fatal (as CI should), the run fails.
    env = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"}
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        env={**inventory_env(emulator, fleet.account), **env},
        cwd=str(ROOT),
        timeout=120, check=False,
    )
    assert proc.returncode != 0 and message in proc.stderr


def test_filters_aws_rejects_name_the_option(emulator, fleet, tmp_path) -> None:
    source = write_config(tmp_path, {"filters": {"Bogus": "x"}})
    proc = ansible_inventory(emulator, fleet.account, source, "--list", check=False)
    assert "filters: AWS rejected the filters" in proc.stderr and "Bogus" in proc.stderr


def test_the_project_ansible_cfg_alone_finds_the_plugin(emulator, fleet, tmp_path) -> None:
    # ansible.cfg enables hybrid.onboard.ssm_nodes, found in place as the collection; ansible.builtin.auto (enabled)
    # reads `plugin:` too.
    source = write_config(tmp_path, {"ping_status": ["Online"]})
    listing = inventory_list(emulator, fleet.account, source, plugin_enabled_by_env=False)
    assert set(hostvars(listing)) == {"web1.fra1.example.net", "web2.ams2.example.net"}


@pytest.mark.parametrize(
    ("name", "body", "accepted"),
    [
        ("dc.ssm_nodes.yml", {"plugin": "hybrid.onboard.ssm_nodes"}, True),
        ("dc.ssm_nodes.yaml", {"plugin": "hybrid.onboard.ssm_nodes"}, True),
        ("dc.aws_ssm.yml", {"plugin": "hybrid.onboard.ssm_nodes"}, True),
        ("aws_ssm.yaml", {"plugin": "hybrid.onboard.ssm_nodes"}, True),
        ("dc.yml", {"plugin": "hybrid.onboard.ssm_nodes"}, False),
        ("dc.aws_ec2.yml", {"plugin": "hybrid.onboard.ssm_nodes"}, False),
        ("dc.aws_ssm.yml", {"plugin": "amazon.aws.aws_ec2"}, False),
    ],
)
def test_verify_file(plugin, tmp_path, name, body, accepted) -> None:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    assert plugin("inventory", "ssm_nodes").InventoryModule().verify_file(str(path)) is accepted


# --- documentation and the shipped example --------------------------------------------------------------------------


def test_documentation_is_complete_and_renders(plugin) -> None:
    module = plugin("inventory", "ssm_nodes")
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["name"] == "ssm_nodes" and doc["short_description"] and doc["description"]
    own = {"plugin", "regions", "filters", "ping_status", "include_ec2", "hostnames", "tags", "use_ssm_connection"}
    assert set(doc["options"]) == own
    for name, option in doc["options"].items():
        assert option.get("description") and option.get("type"), name
    examples = list(yaml.safe_load_all(module.EXAMPLES))
    assert examples and all(e["plugin"] == "hybrid.onboard.ssm_nodes" for e in examples)

    proc = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "inventory", "hybrid.onboard.ssm_nodes"],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        cwd=str(ROOT),
        timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for option in (*own, "keyed_groups", "compose", "cache", "region", "profile", "assume_role_arn"):
        assert re.search(rf"^[ =-]+{option}\s", proc.stdout, re.MULTILINE), option


def latest_agent_version(emulator: LabEmulator, region: str) -> str | None:
    """The emulator's latest agent: latest/VERSION of the agent bucket when some test seeded it (S3 bucket names
    are global, so any account sees it); else HYBRID_LAB_SSM_AGENT_LATEST."""
    from botocore.exceptions import ClientError

    try:
        body = emulator.client("s3", region=region).get_object(Bucket=f"amazon-ssm-{region}", Key="latest/VERSION")
    except ClientError:
        return None
    return body["Body"].read().decode().strip()


@pytest.fixture
def example_site(emulator, monkeypatch) -> SimpleNamespace:
    """The example's site (eu-central-1, HybridName dc-onboard): two nodes tagged as the ssm_agent role tags them,
    one with an outdated agent, and a node of another site that the example's filter must leave out."""
    monkeypatch.setenv("HYBRID_LAB_SSM_AGENT_LATEST", "3.3.1142.0")
    account = new_account(emulator, region="eu-central-1")
    latest = latest_agent_version(emulator, account.region) or "3.3.1142.0"
    app01 = (
        Node(emulator, account)
        .register()
        .heartbeat(
            ComputerName="app01",
            IPAddress="192.168.10.11",
            PlatformName="Ubuntu",
            PlatformVersion="22.04",
            AgentVersion=latest,
        )
        .tag(ManagedBy="hybrid-onboard", HybridName="dc-onboard", Hostname="app01.fra1.example.net", Datacenter="fra1")
    )
    app02 = (
        Node(emulator, account)
        .register()
        .heartbeat(ComputerName="app01", IPAddress="192.168.20.11", AgentVersion="1.0.0.0")
        .tag(ManagedBy="hybrid-onboard", HybridName="dc-onboard", Hostname="app01.ams2.example.net", Datacenter="ams2")
    )
    other = Node(emulator, account).register().heartbeat(ComputerName="x1").tag(HybridName="other-site")
    return SimpleNamespace(account=account, app01=app01, app02=app02, other=other)


def test_the_example_config_works_as_shipped(emulator, example_site) -> None:
    listing = inventory_list(emulator, example_site.account, EXAMPLE)
    hosts = hostvars(listing)
    assert set(hosts) == {"app01.fra1.example.net", "app01.ams2.example.net"}
    assert groups(listing) == {
        "ssm_ping_Online": {"app01.fra1.example.net", "app01.ams2.example.net"},
        "ssm_os_Ubuntu": {"app01.fra1.example.net"},
        "ssm_os_Debian_GNU_Linux": {"app01.ams2.example.net"},
        "dc_fra1": {"app01.fra1.example.net"},
        "dc_ams2": {"app01.ams2.example.net"},
        "ssm_agent_outdated": {"app01.ams2.example.net"},
    }
    assert hosts["app01.fra1.example.net"]["ssm_instance_id"] == example_site.app01.instance_id


def test_the_example_joins_the_static_hosts_of_its_directory(emulator, example_site) -> None:
    # `-i inventory/example` loads hosts.yml and the plugin config: SSM variables land on the static hosts.
    listing = inventory_list(emulator, example_site.account, EXAMPLE.parent)
    hosts = hostvars(listing)
    app01 = hosts["app01.fra1.example.net"]
    assert app01["ssm_instance_id"] == example_site.app01.instance_id
    assert app01["hybrid_tags"] == {"Datacenter": "fra1"}  # from hosts.yml
    assert "app01.fra1.example.net" in groups(listing)["dc_fra1"]
    assert len(hosts) == 1 + 2 + 40 + 20  # localhost, the DNS servers, the app hosts: no host added or lost
