"""package_verify run as Ansible runs it, against files signed for real: two throwaway GPG keys made in a temp
GNUPGHOME (like tests/lab/agents/build.py makes the lab's signing key), detached binary signatures like AWS's."""

from __future__ import annotations

import ast
import hashlib
import shutil
import time
from pathlib import Path

import pytest

MODULE = "package_verify"

pytestmark = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("gpgv")), reason="needs gpg and gpgv")


@pytest.fixture
def package(tmp_path, signers):
    path = tmp_path / "amazon-ssm-agent.deb"
    path.write_bytes(b"!<arch>\n" + bytes(range(256)) * 64)
    signers["aws"].sign(path)
    return path


def warnings(result):
    """The warnings' texts (ansible-core 2.19 returns them as structured events when run directly)."""
    return [w if isinstance(w, str) else w.get("event", {}).get("msg", str(w)) for w in result.get("warnings") or []]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- gpg ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_form", ["armored_key", "binary_key"])
def test_good_signature_verifies_with_armored_or_binary_key(run_module, signers, package, tools, key_form):
    key = getattr(signers["aws"], key_form)
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(key)})
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["verified"] is True and result["method"] == "gpg"
    assert result["signer"] == signers["aws"].fingerprint
    assert result["signer_uid"] == signers["aws"].uid
    assert result["sha256"] == digest(package)
    assert result["signature"] == f"{package}.sig" and result["file"] == str(package)
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE) - {"gpgv_output"}


def test_check_mode_verifies_the_same(run_module, signers, package):
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(signers["aws"].armored_key)}, check=True)
    assert result["verified"] is True and result["changed"] is False
    tampered = package.read_bytes() + b"x"
    package.write_bytes(tampered)
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(signers["aws"].armored_key)}, check=True)
    assert result["failed"] is True and "BAD signature" in result["msg"]


def test_tampered_file_fails_with_bad_signature(run_module, signers, package):
    data = bytearray(package.read_bytes())
    data[100] ^= 0xFF
    package.write_bytes(bytes(data))
    key = signers["aws"].binary_key
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(key)})
    assert result["failed"] is True and result["verified"] is False
    assert result["msg"].startswith(f"{package}: signature does not verify with {key}: BAD signature")
    assert "BAD signature" in result["gpgv_output"]


def test_signature_by_another_key_fails_with_no_public_key(run_module, signers, package):
    signers["other"].sign(package)  # replaces the .sig
    key = signers["aws"].armored_key
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(key)})
    assert result["failed"] is True
    assert result["msg"].startswith(f"{package}: signature does not verify with {key}: no public key")
    assert signers["other"].fingerprint[-16:] in result["msg"]  # the signature's key id
    assert "signed by another key" in result["msg"]


def test_missing_signature_fails_naming_it(run_module, signers, package):
    Path(f"{package}.sig").unlink()
    key = signers["aws"].armored_key
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(key)})
    assert result["failed"] is True
    assert (
        result["msg"]
        == f"{package}: signature does not verify with {key}: signature file {package}.sig not found (signature)"
    )


def test_signature_option_and_an_armored_signature(run_module, signers, package, tmp_path):
    Path(f"{package}.sig").unlink()
    asc = signers["aws"].sign(package, output=tmp_path / "detached.asc", armor=True)
    result = run_module(
        MODULE, {"path": str(package), "signature": str(asc), "gpg_key": str(signers["aws"].binary_key)}
    )
    assert result["verified"] is True and result["signature"] == str(asc)


def test_signature_by_a_key_expired_since_is_accepted_with_a_warning(run_module, tmp_path, gpg_signer):
    # Made ten days ago, valid for two: the signature (made then) is good, the key has expired since.
    expired = gpg_signer(
        tmp_path / "expired", "old aws <old@example.test>", created=int(time.time()) - 864000, expire="2d"
    )
    try:
        path = tmp_path / "old.rpm"
        path.write_bytes(b"old package")
        expired.sign(path)
    finally:
        expired.close()
    result = run_module(MODULE, {"path": str(path), "gpg_key": str(expired.armored_key)})
    assert result.get("failed") is not True, result
    assert result["verified"] is True and result["signer"] == expired.fingerprint
    assert result["signer_uid"] == "old aws <old@example.test>"
    assert any("has expired since: get the signer's current public key" in w for w in warnings(result))


def test_not_a_signature_file(run_module, signers, package):
    Path(f"{package}.sig").write_text("<html>404 Not Found</html>\n")
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(signers["aws"].binary_key)})
    assert result["failed"] is True and "signature does not verify" in result["msg"]


def test_damaged_or_wrong_key_files_fail_before_gpgv(run_module, signers, package, tmp_path):
    armored = signers["aws"].armored_key.read_text().splitlines()
    body = next(i for i, line in enumerate(armored) if i > 2 and len(line) > 40)
    line = armored[body]
    armored[body] = line[:10] + ("A" if line[10] != "A" else "B") + line[11:]
    damaged = tmp_path / "damaged.asc"
    damaged.write_text("\n".join(armored) + "\n")
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(damaged)})
    assert result["failed"] is True
    assert (
        result["msg"]
        == f"gpg_key: {damaged} is not a usable public key: armor checksum mismatch: the key file is damaged"
    )

    html = tmp_path / "key.html"
    html.write_text("<html>Access Denied</html>")
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(html)})
    assert result["failed"] is True and "neither an ASCII-armored nor a binary OpenPGP public key" in result["msg"]

    result = run_module(MODULE, {"path": str(package), "gpg_key": str(tmp_path / "absent.gpg")})
    assert (
        result["failed"] is True and f"gpg_key: {tmp_path / 'absent.gpg'} does not exist on the host" in result["msg"]
    )


def test_missing_gpgv_is_named(run_module, signers, package, tmp_path, monkeypatch):
    if any(Path(d, "gpgv").exists() or Path(d, "gpgv2").exists() for d in ("/sbin", "/usr/sbin", "/usr/local/sbin")):
        pytest.skip("gpgv is in an sbin directory, which Ansible always searches")
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(signers["aws"].binary_key)})
    assert result["failed"] is True and "gpgv is not installed on this host" in result["msg"]
    assert "method=sha256" in result["msg"]


def test_gpg_with_a_wrong_sha256_fails_too(run_module, signers, package):
    wrong = "0" * 64
    result = run_module(MODULE, {"path": str(package), "gpg_key": str(signers["aws"].binary_key), "sha256": wrong})
    assert result["failed"] is True
    assert result["msg"] == f"{package}: sha256 is {digest(package)}, expected {wrong}"


def test_dearmor_gives_the_binary_export(plugin, signers):
    mod = plugin("modules", MODULE)
    assert mod.dearmor(signers["aws"].armored_key.read_text()) == signers["aws"].binary_key.read_bytes()
    assert mod.load_key(str(signers["aws"].binary_key)) == signers["aws"].binary_key.read_bytes()
    # Two keys in one armored file (e.g. the old and the new AWS key) give both.
    both = signers["aws"].armored_key.read_text() + "\n" + signers["other"].armored_key.read_text()
    assert mod.dearmor(both) == signers["aws"].binary_key.read_bytes() + signers["other"].binary_key.read_bytes()


def test_crc24_of_rfc4880(plugin):
    mod = plugin("modules", MODULE)
    assert mod.crc24(b"") == 0xB704CE
    assert mod.crc24(b"123456789") == 0x21CF02  # the CRC-24/OpenPGP check value


# --- sha256 ---------------------------------------------------------------------------------------------------


def test_sha256_good_in_any_case(run_module, package):
    result = run_module(MODULE, {"path": str(package), "method": "sha256", "sha256": digest(package).upper()})
    assert result.get("failed") is not True, result
    assert result["verified"] is True and result["method"] == "sha256" and result["sha256"] == digest(package)
    assert result["signer"] is None and result["signature"] is None


def test_sha256_mismatch(run_module, package):
    expected = hashlib.sha256(b"another file").hexdigest()
    result = run_module(MODULE, {"path": str(package), "method": "sha256", "sha256": expected})
    assert result["failed"] is True and result["verified"] is False
    assert result["msg"] == f"{package}: sha256 is {digest(package)}, expected {expected}"
    assert result["sha256"] == digest(package)


@pytest.mark.parametrize("bad", ["abc", "g" * 64, digest.__name__ * 11, "sha256:" + "a" * 64])
def test_sha256_badly_formatted(run_module, package, bad):
    result = run_module(MODULE, {"path": str(package), "method": "sha256", "sha256": bad})
    assert result["failed"] is True
    assert result["msg"].startswith("sha256 must be the file's SHA-256 digest, 64 hexadecimal characters; got ")


def test_required_options_and_missing_file(run_module, tmp_path):
    result = run_module(MODULE, {"path": str(tmp_path / "x.deb"), "method": "sha256"})
    assert result["failed"] is True and "method is sha256 but all of the following are missing: sha256" in result["msg"]
    result = run_module(MODULE, {"path": str(tmp_path / "x.deb")})
    assert result["failed"] is True and "missing: gpg_key" in result["msg"]
    result = run_module(MODULE, {"path": str(tmp_path / "x.deb"), "method": "sha256", "sha256": "a" * 64})
    assert result["failed"] is True
    assert result["msg"] == f"path: {tmp_path / 'x.deb'} does not exist or is not a file: download the package first"


def test_the_module_is_python36_syntax(plugin):
    ast.parse(Path(plugin("modules", MODULE).__file__).read_text(), feature_version=(3, 6))


def test_through_ansible_in_check_mode(run_module, signers, package):
    result = run_module(
        MODULE, {"path": str(package), "gpg_key": str(signers["aws"].armored_key)}, check=True, via="ansible"
    )
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["verified"] is True
    assert result["signer"] == signers["aws"].fingerprint
