"""agent_package run as Ansible runs it: packages served over real HTTP from a local server, signed for real with
throwaway GPG keys and checked with the real gpgv. The package database is a stand-in (dpkg-query and dpkg on PATH
that keep their state in a directory), so the test machine's own dpkg is never touched; the real dpkg path is
proven on the lab's hosts (tests/integration/test_ssm_agent_lab.py: tampered package, interrupted dpkg run).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import pytest

MODULE = "agent_package"
NAME = "amazon-ssm-agent"

pytestmark = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("gpgv")), reason="needs gpg and gpgv")

# dpkg-query -W -f=... <name> and dpkg -i <file> / --configure -a, over one state file per package in $FAKE_DPKG_DB;
# a package file's "Package:" and "Version:" lines say what it installs. Every dpkg call is logged.
_DPKG_QUERY = """#!/bin/sh
name="$3"
if [ -f "$FAKE_DPKG_DB/$name" ]; then cat "$FAKE_DPKG_DB/$name"; exit 0; fi
echo "dpkg-query: no packages found matching $name" >&2; exit 1
"""
_DPKG = """#!/bin/sh
echo "dpkg $*" >> "$FAKE_DPKG_DB/.log"
case "$1" in
  -i) name=$(sed -n 's/^Package: //p' "$2"); version=$(sed -n 's/^Version: //p' "$2")
      [ -n "$name" ] || { echo "dpkg-deb: error: '$2' is not a Debian format archive" >&2; exit 2; }
      printf 'ii |%s' "$version" > "$FAKE_DPKG_DB/$name" ;;
  --configure) for f in "$FAKE_DPKG_DB"/*; do sed -i 's/^i[UFWt] /ii /' "$f"; done ;;
esac
"""


class Bucket(http.server.ThreadingHTTPServer):
    """Files by path; ``failures`` 503s before each path answers; every request path recorded."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, int] = {}
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        bucket = self.server
        bucket.requests.append(self.path)
        if bucket.failures.get(self.path, 0) > 0:
            bucket.failures[self.path] -= 1
            self.send_error(503, "Slow Down")
            return
        body = bucket.files.get(self.path)
        if body is None:
            self.send_error(404, "NoSuchKey")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def bucket():
    server = Bucket()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def dpkg(stand_ins):
    """The stand-in package database: its directory (``state(name)``, ``set(name, status)``, ``calls()``)."""
    db = stand_ins({"dpkg-query": _DPKG_QUERY, "dpkg": _DPKG}, "FAKE_DPKG_DB")

    class Db:
        path = db

        @staticmethod
        def state(name=NAME):
            return (db / name).read_text() if (db / name).exists() else None

        @staticmethod
        def set(value, name=NAME):
            (db / name).write_text(value)

        @staticmethod
        def calls():
            return (db / ".log").read_text().splitlines()

    return Db


def publish(bucket, signer, version, tmp_path, body=None, signed_by=None):
    """Put ``version`` of the package (and its .sig) in the bucket; return its bytes."""
    data = body or f"!<arch>\nPackage: {NAME}\nVersion: {version}-1\n".encode() + bytes(range(256)) * 16
    staged = tmp_path / f"{version}.deb"
    staged.write_bytes(data)
    (signed_by or signer).sign(staged)
    bucket.files[f"/ssm/{version}/debian_amd64/{NAME}.deb"] = data
    bucket.files[f"/ssm/{version}/debian_amd64/{NAME}.deb.sig"] = Path(f"{staged}.sig").read_bytes()
    return data


def args(bucket, signers, tmp_path, **extra):
    base = {
        "name": NAME,
        "pkg_type": "deb",
        "latest_url": f"{bucket.url}/ssm/latest/VERSION",
        "package_url": bucket.url + "/ssm/{version}/debian_amd64/" + NAME + ".deb",
        "download_dir": str(tmp_path / "cache" / "{version}" / "debian_amd64"),
        "gpg_key_b64": base64.b64encode(signers["aws"].armored_key.read_bytes()).decode(),
        "retries": 2,
        "delay": 0,
        "timeout": 5,
    }
    base.update(extra)
    return base


def test_installs_the_latest_verified_package_then_changes_nothing(run_module, bucket, dpkg, signers, tmp_path, tools):
    publish(bucket, signers["aws"], "3.3.40.0", tmp_path)
    bucket.files["/ssm/latest/VERSION"] = b"3.3.40.0\n"
    result = run_module(MODULE, args(bucket, signers, tmp_path))
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["installed"] is True and result["recovered"] is False
    assert result["installed_version"] == "3.3.40.0-1" and result["target_version"] == "3.3.40.0"
    assert result["signer"] == signers["aws"].fingerprint
    package = tmp_path / "cache" / "3.3.40.0" / "debian_amd64" / f"{NAME}.deb"
    assert result["sha256"] == hashlib.sha256(package.read_bytes()).hexdigest()
    assert dpkg.state() == "ii |3.3.40.0-1"
    assert dpkg.calls() == [f"dpkg -i {package}"]
    assert set(result) - tools.STANDARD_KEYS <= tools.return_keys(MODULE)

    again = run_module(MODULE, args(bucket, signers, tmp_path))
    assert again["changed"] is False and again["installed"] is False, again
    assert dpkg.calls() == [f"dpkg -i {package}"]
    assert [p for p in bucket.requests if p.endswith(".deb")] == [f"/ssm/3.3.40.0/debian_amd64/{NAME}.deb"]


def test_a_new_latest_version_is_installed_over_the_old(run_module, bucket, dpkg, signers, tmp_path):
    dpkg.set("ii |3.3.30.0-1")
    publish(bucket, signers["aws"], "3.3.40.0", tmp_path)
    bucket.files["/ssm/latest/VERSION"] = b"3.3.40.0"
    result = run_module(MODULE, args(bucket, signers, tmp_path))
    assert result["changed"] is True and result["installed_version"] == "3.3.40.0-1", result
    # A pinned version that is installed is left alone, whatever latest says.
    pinned = run_module(MODULE, args(bucket, signers, tmp_path, version="3.3.40.0", latest_url=None))
    assert pinned["changed"] is False and pinned["target_version"] == "3.3.40.0"


def test_check_mode_reports_the_install_and_changes_nothing(run_module, bucket, dpkg, signers, tmp_path):
    publish(bucket, signers["aws"], "3.3.40.0", tmp_path)
    bucket.files["/ssm/latest/VERSION"] = b"3.3.40.0"
    result = run_module(MODULE, args(bucket, signers, tmp_path), check=True)
    assert result["changed"] is True and result["installed"] is True, result
    assert result["msg"] == f"would install {NAME} 3.3.40.0 from {bucket.url}/ssm/3.3.40.0/debian_amd64/{NAME}.deb"
    assert dpkg.state() is None and dpkg.calls() == []
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("fault", ["tampered", "other_signer"])
def test_a_package_that_does_not_verify_is_deleted_and_not_installed(run_module, bucket, dpkg, signers, tmp_path,
                                                                     fault):
    other = signers["other"] if fault == "other_signer" else None
    publish(bucket, signers["aws"], "3.3.40.0", tmp_path, signed_by=other)
    if fault == "tampered":
        bucket.files[f"/ssm/3.3.40.0/debian_amd64/{NAME}.deb"] += b"\0tampered"
    bucket.files["/ssm/latest/VERSION"] = b"3.3.40.0"
    result = run_module(MODULE, args(bucket, signers, tmp_path))
    assert result.get("failed") is True
    assert "signature does not verify" in result["msg"] and "nothing was installed" in result["msg"], result["msg"]
    assert ("BAD signature" if fault == "tampered" else "no public key") in result["msg"]
    assert dpkg.state() is None and dpkg.calls() == []
    assert list((tmp_path / "cache" / "3.3.40.0" / "debian_amd64").iterdir()) == []


def test_sha256_pins_the_file(run_module, bucket, dpkg, signers, tmp_path):
    data = publish(bucket, signers["aws"], "3.3.40.0", tmp_path)
    pinned = dict(version="3.3.40.0", verify="sha256", gpg_key_b64=None, latest_url=None)
    wrong = run_module(MODULE, args(bucket, signers, tmp_path, sha256="0" * 64, **pinned))
    assert wrong.get("failed") is True and "expected " + "0" * 64 in wrong["msg"], wrong
    assert dpkg.calls() == []
    upper = hashlib.sha256(data).hexdigest().upper()
    right = run_module(MODULE, args(bucket, signers, tmp_path, sha256=upper, **pinned))
    assert right["changed"] is True and right["signer"] is None and dpkg.state() == "ii |3.3.40.0-1", right
    assert not any(p.endswith(".sig") for p in bucket.requests)


def test_interrupted_dpkg_run_is_finished_first_with_a_warning(run_module, bucket, dpkg, signers, tmp_path):
    dpkg.set("iU |3.3.40.0-1")
    bucket.files["/ssm/latest/VERSION"] = b"3.3.40.0"
    checked = run_module(MODULE, args(bucket, signers, tmp_path), check=True)
    assert checked["changed"] is True and checked["recovered"] is True and dpkg.calls() == []
    result = run_module(MODULE, args(bucket, signers, tmp_path))
    assert result["changed"] is True and result["recovered"] is True and result["installed"] is False, result
    assert dpkg.calls() == ["dpkg --configure -a"] and dpkg.state() == "ii |3.3.40.0-1"
    assert any("interrupted dpkg run" in str(w) for w in result.get("warnings", [])), result


def test_downloads_are_retried_and_a_dead_url_fails_clearly(run_module, bucket, dpkg, signers, tmp_path):
    publish(bucket, signers["aws"], "3.3.40.0", tmp_path)
    bucket.files["/ssm/latest/VERSION"] = b"3.3.40.0"
    bucket.failures = {"/ssm/latest/VERSION": 1, f"/ssm/3.3.40.0/debian_amd64/{NAME}.deb": 2}
    result = run_module(MODULE, args(bucket, signers, tmp_path))
    assert result["changed"] is True and dpkg.state() == "ii |3.3.40.0-1", result
    missing = run_module(MODULE, args(bucket, signers, tmp_path, version="9.9.9.9", latest_url=None))
    assert missing.get("failed") is True, missing
    assert missing["msg"] == (f"{NAME}: could not download {bucket.url}/ssm/9.9.9.9/debian_amd64/{NAME}.deb "
                              "after 3 attempt(s): HTTP 404")
    assert dpkg.state() == "ii |3.3.40.0-1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"version": "3.3 beta"}, "version must be latest or a version"),
        ({"verify": "sha256", "sha256": "abc"}, "sha256 must be the package's SHA-256 digest"),
        ({"gpg_key_b64": None}, "verify=gpg needs the signer's public key"),
        ({"gpg_key_b64": base64.b64encode(b"not a key").decode()}, "the signer's public key is not usable"),
        ({"retries": -1}, "retries must be >= 0"),
    ],
)
def test_bad_input_is_refused_before_any_change(run_module, bucket, dpkg, signers, tmp_path, extra, message):
    publish(bucket, signers["aws"], "3.3.40.0", tmp_path)
    bucket.files["/ssm/latest/VERSION"] = b"3.3.40.0"
    result = run_module(MODULE, args(bucket, signers, tmp_path, **extra))
    assert result.get("failed") is True and message in result["msg"], result
    assert dpkg.calls() == [] and dpkg.state() is None


# --- the key handling of module_utils/hybrid_package.py --------------------------------------------------------


def test_dearmor_gives_the_binary_export(plugin, signers):
    package = plugin("module_utils", "hybrid_package")
    assert package.dearmor(signers["aws"].armored_key.read_text()) == signers["aws"].binary_key.read_bytes()
    assert package.load_key(str(signers["aws"].binary_key)) == signers["aws"].binary_key.read_bytes()
    # Two keys in one armored file (e.g. the old and the new AWS key) give both.
    both = signers["aws"].armored_key.read_text() + "\n" + signers["other"].armored_key.read_text()
    assert package.dearmor(both) == signers["aws"].binary_key.read_bytes() + signers["other"].binary_key.read_bytes()


def test_crc24_of_rfc4880(plugin):
    package = plugin("module_utils", "hybrid_package")
    assert package.crc24(b"") == 0xB704CE
    assert package.crc24(b"123456789") == 0x21CF02  # the CRC-24/OpenPGP check value


@pytest.mark.parametrize(("kind", "name"), [("modules", MODULE), ("module_utils", "hybrid_package")])
def test_python36_syntax(plugin, kind, name):
    # Both run on the managed host, where RHEL 8's platform Python is 3.6.
    ast.parse(Path(plugin(kind, name).__file__).read_text(), feature_version=(3, 6))
