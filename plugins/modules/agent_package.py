#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports. Runs on the managed host: standard library and
# ansible.module_utils only, Python 3.6 syntax (RHEL 8's platform Python).
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: agent_package
short_description: Install an AWS agent package from its bucket, verified before dpkg or rpm sees it
version_added: 0.2.0
description:
  - Runs on the managed host and does in one step what an agent install takes - so a fleet pays one SSH round
    trip per host, not a dozen. In order.
  - Reads the package's state (C(dpkg-query) or C(rpm)). A Debian package left unpacked or half-configured by an
    interrupted run (C(iU), C(iF), C(iW), C(it)) is finished first with C(dpkg --configure -a), with a warning.
  - With O(version=latest) and O(latest_url), reads the bucket's C(VERSION) file; the package is installed when it
    is missing, broken, or not the wanted version. With O(version=latest) and no O(latest_url), any installed
    version will do.
  - Otherwise downloads O(package_url) (and its C(.sig) with O(verify=gpg)) into O(download_dir), verifies it -
    the detached signature with C(gpgv) against O(gpg_key_b64) or O(gpg_key) in a throwaway keyring, or the SHA-256
    with O(sha256) - and only then installs it (C(dpkg -i), C(rpm -U --replacepkgs)). A file that fails
    verification is deleted, so no later run can pick it up, and nothing is installed.
  - C({version}) in O(package_url) and O(download_dir) stands for the version to install.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  name:
    description: The package's name (C(amazon-ssm-agent), C(amazon-cloudwatch-agent)).
    type: str
    required: true
  pkg_type:
    description: The host's package format.
    type: str
    choices: [deb, rpm]
    required: true
  version:
    description: The version to have installed (C(3.3.40.0)), or V(latest).
    type: str
    default: latest
  latest_url:
    description: The URL of the bucket's C(VERSION) file, read with O(version=latest).
    type: str
  package_url:
    description: The package's URL; C({version}) is replaced by the version to install.
    type: str
    required: true
  download_dir:
    description: Where the package is downloaded on the host (made C(0755), owned by root); C({version}) as above.
    type: path
    required: true
  verify:
    description: V(gpg) checks C(<package_url>.sig); V(sha256) compares the file's digest with O(sha256).
    type: str
    choices: [gpg, sha256]
    default: gpg
  gpg_key_b64:
    description:
      - The signer's public key, base64 of the key file (ASCII-armored or binary), as C(slurp) returns it from the
        controller. Never fetched from the internet.
    type: str
  gpg_key:
    description: The signer's public key file on the host, instead of O(gpg_key_b64).
    type: path
  sha256:
    description: The package's SHA-256 digest, 64 hexadecimal characters; required with O(verify=sha256).
    type: str
  ca_path:
    description: A PEM bundle of the CAs to trust for the downloads (a TLS-inspecting proxy's); default the system's.
    type: path
  timeout:
    description: Seconds for each download.
    type: int
    default: 60
  retries:
    description: Download attempts after the first, for a network that drops a connection now and then.
    type: int
    default: 3
  delay:
    description: Seconds between download attempts.
    type: int
    default: 5
notes:
  - Supports check mode (reports what it would install or finish, changes nothing).
  - Needs C(gpgv) (or C(gpgv2)) with O(verify=gpg).
"""

EXAMPLES = r"""
- name: Install the SSM Agent through the S3 interface endpoint
  hybrid.onboard.agent_package:
    name: amazon-ssm-agent
    pkg_type: deb
    latest_url: https://bucket.vpce-0abc.s3.eu-west-1.vpce.amazonaws.com/amazon-ssm-eu-west-1/latest/VERSION
    package_url: >-
      https://bucket.vpce-0abc.s3.eu-west-1.vpce.amazonaws.com/amazon-ssm-eu-west-1/{version}/debian_amd64/amazon-ssm-agent.deb
    download_dir: /var/cache/hybrid-onboard/ssm-agent/{version}/debian_amd64
    gpg_key_b64: "{{ key.content }}"
"""

RETURN = r"""
installed_version:
  description: The package's version on the host when the module ends (empty when it is not installed).
  returned: always
  type: str
  sample: 3.3.40.0-1
target_version:
  description: The version wanted (the bucket's C(VERSION) with O(version=latest) and O(latest_url)).
  returned: always
  type: str
  sample: 3.3.40.0
installed:
  description: Whether the package was (in check mode, would be) installed by this run.
  returned: always
  type: bool
recovered:
  description: Whether an interrupted dpkg run was (would be) finished.
  returned: always
  type: bool
url:
  description: The URL the package was (would be) downloaded from.
  returned: when installed
  type: str
sha256:
  description: The SHA-256 of the installed file.
  returned: when installed, not in check mode
  type: str
signer:
  description: Fingerprint of the key that made the signature, with O(verify=gpg).
  returned: when installed with O(verify=gpg), not in check mode
  type: str
"""

import base64
import binascii
import os
import re
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_package import (
    HEX64,
    ArmorError,
    gpg_check,
    key_bytes,
    load_key,
    sha256_of,
)
from ansible.module_utils.urls import open_url

_BROKEN = ("iU", "iF", "iW", "it")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+~_-]*$")


class Installer:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.result = {"changed": False, "installed": False, "recovered": False}
        self.key = None

    def fail(self, msg, **extra):
        self.result.update(extra)
        self.module.fail_json(msg="%s: %s" % (self.p["name"], msg), **self.result)

    def validate(self):
        p = self.p
        if p["version"] != "latest" and not _VERSION.match(p["version"]):
            self.fail("version must be latest or a version such as 3.3.40.0; got %r" % p["version"])
        if p["verify"] == "sha256" and not HEX64.match((p["sha256"] or "").strip()):
            self.fail("sha256 must be the package's SHA-256 digest, 64 hexadecimal characters, with verify=sha256")
        if p["verify"] == "gpg" and not (p["gpg_key_b64"] or p["gpg_key"]):
            self.fail("verify=gpg needs the signer's public key: gpg_key_b64 or gpg_key")
        for option in ("timeout", "retries", "delay"):
            if p[option] < (1 if option == "timeout" else 0):
                self.fail("%s must be %s; got %d" % (option, "1 or more" if option == "timeout" else ">= 0", p[option]))

    # -- the package database -----------------------------------------------------------------------------------
    def state(self):
        """(two-letter dpkg status, version); ("", "") when the package is not installed."""
        if self.p["pkg_type"] == "deb":
            argv = ["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", self.p["name"]]
        else:
            argv = ["rpm", "-q", "--qf", "ii |%{VERSION}", self.p["name"]]
        rc, out, _err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0 or "|" not in out:
            return "", ""
        status, version = out.strip().split("|", 1)
        return status[:2], version.strip()

    def run_or_fail(self, argv, what):
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            lines = [line for line in (err or out or "").splitlines() if line.strip()]
            self.fail("%s failed (rc %d): %s" % (what, rc, "; ".join(lines[-4:]) or "no output"))
        return out

    # -- downloads ----------------------------------------------------------------------------------------------
    def fetch(self, url, dest=None):
        """The body of ``url`` (or written to ``dest``), with the retries; fails the module after the last."""
        attempts = self.p["retries"] + 1
        error = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.p["delay"])
            try:
                response = open_url(
                    url,
                    timeout=self.p["timeout"],
                    ca_path=self.p["ca_path"],
                    validate_certs=True,
                    http_agent="hybrid-onboard-agent-package",
                )
                if dest is None:
                    return response.read()
                self.write(response, dest)
                return None
            except Exception as exc:  # noqa: BLE001 - HTTPError, URLError, socket and SSL errors alike
                error = getattr(exc, "code", None) and "HTTP %s" % exc.code or to_native(exc)
        self.fail("could not download %s after %d attempt(s): %s" % (url, attempts, error), url=url)

    @staticmethod
    def write(response, dest):
        handle, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".download-")
        try:
            with os.fdopen(handle, "wb") as out:
                while True:
                    chunk = response.read(1024 * 1024)
                    if not chunk:
                        break
                    out.write(chunk)
            os.chmod(tmp, 0o644)
            os.rename(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def target(self):
        if self.p["version"] != "latest":
            return self.p["version"]
        if not self.p["latest_url"]:
            return None
        text = to_native(self.fetch(self.p["latest_url"]) or b"").strip()
        if not _VERSION.match(text):
            self.fail("%s does not hold a version (got %r)" % (self.p["latest_url"], text[:80]))
        return text

    # -- trust --------------------------------------------------------------------------------------------------
    def read_key(self):
        try:
            if self.p["gpg_key_b64"]:
                return key_bytes(base64.b64decode(self.p["gpg_key_b64"]))
            return load_key(self.p["gpg_key"])
        except (ArmorError, IOError, OSError, binascii.Error, ValueError) as exc:
            self.fail("the signer's public key is not usable: %s" % exc)

    def verify(self, package, url):
        """Fails (after deleting the downloads) unless the package can be trusted; returns its sha256 and signer."""
        signer = None
        if self.p["verify"] == "gpg":
            gpgv = self.module.get_bin_path("gpgv") or self.module.get_bin_path("gpgv2")
            if not gpgv:
                self.fail("gpgv is not installed on this host: install gpgv (Debian/Ubuntu) or gnupg2 (RHEL), or "
                          "verify with sha256. Nothing was installed.")
            reason, stderr, signer, _uid, expired = gpg_check(
                self.module.run_command, gpgv, self.key, package + ".sig", package)
            if reason is not None:
                self.discard(package)
                self.fail("%s: signature does not verify: %s (downloaded from %s). The file was deleted; nothing was "
                          "installed." % (package, reason, url), gpgv_output=stderr, url=url)
            if expired:
                self.module.warn("%s is signed by key %s, which has expired since: get the signer's current public "
                                 "key" % (package, signer))
        actual = sha256_of(package)
        expected = (self.p["sha256"] or "").strip().lower()
        if expected and actual != expected:
            self.discard(package)
            self.fail("%s: sha256 is %s, expected %s (downloaded from %s). The file was deleted; nothing was "
                      "installed." % (package, actual, expected, url), url=url)
        return actual, signer

    @staticmethod
    def discard(package):
        for path in (package, package + ".sig"):
            if os.path.exists(path):
                os.unlink(path)

    # -- the run ------------------------------------------------------------------------------------------------
    def run(self):
        self.validate()
        p, result = self.p, self.result
        if p["verify"] == "gpg":
            self.key = self.read_key()  # a key that cannot be used stops the run before anything changes
        status, version = self.state()
        if p["pkg_type"] == "deb" and status in _BROKEN:
            result.update(changed=True, recovered=True)
            self.module.warn(
                "%s was left %s by an interrupted dpkg run: %s dpkg --configure -a"
                % (p["name"], status, "would finish it with" if self.module.check_mode else "finished it with")
            )
            if not self.module.check_mode:
                self.run_or_fail(["dpkg", "--configure", "-a"], "dpkg --configure -a")
                status, version = self.state()
        target = self.target()
        upstream = version.split("-")[0]
        result.update(installed_version=version if status == "ii" else "", target_version=target or upstream)
        if status == "ii" and (target is None or upstream == target):
            self.module.exit_json(**result)

        wanted = target or "latest"
        url = p["package_url"].replace("{version}", wanted)
        result.update(changed=True, installed=True, url=url, target_version=wanted)
        if self.module.check_mode:
            result["msg"] = "would install %s %s from %s" % (p["name"], wanted, url)
            self.module.exit_json(**result)

        directory = p["download_dir"].replace("{version}", wanted)
        try:
            os.makedirs(directory, 0o755)
        except OSError:
            if not os.path.isdir(directory):
                raise
        package = os.path.join(directory, url.rsplit("/", 1)[-1].split("?")[0])
        self.fetch(url, package)
        if p["verify"] == "gpg":
            self.fetch(url + ".sig", package + ".sig")
        digest, signer = self.verify(package, url)
        if p["pkg_type"] == "deb":
            self.run_or_fail(["dpkg", "-i", package], "dpkg -i " + package)
        else:
            self.run_or_fail(["rpm", "-U", "--replacepkgs", package], "rpm -U " + package)
        status, version = self.state()
        if status != "ii":
            self.fail("%s was installed from %s but the package database says %r" % (package, url, status or "absent"))
        result.update(installed_version=version, sha256=digest, signer=signer)
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            pkg_type=dict(type="str", choices=["deb", "rpm"], required=True),
            version=dict(type="str", default="latest"),
            latest_url=dict(type="str"),
            package_url=dict(type="str", required=True),
            download_dir=dict(type="path", required=True),
            verify=dict(type="str", choices=["gpg", "sha256"], default="gpg"),
            gpg_key_b64=dict(type="str", no_log=False),  # a public key, not a secret
            gpg_key=dict(type="path"),
            sha256=dict(type="str"),
            ca_path=dict(type="path"),
            timeout=dict(type="int", default=60),
            retries=dict(type="int", default=3),
            delay=dict(type="int", default=5),
        ),
        mutually_exclusive=[("gpg_key_b64", "gpg_key")],
        supports_check_mode=True,
    )
    Installer(module).run()


if __name__ == "__main__":
    main()
