"""Tests of the VPC-side HTTPS front (tests/lab/vpcside/front.py): SNI certificates, the Host rewrite
table, the security-group decision, and real TLS round trips on 127.0.0.1 to a real moto server
(boto3 clients trusting the lab CA, S3 GetObject through a `bucket.vpce-…` name, chunked uploads,
keep-alive and streamed downloads)."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
from pathlib import Path

import boto3
import labconst
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from vpcside.front import CertStore, HttpsFront, rewrite_host
from vpcside.policy import https_allowed
from vpcside.state import Eni, IngressRule, InterfaceEndpoint, SecurityGroup, Snapshot

R = "eu-west-1"
SSM_VPCE = f"vpce-0aaa1111bbbb2222c-k2l3m4n5.ssm.{R}.vpce.amazonaws.com"
S3_VPCE = f"vpce-0ccc3333dddd4444e-x9y8z7w6.s3.{R}.vpce.amazonaws.com"


@pytest.mark.parametrize(
    ("host", "forwarded"),
    [
        (SSM_VPCE, f"ssm.{R}.amazonaws.com"),
        (f"vpce-0aaa1111bbbb2222c-k2l3m4n5-{R}a.ssm.{R}.vpce.amazonaws.com", f"ssm.{R}.amazonaws.com"),
        (f"vpce-0123abcd-zz99.ec2messages.{R}.vpce.amazonaws.com:443", f"ec2messages.{R}.amazonaws.com:443"),
        ("bucket." + S3_VPCE, f"s3.{R}.amazonaws.com"),
        ("BUCKET." + S3_VPCE.upper() + ":8443", f"s3.{R}.amazonaws.com:8443"),
        (S3_VPCE, f"s3.{R}.amazonaws.com"),
        # names moto routes itself pass unchanged
        (f"ssm.{R}.amazonaws.com", f"ssm.{R}.amazonaws.com"),
        (f"s3.{R}.amazonaws.com", f"s3.{R}.amazonaws.com"),
        (f"amazon-ssm-{R}.s3.{R}.amazonaws.com", f"amazon-ssm-{R}.s3.{R}.amazonaws.com"),
        ("example.org", "example.org"),
        # only S3 endpoint names have names below them
        ("bucket." + SSM_VPCE, "bucket." + SSM_VPCE),
    ],
)
def test_rewrite_host(host: str, forwarded: str) -> None:
    assert rewrite_host(host) == forwarded


def _snapshot(ip: str, cidr: str, port: int = 443, protocol: str = "tcp") -> Snapshot:
    return Snapshot(
        region=R,
        interface_endpoints=[
            InterfaceEndpoint(
                "vpce-0ccc3333dddd4444e",
                f"com.amazonaws.{R}.s3",
                enis=[Eni("eni-1", ip, f"{R}a")],
                security_group_ids=["sg-a", "sg-missing"],
            )
        ],
        security_groups={"sg-a": SecurityGroup("sg-a", [IngressRule(protocol, port, port, (cidr,))])},
    )


def test_security_group_decision() -> None:
    snap = _snapshot("10.0.1.22", labconst.ONPREM_CIDR)
    assert https_allowed(snap, "10.0.1.22", "172.16.10.101")
    assert not https_allowed(snap, "10.0.1.22", "172.16.11.1"), "client outside the allowed CIDR"
    assert not https_allowed(snap, "10.0.1.99", "172.16.10.101"), "no endpoint ENI at this address"
    assert not https_allowed(
        _snapshot("10.0.1.22", labconst.ONPREM_CIDR, port=80), "10.0.1.22", "172.16.10.101"
    )
    assert not https_allowed(
        _snapshot("10.0.1.22", labconst.ONPREM_CIDR, protocol="udp"), "10.0.1.22", "172.16.10.101"
    )
    everything = _snapshot("10.0.1.22", "0.0.0.0/0", protocol="-1")
    everything.security_groups["sg-a"] = SecurityGroup(
        "sg-a", [IngressRule("-1", None, None, ("0.0.0.0/0",))]
    )
    assert https_allowed(everything, "10.0.1.22", "198.51.100.7")


def test_sni_certificates_issued_per_name_and_cached(tmp_path: Path) -> None:
    certs = CertStore(tmp_path / "ca")
    first = certs.context_for("ssm.eu-west-1.amazonaws.com")
    assert certs.context_for("SSM.eu-west-1.amazonaws.com.") is first
    certs.context_for("bucket." + S3_VPCE)
    assert certs.issued == 2
    small = CertStore(tmp_path / "ca", max_entries=1)
    small.context_for("a.example")
    small.context_for("b.example")
    small.context_for("a.example")
    assert small.issued == 3, "evicted names are issued again"


# --- real round trips ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def front(tmp_path: Path, moto_url: str):
    """An HTTPS front on 127.0.0.1:<free port>, as the ENI of an S3 endpoint whose security group
    admits TCP 443 from loopback. Yields (port, ca_cert_path, snapshot holder)."""
    ca_dir = tmp_path / "ca"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    state = {"snap": _snapshot("127.0.0.1", "127.0.0.0/8")}
    upstream = (moto_url.split("//")[1].split(":")[0], int(moto_url.rsplit(":", 1)[1]))
    server = HttpsFront(listener, "127.0.0.1", lambda: state["snap"], CertStore(ca_dir), upstream)
    server.start()
    yield listener.getsockname()[1], str(ca_dir / "lab-ca.crt"), state
    server.stop()


@pytest.fixture
def resolve_to_loopback(monkeypatch):
    """Every *.amazonaws.com name resolves to 127.0.0.1 in this process, as the lab's DNS would
    send it to the endpoint ENI."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".amazonaws.com"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _client(service: str, url: str, ca: str, **config):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=R,
        aws_access_key_id=labconst.ACCESS_KEY,
        aws_secret_access_key=labconst.SECRET_KEY,
        verify=ca,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def test_s3_get_object_through_bucket_vpce_name(front, moto_url, resolve_to_loopback) -> None:
    port, ca, _state = front
    direct = _client("s3", moto_url, None)
    # Its own bucket: moto is process-wide, and the emulator's seed may already own the agent buckets.
    bucket = f"front-test-{os.getpid()}"
    direct.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": R})
    body = os.urandom(300_000)
    direct.put_object(Bucket=bucket, Key="latest/debian_amd64/amazon-ssm-agent.deb", Body=body)

    s3 = _client("s3", f"https://bucket.{S3_VPCE}:{port}", ca, s3={"addressing_style": "path"})
    got = s3.get_object(Bucket=bucket, Key="latest/debian_amd64/amazon-ssm-agent.deb")
    assert got["Body"].read() == body
    # and upload through it (boto3 sends Expect: 100-continue for S3 bodies)
    s3.put_object(Bucket=bucket, Key="uploaded", Body=b"x" * 70_000)
    assert direct.get_object(Bucket=bucket, Key="uploaded")["Body"].read() == b"x" * 70_000


def test_ssm_call_through_service_name_and_vpce_name(front, resolve_to_loopback) -> None:
    port, ca, _state = front
    by_service = _client("ssm", f"https://ssm.{R}.amazonaws.com:{port}", ca)
    by_service.put_parameter(Name="/lab/front", Value="through-the-front", Type="String", Overwrite=True)
    by_vpce = _client("ssm", f"https://{SSM_VPCE}:{port}", ca)
    assert by_vpce.get_parameter(Name="/lab/front")["Parameter"]["Value"] == "through-the-front"


def _tls_connection(port: int, ca: str, name: str) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn._tunnel_host = None
    # Connect to 127.0.0.1 but present `name` as SNI and check the certificate against it.
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sock = ctx.wrap_socket(sock, server_hostname=name)
    return conn


def test_chunked_upload_keepalive_and_streamed_download(front, moto_url) -> None:
    port, ca, _state = front
    direct = _client("s3", moto_url, None)
    direct.create_bucket(Bucket="chunky", CreateBucketConfiguration={"LocationConstraint": R})
    conn = _tls_connection(port, ca, f"s3.{R}.amazonaws.com")
    assert conn.sock.getpeercert()["subjectAltName"] == (("DNS", f"s3.{R}.amazonaws.com"),)
    payload = os.urandom(1_000_000)
    pieces = (payload[i : i + 100_000] for i in range(0, len(payload), 100_000))
    # anonymous requests: the object is made public-read so the unsigned GET below may read it
    headers = {"Host": f"s3.{R}.amazonaws.com", "Transfer-Encoding": "chunked", "x-amz-acl": "public-read"}
    conn.request("PUT", "/chunky/big", body=pieces, headers=headers, encode_chunked=True)
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    sock_before = conn.sock
    # same TLS connection again (keep-alive), streamed download
    conn.request("GET", "/chunky/big", headers={"Host": f"s3.{R}.amazonaws.com"})
    response = conn.getresponse()
    assert response.status == 200 and conn.sock is sock_before
    assert response.read() == payload
    conn.request("HEAD", "/chunky/big", headers={"Host": f"s3.{R}.amazonaws.com"})
    head = conn.getresponse()
    assert head.read() == b"" and head.getheader("Content-Length") == str(len(payload))
    conn.close()
    assert direct.get_object(Bucket="chunky", Key="big")["Body"].read() == payload


def test_security_group_refusal_closes_connection(front) -> None:
    port, ca, state = front
    state["snap"] = _snapshot("127.0.0.1", "172.16.10.0/24")  # loopback no longer admitted
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        _tls_connection(port, ca, f"ssm.{R}.amazonaws.com")
    state["snap"] = _snapshot("127.0.0.2", "127.0.0.0/8")  # 127.0.0.1 is no endpoint ENI any more
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        _tls_connection(port, ca, f"ssm.{R}.amazonaws.com")
