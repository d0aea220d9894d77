"""Agent stand-in packages: reproducible build, .deb contents and control fields, GPG signatures,
S3 publish."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[3] / "tests" / "lab"
if str(LAB) not in sys.path:
    sys.path.insert(0, str(LAB))

import labconst  # noqa: E402
from agents import build  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (shutil.which("dpkg-deb") and shutil.which("gpg")), reason="needs dpkg-deb and gpg (apt: dpkg, gnupg)"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("agents-cache")


@pytest.fixture(scope="module")
def built(cache, tmp_path_factory):
    return build.build_all(tmp_path_factory.mktemp("out"), cache_dir=cache)


def _contents(deb: Path) -> dict[str, str]:
    """{path: "mode owner/group"} from dpkg-deb -c."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        rows[parts[5].lstrip(".")] = f"{parts[0]} {parts[1]}"
    return rows


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_rebuild_from_scratch_is_byte_identical(built, cache, tmp_path):
    first = {k: Path(built[k]).read_bytes() for k in ("ssm_deb", "cw_deb", "ssm_sig", "cw_sig")}
    shutil.rmtree(built["cache"])  # force a real second build, not a cache hit
    again = build.build_all(tmp_path / "again", cache_dir=cache)
    assert again["cache"] == built["cache"]
    for key, data in first.items():
        assert Path(again[key]).read_bytes() == data, f"{key} differs between two builds"


def test_cache_is_keyed_by_inputs(built, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_LAB_SSM_AGENT_VERSION", "3.3.9999.0")
    newer = build.build_all(tmp_path / "newer", cache_dir=cache)
    assert newer["cache"] != built["cache"]
    assert newer["ssm_deb"].name == "amazon-ssm-agent_3.3.9999.0-1_amd64.deb"
    assert newer["version_file"].read_text().strip() == "3.3.9999.0"
    assert _field(newer["ssm_deb"], "Version") == "3.3.9999.0-1"


def test_ssm_package_layout_and_control(built):
    deb = built["ssm_deb"]
    assert deb.name == f"amazon-ssm-agent_{built['ssm_version']}-1_amd64.deb"
    assert _field(deb, "Package") == "amazon-ssm-agent"
    assert _field(deb, "Architecture") == "amd64"
    assert _field(deb, "Version") == f"{built['ssm_version']}-1"
    rows = _contents(deb)
    assert rows["/usr/bin/amazon-ssm-agent"] == "-rwxr-xr-x root/root"
    assert rows["/usr/bin/ssm-cli"] == "-rwxr-xr-x root/root"
    assert rows["/lib/systemd/system/amazon-ssm-agent.service"].startswith("-rw-r--r-- root/root")
    assert "/etc/amazon/ssm/amazon-ssm-agent.json.template" in rows
    assert all(v.endswith("root/root") for v in rows.values())
    scripts = subprocess.run(["dpkg-deb", "-I", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "postinst" in scripts and "prerm" in scripts


def test_ssm_template_is_the_vendor_one(built, tmp_path):
    vendor = Path(labconst.VENDOR_DIR) / "amazon-ssm-agent" / "amazon-ssm-agent.json.template"
    if not vendor.is_file():
        pytest.skip(f"vendor dir missing: {vendor}")
    subprocess.run(["dpkg-deb", "-x", str(built["ssm_deb"]), str(tmp_path)], check=True)
    assert (tmp_path / "etc/amazon/ssm/amazon-ssm-agent.json.template").read_bytes() == vendor.read_bytes()


def test_cw_package_layout_and_schema(built, tmp_path):
    deb = built["cw_deb"]
    assert _field(deb, "Package") == "amazon-cloudwatch-agent"
    rows = _contents(deb)
    base = "/opt/aws/amazon-cloudwatch-agent"
    for path in (
        "bin/amazon-cloudwatch-agent-ctl",
        "bin/config-translator",
        "bin/start-amazon-cloudwatch-agent",
    ):
        assert rows[f"{base}/{path}"] == "-rwxr-xr-x root/root"
    assert f"{base}/etc/common-config.toml" in rows
    assert "/etc/systemd/system/amazon-cloudwatch-agent.service" in rows
    conffiles = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    assert b"conffiles" in conffiles
    schema = Path(labconst.VENDOR_DIR) / "amazon-cloudwatch-agent" / "schema.json"
    if schema.is_file():
        assert built["cw_schema_packaged"] is True
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
        packaged = tmp_path / "opt/aws/amazon-cloudwatch-agent/doc/amazon-cloudwatch-agent-schema.json"
        assert packaged.read_bytes() == schema.read_bytes()
    else:
        assert built["cw_schema_packaged"] is False


def _gpg_verify(pubkey: Path, sig: Path, data: Path, home: Path) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True, mode=0o700)
    base = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    subprocess.run([*base, "--import", str(pubkey)], capture_output=True, check=True)
    try:
        return subprocess.run([*base, "--verify", str(sig), str(data)], capture_output=True, text=True, check=False)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


def test_signatures_verify_with_exported_key(built, tmp_path):
    for deb, sig in (("ssm_deb", "ssm_sig"), ("cw_deb", "cw_sig")):
        result = _gpg_verify(built["pubkey"], built[sig], built[deb], tmp_path / f"home-{deb}")
        assert result.returncode == 0, result.stderr
        assert "Good signature" in result.stderr


def test_tampered_package_fails_verification(built, tmp_path):
    tampered = tmp_path / "tampered.deb"
    data = bytearray(built["ssm_deb"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    result = _gpg_verify(built["pubkey"], built["ssm_sig"], tampered, tmp_path / "home")
    assert result.returncode != 0
    assert "BAD signature" in result.stderr


def test_publish_puts_packages_where_aws_has_them(built):
    boto3 = pytest.importorskip("boto3")
    server = pytest.importorskip("emulator.server")
    handle = server.start_in_thread()
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=handle.url,
            region_name=labconst.REGION,
            aws_access_key_id=labconst.ACCESS_KEY,
            aws_secret_access_key=labconst.SECRET_KEY,
        )
        written = build.publish(s3, built)
        ssm_bucket, cw_bucket = labconst.SSM_AGENT_BUCKET, labconst.CW_AGENT_BUCKET
        expected = {
            (ssm_bucket, "latest/debian_amd64/amazon-ssm-agent.deb"): built["ssm_deb"],
            (ssm_bucket, "latest/debian_amd64/amazon-ssm-agent.deb.sig"): built["ssm_sig"],
            (ssm_bucket, f"{built['ssm_version']}/debian_amd64/amazon-ssm-agent.deb"): built["ssm_deb"],
            (ssm_bucket, "latest/VERSION"): built["version_file"],
            (ssm_bucket, "ssm-agent-manifest.json"): built["manifest"],
            (cw_bucket, "debian/amd64/latest/amazon-cloudwatch-agent.deb"): built["cw_deb"],
            (cw_bucket, "debian/amd64/latest/amazon-cloudwatch-agent.deb.sig"): built["cw_sig"],
        }
        for (bucket, key), path in expected.items():
            assert f"s3://{bucket}/{key}" in written
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert body == Path(path).read_bytes(), key
        assert (
            s3.get_object(Bucket=ssm_bucket, Key="latest/VERSION")["Body"].read().decode().strip()
            == (built["ssm_version"])
        )
    finally:
        handle.stop()
