"""Build, sign and publish the lab's agent stand-in packages (amazon-ssm-agent, amazon-cloudwatch-agent).

AWS's agent binaries cannot be downloaded in the lab, so the lab builds stand-in ``.deb`` files with
``dpkg-deb``: reproducibly (fixed mtimes, root ownership, SOURCE_DATE_EPOCH, so the same inputs give
byte-identical packages), cached under ``CACHE_DIR/agents/<hash of inputs>/``, signed with a lab GPG
key (``CACHE_DIR/gpg/``, made once, no passphrase) as detached binary ``.sig`` files like AWS's.
``publish(s3_client)`` uploads them to the emulator's S3 where the real ones live.

    python tests/lab/agents/build.py --out DIR [--publish]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/lab, for labconst
import labconst  # noqa: E402

log = logging.getLogger("agents.build")

SRC = HERE / "src"
# Fixed timestamp for every file and for the signatures (2024-01-01T00:00:00Z).
SOURCE_DATE_EPOCH = 1704067200
GPG_UID = "Hybrid Onboard Lab Agent Signing <agent-signing@lab.invalid>"
PUBKEY_NAME = "lab-agent-signing.gpg"
SSM_PACKAGE = "amazon-ssm-agent"
CW_PACKAGE = "amazon-cloudwatch-agent"


def _default_version(module: str) -> str:
    text = (SRC / module).read_text(encoding="utf-8")
    match = re.search(r'^DEFAULT_VERSION = "([^"]+)"', text, re.M)
    if not match:
        raise RuntimeError(f"{module} has no DEFAULT_VERSION")
    return match.group(1)


def versions() -> dict[str, str]:
    """Agent versions; overridable so a lab can publish a "newer" agent (AWS-UpdateSSMAgent tests)."""
    return {
        "ssm": os.environ.get("HYBRID_LAB_SSM_AGENT_VERSION") or _default_version("ssm_agent.py"),
        "cw": os.environ.get("HYBRID_LAB_CW_AGENT_VERSION") or _default_version("cw_agent.py"),
    }


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )
    return proc


# --- GPG ------------------------------------------------------------------------------------------------


def ensure_gpg_key(cache_dir: Path) -> tuple[Path, str, Path]:
    """(gpg homedir, key fingerprint, exported public key) — the key is generated once per cache."""
    home = cache_dir / "gpg"
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    base = [
        "gpg",
        "--homedir",
        str(home),
        "--batch",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]
    listing = subprocess.run([*base, "--with-colons", "--list-secret-keys"], capture_output=True, check=False)
    if b"\nfpr:" not in b"\n" + listing.stdout:
        log.info("generating the lab agent signing key in %s", home)
        # Created a day before SOURCE_DATE_EPOCH so the fixed-time signatures postdate the key.
        _run(
            [
                *base,
                "--faked-system-time",
                f"{SOURCE_DATE_EPOCH - 86400}!",
                "--quick-generate-key",
                GPG_UID,
                "rsa3072",
                "sign",
                "never",
            ]
        )
        listing = _run([*base, "--with-colons", "--list-secret-keys"])
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False
        )
    fingerprint = next(
        line.split(":")[9] for line in listing.stdout.decode().splitlines() if line.startswith("fpr:")
    )
    pubkey = home / PUBKEY_NAME
    exported = _run([*base, "--export", fingerprint]).stdout
    if not pubkey.exists() or pubkey.read_bytes() != exported:
        pubkey.write_bytes(exported)
        (home / "lab-agent-signing.asc").write_bytes(_run([*base, "--armor", "--export", fingerprint]).stdout)
    return home, fingerprint, pubkey


def sign(home: Path, fingerprint: str, path: Path) -> Path:
    """Detached binary signature ``<path>.sig`` at the fixed time (deterministic for RSA)."""
    sig = path.with_name(path.name + ".sig")
    _run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--no-tty",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--faked-system-time",
            f"{SOURCE_DATE_EPOCH}!",
            "--local-user",
            fingerprint,
            "--digest-algo",
            "SHA256",
            "--detach-sign",
            "--output",
            str(sig),
            str(path),
        ]
    )
    return sig


# --- Package layouts ------------------------------------------------------------------------------------

_FALLBACK_SSM_TEMPLATE = {
    "Profile": {"ShareCreds": True, "ShareProfile": "", "ForceUpdateCreds": False, "KeyAutoRotateDays": 0},
    "Mds": {"CommandWorkersLimit": 5, "Endpoint": ""},
    "Ssm": {"Endpoint": ""},
    "Agent": {"Region": ""},
    "S3": {"Endpoint": "", "Region": ""},
}
_FALLBACK_COMMON_CONFIG = (
    "# This common-config is used to configure items used for both ssm and cloudwatch access\n"
    "# (lab fallback: the vendored file was not available at build time)\n"
    '# [credentials]\n#    shared_credential_profile = "{profile_name}"\n'
    '#    shared_credential_file = "{file_name}"\n'
)
README = """This is the hybrid-onboard lab's STAND-IN for {name}: a small Python test double that behaves
like the real agent where the project touches it. It is not Amazon's software. Built by
tests/lab/agents/build.py.
"""


def _vendor(*parts: str) -> Path | None:
    path = Path(labconst.VENDOR_DIR, *parts)
    return path if path.is_file() else None


def ssm_layout(version: str, pubkey: Path) -> tuple[dict[str, tuple[bytes, int]], dict[str, str]]:
    """({install path: (content, mode)}, control fields) of amazon-ssm-agent."""
    lib = "usr/share/amazon-ssm-agent-lab"
    template = _vendor("amazon-ssm-agent", "amazon-ssm-agent.json.template")
    files = {
        "usr/bin/amazon-ssm-agent": ((SRC / "ssm" / "amazon-ssm-agent").read_bytes(), 0o755),
        "usr/bin/ssm-cli": ((SRC / "ssm" / "ssm-cli").read_bytes(), 0o755),
        f"{lib}/ssm_agent.py": ((SRC / "ssm_agent.py").read_bytes(), 0o644),
        f"{lib}/labaws.py": ((SRC / "labaws.py").read_bytes(), 0o644),
        f"{lib}/VERSION": (f"{version}\n".encode(), 0o644),
        f"{lib}/{PUBKEY_NAME}": (pubkey.read_bytes(), 0o644),
        "lib/systemd/system/amazon-ssm-agent.service": (
            (SRC / "ssm" / "amazon-ssm-agent.service").read_bytes(),
            0o644,
        ),
        "etc/amazon/ssm/amazon-ssm-agent.json.template": (
            template.read_bytes()
            if template
            else json.dumps(_FALLBACK_SSM_TEMPLATE, indent=4).encode() + b"\n",
            0o644,
        ),
        "usr/share/doc/amazon-ssm-agent/README.lab": (README.format(name=SSM_PACKAGE).encode(), 0o644),
    }
    license_file = _vendor("amazon-ssm-agent", "LICENSE")
    if license_file:
        files["usr/share/doc/amazon-ssm-agent/LICENSE"] = (license_file.read_bytes(), 0o644)
    control = {
        "Package": SSM_PACKAGE,
        "Version": f"{version}-1",
        "Architecture": "amd64",
        "Maintainer": "hybrid-onboard lab <lab@lab.invalid>",
        "Section": "admin",
        "Priority": "optional",
        "Depends": "python3 (>= 3.11), openssl, bash",
        "Homepage": "https://github.com/aws/amazon-ssm-agent",
        "Description": "Amazon SSM Agent (hybrid-onboard lab stand-in)\n"
        " Test double of amazon-ssm-agent for the hybrid-onboard lab: registration, Vault,\n"
        " heartbeats and Run Command over the documented wire protocol. Not Amazon's agent.",
    }
    return files, control


def cw_layout(version: str) -> tuple[dict[str, tuple[bytes, int]], dict[str, str], bool]:
    """({install path: (content, mode)}, control fields, schema packaged?) of amazon-cloudwatch-agent."""
    base = "opt/aws/amazon-cloudwatch-agent"
    files = {
        f"{base}/bin/amazon-cloudwatch-agent-ctl": (
            (SRC / "cw" / "amazon-cloudwatch-agent-ctl").read_bytes(),
            0o755,
        ),
        f"{base}/bin/config-translator": ((SRC / "cw" / "config-translator").read_bytes(), 0o755),
        f"{base}/bin/start-amazon-cloudwatch-agent": (
            (SRC / "cw" / "start-amazon-cloudwatch-agent").read_bytes(),
            0o755,
        ),
        f"{base}/bin/CWAGENT_VERSION": (f"{version}\n".encode(), 0o644),
        "etc/systemd/system/amazon-cloudwatch-agent.service": (
            (SRC / "cw" / "amazon-cloudwatch-agent.service").read_bytes(),
            0o644,
        ),
        f"{base}/README.lab": (README.format(name=CW_PACKAGE).encode(), 0o644),
    }
    for module in ("cw_agent.py", "cw_translator.py", "cw_metrics.py", "labaws.py"):
        files[f"{base}/lib/lab/{module}"] = ((SRC / module).read_bytes(), 0o644)
    files[f"{base}/lib/lab/VERSION"] = (f"{version}\n".encode(), 0o644)
    common = _vendor("amazon-cloudwatch-agent", "common-config.toml")
    files[f"{base}/etc/common-config.toml"] = (
        common.read_bytes() if common else _FALLBACK_COMMON_CONFIG.encode(),
        0o644,
    )
    schema = _vendor("amazon-cloudwatch-agent", "schema.json")
    if schema:
        files[f"{base}/doc/amazon-cloudwatch-agent-schema.json"] = (schema.read_bytes(), 0o644)
    else:
        log.warning(
            "vendor schema missing: config-translator in this package falls back to structural checks"
        )
    license_file = _vendor("amazon-cloudwatch-agent", "LICENSE")
    if license_file:
        files[f"{base}/LICENSE"] = (license_file.read_bytes(), 0o644)
    control = {
        "Package": CW_PACKAGE,
        "Version": f"{version}-1",
        "Architecture": "amd64",
        "Maintainer": "hybrid-onboard lab <lab@lab.invalid>",
        "Section": "admin",
        "Priority": "optional",
        "Depends": "python3 (>= 3.11)",
        "Homepage": "https://github.com/aws/amazon-cloudwatch-agent",
        "Description": "Amazon CloudWatch Agent (hybrid-onboard lab stand-in)\n"
        " Test double of amazon-cloudwatch-agent for the hybrid-onboard lab: ctl, config\n"
        " validation against the agent's schema, metrics and logs. Not Amazon's agent.",
    }
    return files, control, schema is not None


def build_deb(
    files: dict[str, tuple[bytes, int]],
    control: dict[str, str],
    scripts: dict[str, bytes],
    conffiles: list[str],
    out: Path,
) -> Path:
    """Lay out a package tree with fixed metadata and run ``dpkg-deb --build``."""
    with tempfile.TemporaryDirectory(prefix="holab-deb-") as tmp:
        root = Path(tmp) / "pkg"
        for rel, (content, mode) in sorted(files.items()):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            os.chmod(path, mode)
        size_kib = sum((len(c) + 1023) // 1024 for c, _mode in files.values())
        debian = root / "DEBIAN"
        debian.mkdir(parents=True)
        fields = dict(control)
        fields["Installed-Size"] = str(size_kib)
        order = [
            "Package",
            "Version",
            "Architecture",
            "Maintainer",
            "Installed-Size",
            "Depends",
            "Section",
            "Priority",
            "Homepage",
            "Description",
        ]
        text = "".join(f"{k}: {fields[k]}\n" for k in order if k in fields)
        (debian / "control").write_text(text, encoding="utf-8")
        for name, content in scripts.items():
            (debian / name).write_bytes(content)
            os.chmod(debian / name, 0o755)  # noqa: S103 - maintainer scripts must be executable
        if conffiles:
            (debian / "conffiles").write_text("".join(f"{c}\n" for c in conffiles), encoding="utf-8")
        for path in sorted(root.rglob("*"), reverse=True):
            if path.is_dir():
                os.chmod(path, 0o755)  # noqa: S103 - package directories are world-readable
            os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH), follow_symlinks=False)
        os.chmod(root, 0o755)  # noqa: S103 - dpkg-deb wants a 0755 package root
        os.utime(root, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH))
        _run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)], env=env)
    return out


# --- Cache + entry points -----------------------------------------------------------------------------------


def _inputs_hash(fingerprint: str, vers: dict[str, str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"versions": vers, "gpg": fingerprint, "epoch": SOURCE_DATE_EPOCH}).encode())
    paths = [
        Path(__file__).resolve(),
        *sorted(p for p in SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts),
    ]
    for name in (
        "amazon-ssm-agent/amazon-ssm-agent.json.template",
        "amazon-ssm-agent/LICENSE",
        "amazon-cloudwatch-agent/schema.json",
        "amazon-cloudwatch-agent/common-config.toml",
        "amazon-cloudwatch-agent/LICENSE",
    ):
        paths.append(Path(labconst.VENDOR_DIR) / name)
    for path in paths:
        digest.update(
            str(path.relative_to(path.anchor)).encode() if path.is_absolute() else str(path).encode()
        )
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:16]


def _manifest(ssm_version: str, deb: Path) -> dict:
    return {
        "SchemaVersion": "1.0",
        "Packages": [
            {
                "Name": SSM_PACKAGE,
                "Files": [
                    {
                        "Name": "debian_amd64/amazon-ssm-agent.deb",
                        "AvailableVersions": [
                            {
                                "Version": ssm_version,
                                "Checksum": hashlib.sha256(deb.read_bytes()).hexdigest(),
                                "ChecksumType": "sha256",
                            }
                        ],
                    }
                ],
            }
        ],
    }


def build_cached(cache_dir: Path | None = None) -> Path:
    """Build (or reuse) the packages under ``<cache>/agents/<hash>/``; return that directory."""
    cache_dir = Path(cache_dir or labconst.CACHE_DIR)
    home, fingerprint, pubkey = ensure_gpg_key(cache_dir)
    vers = versions()
    target = cache_dir / "agents" / _inputs_hash(fingerprint, vers)
    if (target / "DONE").exists():
        log.info("agent packages up to date in %s", target)
        return target
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent if target.parent.exists() else None))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        ssm_files, ssm_control = ssm_layout(vers["ssm"], pubkey)
        ssm_deb = build_deb(
            ssm_files,
            ssm_control,
            {n: (SRC / "ssm" / n).read_bytes() for n in ("postinst", "prerm", "postrm")},
            [],
            staging / f"{SSM_PACKAGE}_{vers['ssm']}-1_amd64.deb",
        )
        cw_files, cw_control, has_schema = cw_layout(vers["cw"])
        cw_deb = build_deb(
            cw_files,
            cw_control,
            {n: (SRC / "cw" / n).read_bytes() for n in ("postinst", "prerm")},
            ["/opt/aws/amazon-cloudwatch-agent/etc/common-config.toml"],
            staging / f"{CW_PACKAGE}_{vers['cw']}-1_amd64.deb",
        )
        try:
            for deb in (ssm_deb, cw_deb):
                sign(home, fingerprint, deb)
        finally:
            # gpg leaves a gpg-agent running per homedir; stop the one this build started.
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False
            )
        shutil.copyfile(pubkey, staging / PUBKEY_NAME)
        (staging / "VERSION").write_text(vers["ssm"] + "\n", encoding="utf-8")
        (staging / "CW_VERSION").write_text(vers["cw"] + "\n", encoding="utf-8")
        (staging / "ssm-agent-manifest.json").write_text(
            json.dumps(_manifest(vers["ssm"], ssm_deb), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        (staging / "build.json").write_text(
            json.dumps(
                {
                    "ssm_version": vers["ssm"],
                    "cw_version": vers["cw"],
                    "gpg_fingerprint": fingerprint,
                    "cw_schema_packaged": has_schema,
                    "ssm_deb": ssm_deb.name,
                    "cw_deb": cw_deb.name,
                },
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        (staging / "DONE").write_text("", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.info("built agent packages in %s", target)
    return target


def build_all(out_dir, cache_dir: Path | None = None) -> dict:
    """Build (cached) and copy the packages, signatures, public key and VERSION into `out_dir`.

    Returns paths and versions: ``ssm_deb``, ``ssm_sig``, ``cw_deb``, ``cw_sig``, ``pubkey``,
    ``version_file``, ``manifest``, ``ssm_version``, ``cw_version``, ``gpg_fingerprint``,
    ``cw_schema_packaged``, ``cache``.
    """
    cached = build_cached(cache_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for item in sorted(cached.iterdir()):
        if item.name != "DONE":
            shutil.copyfile(item, out / item.name)
    meta = json.loads((cached / "build.json").read_text(encoding="utf-8"))
    return {
        "ssm_deb": out / meta["ssm_deb"],
        "ssm_sig": out / (meta["ssm_deb"] + ".sig"),
        "cw_deb": out / meta["cw_deb"],
        "cw_sig": out / (meta["cw_deb"] + ".sig"),
        "pubkey": out / PUBKEY_NAME,
        "version_file": out / "VERSION",
        "manifest": out / "ssm-agent-manifest.json",
        "ssm_version": meta["ssm_version"],
        "cw_version": meta["cw_version"],
        "gpg_fingerprint": meta["gpg_fingerprint"],
        "cw_schema_packaged": meta["cw_schema_packaged"],
        "cache": cached,
    }


def _ensure_bucket(s3_client, bucket: str, region: str) -> None:
    try:
        s3_client.head_bucket(Bucket=bucket)
        return
    except Exception as exc:  # noqa: BLE001 - ClientError 404; a real problem resurfaces in create_bucket
        log.debug("bucket %s not there yet (%s); creating it", bucket, exc)
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3_client.create_bucket(Bucket=bucket, **kwargs)


def publish(s3_client, built: dict | None = None, region: str | None = None) -> list[str]:
    """Upload the packages where AWS publishes the real ones; return the ``s3://`` URLs written."""
    region = region or labconst.REGION
    built = built or build_all(Path(labconst.CACHE_DIR) / "agents" / "out")
    ssm_bucket = f"amazon-ssm-{region}"
    cw_bucket = f"amazoncloudwatch-agent-{region}"
    if region == labconst.REGION:
        ssm_bucket, cw_bucket = labconst.SSM_AGENT_BUCKET, labconst.CW_AGENT_BUCKET
    uploads: list[tuple[str, str, Path]] = []
    for prefix in ("latest", built["ssm_version"]):
        uploads += [
            (ssm_bucket, f"{prefix}/debian_amd64/amazon-ssm-agent.deb", built["ssm_deb"]),
            (ssm_bucket, f"{prefix}/debian_amd64/amazon-ssm-agent.deb.sig", built["ssm_sig"]),
        ]
    uploads += [
        (ssm_bucket, "latest/VERSION", built["version_file"]),
        (ssm_bucket, "ssm-agent-manifest.json", built["manifest"]),
    ]
    for os_dir in ("debian", "ubuntu"):
        for prefix in ("latest", built["cw_version"]):
            uploads += [
                (cw_bucket, f"{os_dir}/amd64/{prefix}/amazon-cloudwatch-agent.deb", built["cw_deb"]),
                (cw_bucket, f"{os_dir}/amd64/{prefix}/amazon-cloudwatch-agent.deb.sig", built["cw_sig"]),
            ]
    for bucket in (ssm_bucket, cw_bucket):
        _ensure_bucket(s3_client, bucket, region)
    written = []
    for bucket, key, path in uploads:
        # AWS's agent buckets are world-readable: hosts download anonymously (wget/curl, no signature).
        s3_client.put_object(Bucket=bucket, Key=key, Body=Path(path).read_bytes(), ACL="public-read")
        written.append(f"s3://{bucket}/{key}")
    log.info("published %d objects to %s and %s", len(written), ssm_bucket, cw_bucket)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to copy the packages into")
    parser.add_argument("--cache", help=f"cache directory (default {labconst.CACHE_DIR})")
    parser.add_argument("--publish", action="store_true", help="also upload to the emulator's S3")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        built = build_all(args.out, Path(args.cache) if args.cache else None)
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    for key in ("ssm_deb", "cw_deb", "pubkey", "version_file"):
        print(built[key])
    if args.publish:
        import boto3  # controller-side only

        env = labconst.controller_env()
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=labconst.REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        for url in publish(s3, built):
            print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
