"""Root-only test of the VPC-side follower (`python -m vpcside`): against a real moto server and a
throwaway network namespace, an interface endpoint created in moto brings its ENI IPs up with
HTTPS behind them, an INBOUND Resolver endpoint brings up DNS, and deleting the endpoint takes its
addresses down again. Skipped when not root (it creates a network namespace)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import labconst
import pytest
from moto.server import ThreadedMotoServer

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a network namespace and addresses"),
]

R = labconst.REGION
LAB_DIR = Path(__file__).resolve().parents[2] / "lab"


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=check)


@pytest.fixture
def namespace():
    name = f"holab-test-vs{secrets.token_hex(3)}"
    _run("ip", "netns", "add", name)
    try:
        # A veth pair with both ends inside keeps vpc0 up without touching the root namespace.
        _run("ip", "-n", name, "link", "add", "vpc0", "type", "veth", "peer", "name", "vpc0p")
        for link in ("lo", "vpc0", "vpc0p"):
            _run("ip", "-n", name, "link", "set", link, "up")
        _run("ip", "-n", name, "addr", "add", f"{labconst.VPC_NS_BASE_IP}/16", "dev", "vpc0")
        yield name
    finally:
        _run("ip", "netns", "del", name, check=False)


@pytest.fixture
def moto():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _addresses(ns: str) -> set[str]:
    data = json.loads(_run("ip", "-n", ns, "-j", "addr", "show", "dev", "vpc0").stdout)
    return {
        a["local"]
        for link in data
        for a in link["addr_info"]
        if a["family"] == "inet" and a["prefixlen"] == 32
    }


def _wait(predicate, what: str, log: Path, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    # Whoever cleans the lab by deleting every holab-* namespace also takes this test's namespace.
    gone = "" if any(Path("/run/netns").glob("holab-test-vs*")) else " (the test namespace was deleted)"
    pytest.fail(f"timed out waiting for {what}{gone}; follower log:\n{log.read_text()[-3000:]}")


def test_follower_brings_endpoint_ips_up_and_down(namespace: str, moto: str, tmp_path: Path) -> None:
    kw = {
        "endpoint_url": moto,
        "region_name": R,
        "aws_access_key_id": labconst.ACCESS_KEY,
        "aws_secret_access_key": labconst.SECRET_KEY,
    }
    ec2, r53r = boto3.client("ec2", **kw), boto3.client("route53resolver", **kw)
    vpc = ec2.create_vpc(CidrBlock=labconst.VPC_CIDR)["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for _id, az, cidr in labconst.SUBNETS
    ]
    sg = ec2.create_security_group(GroupName="vpce", Description="endpoints", VpcId=vpc)["GroupId"]
    # Clients inside the test namespace connect from the local address itself; moto puts ENIs
    # anywhere in 10/8, hence the wide CIDR.
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        ],
    )

    status_file, log = tmp_path / "vpcside.json", tmp_path / "vpcside.log"
    cmd = [sys.executable, "-m", "vpcside", "--netns", namespace, "--emulator-url", moto, "--vpc-id", vpc]
    cmd += ["--status-file", str(status_file), "--ca-dir", str(tmp_path / "ca"), "--interval", "0.3"]
    env = {**os.environ, "PYTHONPATH": str(LAB_DIR)}
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait(status_file.exists, "the status file", log)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"hybrid-onboard-lab-vpcside" in cmdline

        endpoint = ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{R}.ssm",
            VpcEndpointType="Interface",
            SubnetIds=subnets,
            SecurityGroupIds=[sg],
            PrivateDnsEnabled=True,
        )["VpcEndpoint"]
        enis = ec2.describe_network_interfaces(NetworkInterfaceIds=endpoint["NetworkInterfaceIds"])
        eni_ips = {e["PrivateIpAddress"] for e in enis["NetworkInterfaces"]}
        assert len(eni_ips) == 2
        _wait(lambda: eni_ips <= _addresses(namespace), "ENI IPs in the namespace", log)

        def https_listeners() -> set[str]:
            status = json.loads(status_file.read_text())
            return {item["ip"] for item in status["listeners"] if item["kind"] == "https"}

        _wait(lambda: https_listeners() == eni_ips, "HTTPS listeners in the status file", log)

        # HTTPS from inside the namespace reaches moto on the root namespace's loopback
        ip = sorted(eni_ips)[0]
        curl = _run(
            "ip", "netns", "exec", namespace, "curl", "-sS", "--max-time", "10",
            "--cacert", str(tmp_path / "ca" / "lab-ca.crt"),
            "--resolve", f"ssm.{R}.amazonaws.com:443:{ip}",
            "-H", "X-Amz-Target: AmazonSSM.DescribeParameters",
            "-H", "Content-Type: application/x-amz-json-1.1",
            "-d", "{}", "-o", "/dev/null", "-w", "%{http_code}",
            f"https://ssm.{R}.amazonaws.com/",
            check=False,
        )  # fmt: skip
        assert curl.stdout == "200", (curl.stdout, curl.stderr, log.read_text()[-2000:])

        r53r.create_resolver_endpoint(
            CreatorRequestId="test",
            SecurityGroupIds=[sg],
            Direction="INBOUND",
            IpAddresses=[
                {"SubnetId": subnets[0], "Ip": "10.0.1.53"},
                {"SubnetId": subnets[1], "Ip": "10.0.2.53"},
            ],
        )
        _wait(lambda: {"10.0.1.53", "10.0.2.53"} <= _addresses(namespace), "resolver IPs", log)

        def dig() -> set[str]:
            out = _run(
                "ip", "netns", "exec", namespace, "dig", "+short", "+time=1", "+tries=1",
                "@10.0.1.53", f"ssm.{R}.amazonaws.com", check=False,
            ).stdout  # fmt: skip
            return set(out.split())

        _wait(lambda: dig() == eni_ips, "the resolver to answer with the ENI IPs", log)

        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
        _wait(lambda: not (eni_ips & _addresses(namespace)), "ENI IPs to go away", log)
        _wait(lambda: not https_listeners(), "HTTPS listeners to go away", log)
        assert {"10.0.1.53", "10.0.2.53"} <= _addresses(namespace), "resolver IPs must stay"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert rc == 0, log.read_text()[-3000:]
    assert _addresses(namespace) == set(), "addresses are removed on a clean stop"
    assert json.loads(status_file.read_text())["running"] is False
