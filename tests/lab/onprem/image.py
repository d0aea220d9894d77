"""The Debian 12 image every on-prem host boots: built once with debootstrap, cached, shared read-only.

The cache key covers everything that changes the image's content (package list, lab CA, build
recipe version), so a new CA or package list builds a new image instead of reusing a stale one.
A build happens in a temporary directory and is renamed into place only when complete, so a
killed build never leaves a directory that looks like a finished image.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import labconst

from .system import OnpremError, run, unmount_under

log = logging.getLogger(__name__)

# Bump when the recipe below changes in a way the package list and CA do not capture.
FORMAT_VERSION = 3
SUITE = "bookworm"
MIRROR = os.environ.get("HYBRID_LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
VARIANT = "minbase"  # smallest base that boots systemd; everything else comes from PACKAGES
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "ca-certificates",
    "dnsutils",
    "curl",
    "wget",
    "gnupg",
    "iproute2",
    "procps",
    "bind9",
    "bind9-utils",
    "unbound",
    "less",
    "sudo",
    "tzdata",  # so /etc/localtime names a real zone file (UTC) instead of relying on libc's fallback
    "rsyslog",  # /var/log/syslog, the log file AWS's published CloudWatch agent procedure collects
    "libfaketime",  # per-host clock skew (`scripts/lab fault HOST clock SECONDS`): containers share the kernel clock
)
IMAGE_PREFIX = "image-"
BUILD_PREFIX = ".build-"
# Written last, before the rename: a directory named image-<key> without it is not trusted.
COMPLETE_MARKER = "etc/hybrid-onboard-lab-image"
CA_FILE_IN_IMAGE = "usr/local/share/ca-certificates/hybrid-onboard-lab-ca.crt"
# Services present in the image but left for the project's roles to configure and enable.
DISABLED_UNITS = ("named.service", "unbound.service", "unbound-resolvconf.service")
# Units that only make noise in a lab container (no network beyond the lab, no updates to fetch).
MASKED_UNITS = (
    # No console to ask passwords on; in a container these fail and mark the system "degraded".
    "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path",
    # A login prompt on a console nobody types into (nspawn runs with --console=read-only); each
    # getty also holds an inotify instance, and those are what limits how many hosts fit.
    "console-getty.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "apt-daily.service",
    "apt-daily-upgrade.service",
)

# Host keys: ed25519 and ecdsa only. `ssh-keygen -A` would also make a 3072-bit RSA key, which
# costs about a CPU-second per host and made 20 hosts booting together wait 14 s for sshd.
HOST_KEY_TYPES = ("ed25519", "ecdsa")
SSHD_DROPIN = (
    "# hybrid-onboard lab: the image carries no host keys; each host makes its own at first start.\n"
    "[Service]\n"
    "ExecStartPre=\n"
    + "".join(
        f"ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_{t}_key || "
        f'/usr/bin/ssh-keygen -q -t {t} -N "" -f /etc/ssh/ssh_host_{t}_key\'\n'
        for t in HOST_KEY_TYPES
    )
    + "ExecStartPre=/usr/sbin/sshd -t\n"
)
SSHD_CONFIG = (
    "# hybrid-onboard lab: the controller logs in as root with its key only.\n"
    "PermitRootLogin prohibit-password\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "UseDNS no\n" + "".join(f"HostKey /etc/ssh/ssh_host_{t}_key\n" for t in HOST_KEY_TYPES)
)
APT_OFFLINE = """\
// hybrid-onboard lab: the image has no package sources; packages arrive as files (dpkg -i / apt-get
// install ./x.deb). Nothing here may reach a network, so periodic jobs are off as well.
APT::Periodic::Enable "0";
APT::Periodic::Update-Package-Lists "0";
APT::Periodic::Unattended-Upgrade "0";
"""
RESOLV_PLACEHOLDER = "# hybrid-onboard lab: replaced per host when the host is provisioned\n"
HOSTS_BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def ca_fingerprint(cert_path: Path) -> str:
    """SHA-256 of the CA certificate's DER encoding (what `openssl x509 -fingerprint -sha256` shows)."""
    from cryptography import x509  # imported here so the pure helpers import without it

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def image_key(packages: tuple[str, ...] | list[str], ca_fp: str, version: int = FORMAT_VERSION) -> str:
    """Cache key of an image: order-insensitive in packages, sensitive to the CA and recipe version."""
    material = json.dumps(
        {
            "version": version,
            "suite": SUITE,
            "variant": VARIANT,
            "packages": sorted(set(packages)),
            "ca": ca_fp,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def debootstrap_cmd(target: Path, cache_dir: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The debootstrap command line (downloads are kept in `cache_dir` so a rebuild is quick)."""
    return [
        "debootstrap",
        f"--variant={VARIANT}",
        f"--include={','.join(packages)}",
        f"--cache-dir={cache_dir}",
        "--merged-usr",
        SUITE,
        str(target),
        MIRROR,
    ]


def is_complete(image: Path) -> bool:
    return (image / COMPLETE_MARKER).is_file()


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)


def _chroot(root: Path, *cmd: str) -> None:
    # A fixed PATH and no host locale: the chroot's tools run as they would inside the host.
    run(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "chroot", str(root), *cmd])


def configure(root: Path, ca_cert: Path, key: str) -> None:
    """Turn a fresh debootstrap tree into the lab image (everything after package installation)."""
    # Trust the lab CA exactly as an administrator would on a real server.
    (root / CA_FILE_IN_IMAGE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_cert, root / CA_FILE_IN_IMAGE)
    (root / CA_FILE_IN_IMAGE).chmod(0o644)
    _chroot(root, "update-ca-certificates", "--fresh")

    # Identity comes per host: machine-id, hostname, SSH host keys must not be shared.
    _write(root, "etc/machine-id", "", 0o444)
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    (root / "etc/hostname").unlink(missing_ok=True)
    for hostkey in (root / "etc/ssh").glob("ssh_host_*"):
        hostkey.unlink()
    _write(root, "etc/systemd/system/ssh.service.d/hybrid-onboard-lab-hostkeys.conf", SSHD_DROPIN)
    _write(root, "etc/ssh/sshd_config.d/hybrid-onboard-lab.conf", SSHD_CONFIG)
    root_ssh = root / "root/.ssh"
    root_ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    root_ssh.chmod(0o700)

    # debootstrap copied the build machine's resolv.conf and hostname: never leak them into hosts.
    _write(root, "etc/resolv.conf", RESOLV_PLACEHOLDER)
    _write(root, "etc/hosts", HOSTS_BASE)

    # DNS servers installed, not running: the project's onprem_dns role decides which one runs.
    _chroot(root, "systemctl", "disable", *DISABLED_UNITS)
    _chroot(root, "systemctl", "mask", *MASKED_UNITS)

    # apt: no sources at all, so nothing in a host can reach out for packages.
    _write(root, "etc/apt/sources.list", "# hybrid-onboard lab: no package sources (closed network)\n")
    for extra in (root / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    _write(root, "etc/apt/apt.conf.d/99hybrid-onboard-lab-offline", APT_OFFLINE)
    _chroot(root, "apt-get", "clean")
    for lists in (root / "var/lib/apt/lists").glob("*"):
        if lists.is_file():
            lists.unlink()

    # UTC everywhere and a UTF-8 locale that needs no locales package (C.UTF-8 ships with libc).
    _write(root, "etc/timezone", "Etc/UTC\n")
    localtime = root / "etc/localtime"
    if localtime.exists() or localtime.is_symlink():
        localtime.unlink()
    localtime.symlink_to("/usr/share/zoneinfo/Etc/UTC")
    _write(root, "etc/default/locale", "LANG=C.UTF-8\n")
    _write(root, "etc/locale.conf", "LANG=C.UTF-8\n")

    _write(root, COMPLETE_MARKER, json.dumps({"key": key, "built": int(time.time())}) + "\n")


def _remove_tree(path: Path) -> None:
    # A killed debootstrap leaves /proc and /sys mounted inside its target; rmtree must not walk them.
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


def clean_stale_builds(cache_dir: Path = labconst.CACHE_DIR) -> None:
    """Remove leftovers of builds that did not finish (call with the build lock held)."""
    if cache_dir.is_dir():
        for stale in cache_dir.glob(f"{BUILD_PREFIX}{IMAGE_PREFIX}*"):
            log.info("removing unfinished image build %s", stale)
            _remove_tree(stale)


def prune_old_images(cache_dir: Path, keep: Path) -> None:
    """Remove images of earlier keys (about 300 MB each) unless a host overlay still uses one."""
    in_use = Path("/proc/self/mounts").read_text()
    for old in cache_dir.glob(f"{IMAGE_PREFIX}*"):
        if old != keep and old.is_dir() and f"lowerdir={old}" not in in_use:
            log.info("removing superseded image %s", old)
            _remove_tree(old)


def current_ca() -> Path:
    """The lab CA certificate (created on first use by the lab's CA module)."""
    from labca import ensure_ca

    cert, _key = ensure_ca()
    return Path(cert)


def ensure_image(ca_cert: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Return the path of a complete lab image, building it first if the cache has none."""
    cache_dir = labconst.CACHE_DIR if cache_dir is None else cache_dir
    ca_cert = current_ca() if ca_cert is None else ca_cert
    key = image_key(PACKAGES, ca_fingerprint(ca_cert))
    image = cache_dir / f"{IMAGE_PREFIX}{key}"
    if is_complete(image):
        return image
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".image.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others wait and reuse its image
        if is_complete(image):
            return image
        clean_stale_builds(cache_dir)
        if image.exists():
            log.warning("image %s exists but is incomplete; rebuilding", image)
            _remove_tree(image)
        build = cache_dir / f"{BUILD_PREFIX}{IMAGE_PREFIX}{key}-{os.getpid()}"
        debs = cache_dir / "debs"
        debs.mkdir(exist_ok=True)
        log.info("building lab image %s (debootstrap %s from %s)", image.name, SUITE, MIRROR)
        started = time.monotonic()
        try:
            run(debootstrap_cmd(build, debs), timeout=1800)
            configure(build, ca_cert, key)
            os.rename(build, image)
        except BaseException:
            _remove_tree(build)
            raise
        log.info("built lab image %s in %.0fs", image, time.monotonic() - started)
        prune_old_images(cache_dir, keep=image)
    if not is_complete(image):
        raise OnpremError(f"image build finished but {image} is incomplete; remove it and run again")
    return image
