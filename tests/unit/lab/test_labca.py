"""Tests of the lab CA (tests/lab/labca.py): created once, safe under a race, and its leaf
certificates verify as TLS clients (Python's ssl, i.e. OpenSSL) will verify them in the lab."""

from __future__ import annotations

import datetime
import multiprocessing
import socket
import ssl
import stat
import threading
from pathlib import Path

import labca
import pytest
from cryptography import x509


def _ensure_in_child(ca_dir: str) -> bytes:
    cert, _key = labca.ensure_ca(Path(ca_dir))
    return cert.read_bytes()


def test_ensure_ca_is_idempotent_and_key_is_private(tmp_path: Path) -> None:
    cert_path, key_path = labca.ensure_ca(tmp_path / "ca")
    first = cert_path.read_bytes(), key_path.read_bytes()
    assert labca.ensure_ca(tmp_path / "ca") == (cert_path, key_path)
    assert (cert_path.read_bytes(), key_path.read_bytes()) == first
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(first[0])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert datetime.timedelta(days=3640) < lifetime < datetime.timedelta(days=3660)


def test_racing_processes_end_with_one_ca(tmp_path: Path) -> None:
    ca_dir = tmp_path / "raced"
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(6) as pool:
        certs = pool.map(_ensure_in_child, [str(ca_dir)] * 12)
    assert len(set(certs)) == 1, "racing processes saw different CA certificates"
    assert certs[0] == (ca_dir / labca.CERT_NAME).read_bytes()
    labca._loaded.clear()
    labca.load_ca(ca_dir)  # raises when certificate and key do not match
    assert not [p for p in ca_dir.iterdir() if p.name.startswith(f".{labca.CERT_NAME}")], "temp files left"


def _handshake(tmp_path: Path, names: list[str], server_hostname: str, ca_dir: Path) -> dict:
    """TLS handshake over a socket pair: server presents a leaf for `names`, client trusts the CA in
    `ca_dir` and checks `server_hostname`. Returns the verified peer certificate."""
    cert_pem, key_pem = labca.issue_cert(names, ca_dir=tmp_path / "ca")
    (tmp_path / "leaf.crt").write_bytes(cert_pem)
    (tmp_path / "leaf.key").write_bytes(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "leaf.crt", tmp_path / "leaf.key")
    client_ctx = ssl.create_default_context(cafile=str(labca.ensure_ca(ca_dir)[0]))
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass  # the client's verdict is what the test checks

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=server_hostname) as tls:
            return tls.getpeercert()
    finally:
        thread.join(timeout=5)
        a.close()


def test_leaf_verifies_against_ca(tmp_path: Path) -> None:
    peer = _handshake(
        tmp_path, ["ssm.eu-west-1.amazonaws.com"], "ssm.eu-west-1.amazonaws.com", tmp_path / "ca"
    )
    assert ("DNS", "ssm.eu-west-1.amazonaws.com") in peer["subjectAltName"]
    ca_cert, _ca_key = labca.load_ca(tmp_path / "ca")
    leaf = x509.load_pem_x509_certificate(labca.issue_cert(["x.example"], ca_dir=tmp_path / "ca")[0])
    leaf.verify_directly_issued_by(ca_cert)
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_leaf_does_not_verify_for_other_name_or_other_ca(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path, ["ssm.eu-west-1.amazonaws.com"], "logs.eu-west-1.amazonaws.com", tmp_path / "ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(
            tmp_path, ["ssm.eu-west-1.amazonaws.com"], "ssm.eu-west-1.amazonaws.com", tmp_path / "other"
        )


def test_wildcard_san_covers_one_label(tmp_path: Path) -> None:
    wildcard = "*.vpce-0123456789abcdef0-abcd1234.s3.eu-west-1.vpce.amazonaws.com"
    peer = _handshake(tmp_path, [wildcard], "bucket." + wildcard[2:], tmp_path / "ca")
    assert ("DNS", wildcard) in peer["subjectAltName"]
    with pytest.raises(ssl.SSLCertVerificationError):  # a wildcard never spans two labels
        _handshake(tmp_path, [wildcard], "a.bucket." + wildcard[2:], tmp_path / "ca")


def test_ip_names_become_ip_sans(tmp_path: Path) -> None:
    leaf = x509.load_pem_x509_certificate(
        labca.issue_cert(["10.0.1.5", "a.example"], ca_dir=tmp_path / "ca")[0]
    )
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.1.5"]
    assert san.get_values_for_type(x509.DNSName) == ["a.example"]
    with pytest.raises(ValueError):
        labca.issue_cert([], ca_dir=tmp_path / "ca")
