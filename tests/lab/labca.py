"""The lab's certificate authority: one CA, created once and cached, that signs the TLS
certificates of the VPC-side HTTPS front (endpoint names, service names, S3 bucket names).

The on-prem hosts' image build installs the CA certificate from `ensure_ca()` into their trust
store, so the agents' HTTPS to "AWS" verifies exactly as it would against real endpoints.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import logging
import os
import tempfile
from pathlib import Path

import labconst
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_COMMON_NAME = "hybrid-onboard lab CA"
CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=397)
# Leaf and CA start an hour in the past: hosts and controller share one kernel clock, but a
# freshly issued certificate must not be "not yet valid" for a peer whose clock is a bit behind.
BACKDATE = datetime.timedelta(hours=1)

CERT_NAME = labconst.CA_CERT.name
KEY_NAME = labconst.CA_KEY.name


def _paths(ca_dir: Path | None) -> tuple[Path, Path]:
    if ca_dir is None:
        return labconst.CA_CERT, labconst.CA_KEY
    return ca_dir / CERT_NAME, ca_dir / KEY_NAME


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` so that readers see either nothing or the whole file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)  # before any byte lands, so the key is never readable by others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_ca() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hybrid-onboard lab"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _complete(cert_path: Path, key_path: Path) -> bool:
    return cert_path.is_file() and key_path.is_file()


def ensure_ca(ca_dir: Path | None = None) -> tuple[Path, Path]:
    """Create the lab CA once (default `labconst.CA_DIR`) and return (cert_path, key_path).

    Idempotent. Two processes racing are serialised by an flock on a lock file beside the CA, and
    each file appears by rename, so a reader that does not take the lock never sees half a file;
    the key is written before the certificate, so a present certificate means a matching key.
    """
    cert_path, key_path = _paths(ca_dir)
    if _complete(cert_path, key_path):
        return cert_path, key_path
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    lock_path = cert_path.parent / ".lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(cert_path, key_path):  # another process may have won meanwhile
            log.info("creating lab CA in %s", cert_path.parent)
            cert_pem, key_pem = _new_ca()
            _atomic_write(key_path, key_pem, 0o600)
            _atomic_write(cert_path, cert_pem, 0o644)
    return cert_path, key_path


_loaded: dict[Path, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}


def load_ca(ca_dir: Path | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA certificate and key (creating them if needed), cached per directory."""
    cert_path, key_path = ensure_ca(ca_dir)
    cached = _loaded.get(cert_path)
    if cached is None:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise RuntimeError(f"lab CA in {cert_path.parent}: certificate and key do not match; remove both")
        cached = (cert, key)  # type: ignore[assignment]
        _loaded[cert_path] = cached
    return cached


def _san_entry(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name.lower().rstrip("."))


def issue_cert(names: list[str], ca_dir: Path | None = None) -> tuple[bytes, bytes]:
    """A server certificate for `names` (DNS names, `*.` wildcards, or IP addresses), signed by the
    lab CA. Returns (cert_pem, key_pem); cert_pem holds only the leaf (clients trust the CA)."""
    if not names:
        raise ValueError("issue_cert needs at least one name")
    ca_cert, ca_key = load_ca(ca_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    # CN is informational only (clients match SANs); a CN longer than 64 chars is invalid.
    common_name = names[0][:64]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san_entry(n) for n in names]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
