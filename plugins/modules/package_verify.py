#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports. Runs on the managed host: standard library only,
# Python 3.6 syntax (RHEL 8's platform Python).
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: package_verify
short_description: Verify a downloaded package file on the host by its detached GPG signature or its SHA-256
version_added: 0.1.0
description:
  - Runs on the managed host (Python standard library only) before a package is installed, and fails when the
    file cannot be trusted.
  - With O(method=gpg) (the default) it checks the detached signature (AWS publishes a binary C(.sig) beside every
    agent package) with C(gpgv) against the public key file O(gpg_key) that is already on the host - ASCII-armored
    or binary. The key is put into a throwaway keyring; no keyring of the host is used or changed, and no key is
    ever fetched from the network.
  - With O(method=sha256) it compares the file's SHA-256 digest with O(sha256).
  - Never changes anything and always reports C(changed=false); it runs the same in check mode.
author:
  - hybrid-onboard contributors
options:
  path:
    description: The package file to verify, on the host.
    type: path
    required: true
  method:
    description:
      - V(gpg) checks the detached signature O(signature) with O(gpg_key); V(sha256) compares the digest with
        O(sha256).
    type: str
    choices: [gpg, sha256]
    default: gpg
  signature:
    description: The detached signature file (binary or armored), on the host. Defaults to C(<path>.sig).
    type: path
  gpg_key:
    description:
      - The signer's public key file on the host, ASCII-armored (C(-----BEGIN PGP PUBLIC KEY BLOCK-----)) or
        binary (as C(gpg --export) writes it). Required with O(method=gpg).
      - AWS rotates its agents' signing key; supply the current one (the key is never fetched from the internet).
    type: path
  sha256:
    description:
      - Expected SHA-256 digest of O(path), 64 hexadecimal characters (any case). Required with O(method=sha256);
        with O(method=gpg) it is compared too when set.
    type: str
notes:
  - Supports check mode; it never changes anything.
  - Needs C(gpgv) (or C(gpgv2)) for O(method=gpg); it is part of the base system of Debian, Ubuntu, RHEL and
    their relatives.
  - A signature made by a key that has expired since is accepted with a warning (C(gpgv) reports it as good); a
    signature by a revoked key fails.
seealso:
  - module: hybrid.onboard.endpoint_probe
"""

EXAMPLES = r"""
- name: Verify the downloaded agent package with AWS's public key
  hybrid.onboard.package_verify:
    path: /var/tmp/hybrid-onboard/amazon-ssm-agent.deb
    gpg_key: /etc/hybrid-onboard/amazon-ssm-agent.gpg

- name: Verify a package by its published digest
  hybrid.onboard.package_verify:
    path: /var/tmp/hybrid-onboard/amazon-cloudwatch-agent.rpm
    method: sha256
    sha256: 8b1a9953c4611296a827abf8c47804d7e6c49c6b6b8f2f0a1d0e6b1f0e7c2a9d
"""

RETURN = r"""
verified:
  description: Whether the file verified (always true on success; the module fails otherwise).
  returned: always
  type: bool
  sample: true
file:
  description:
    - The file that was verified (O(path)). Not called C(path) - Ansible would add the file's owner, mode and size
      to the result.
  returned: always
  type: str
  sample: /var/tmp/hybrid-onboard/amazon-ssm-agent.deb
method:
  description: The method used, V(gpg) or V(sha256).
  returned: success
  type: str
  sample: gpg
sha256:
  description: The file's actual SHA-256 digest (lower-case hex).
  returned: success, and on a digest mismatch
  type: str
  sample: 8b1a9953c4611296a827abf8c47804d7e6c49c6b6b8f2f0a1d0e6b1f0e7c2a9d
signature:
  description: The signature file that was checked; null with O(method=sha256).
  returned: success
  type: str
  sample: /var/tmp/hybrid-onboard/amazon-ssm-agent.deb.sig
signer:
  description: Fingerprint of the key that made the signature, as C(gpgv) reports it; null with O(method=sha256).
  returned: success
  type: str
  sample: 97DD6D48E6F7D6B0A2C45C2B8C0F5C0F0E0C0A0B
signer_uid:
  description: User id of the signing key, as C(gpgv) reports it; null with O(method=sha256).
  returned: success
  type: str
  sample: SSM Agent <ssm-agent-signer@amazon.com>
gpgv_output:
  description: What C(gpgv) said (its stderr) when it did not accept the signature.
  returned: when gpgv rejected the signature
  type: str
  sample: "gpgv: BAD signature from \"SSM Agent <ssm-agent-signer@amazon.com>\" [unknown]"
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_package import (  # noqa: F401 - crc24, dearmor: tested through this module
    HEX64,
    ArmorError,
    crc24,
    dearmor,
    gpg_check,
    load_key,
    sha256_of,
)


class Verifier:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.path = self.params["path"]
        self.result = {"verified": False, "file": self.path}

    def fail(self, msg, **extra):
        self.result.update(extra)
        self.module.fail_json(msg=msg, **self.result)

    def validate(self):
        params = self.params
        if params["sha256"] is not None and not HEX64.match(params["sha256"].strip()):
            self.fail(
                "sha256 must be the file's SHA-256 digest, 64 hexadecimal characters; got %r (%d characters)"
                % (params["sha256"], len(params["sha256"]))
            )
        if not os.path.isfile(self.path):
            self.fail("path: %s does not exist or is not a file: download the package first" % self.path)
        if params["method"] == "gpg" and not os.path.isfile(params["gpg_key"]):
            self.fail(
                "gpg_key: %s does not exist on the host: copy the signer's public key there first "
                "(it is never fetched from the internet)" % params["gpg_key"]
            )

    def check_sha256(self, actual):
        expected = self.params["sha256"]
        if expected is not None and actual != expected.strip().lower():
            self.fail("%s: sha256 is %s, expected %s" % (self.path, actual, expected.strip().lower()), sha256=actual)

    def check_gpg(self):
        gpg_key = self.params["gpg_key"]
        signature = self.params["signature"] or self.path + ".sig"
        prefix = "%s: signature does not verify with %s: " % (self.path, gpg_key)
        if not os.path.isfile(signature):
            self.fail(prefix + "signature file %s not found (signature)" % signature)
        gpgv = self.module.get_bin_path("gpgv") or self.module.get_bin_path("gpgv2")
        if not gpgv:
            self.fail(
                "gpgv is not installed on this host (needed for method=gpg): install gpgv (Debian/Ubuntu) "
                "or gnupg2 (RHEL), or use method=sha256"
            )
        try:
            key = load_key(gpg_key)
        except (ArmorError, IOError, OSError) as exc:
            self.fail("gpg_key: %s is not a usable public key: %s" % (gpg_key, exc))
        reason, stderr, signer, signer_uid, expired = gpg_check(
            self.module.run_command, gpgv, key, signature, self.path
        )
        if reason is not None:
            self.fail(prefix + reason, gpgv_output=stderr)
        if expired:
            self.module.warn(
                "%s is signed by key %s, which has expired since: get the signer's current public key"
                % (self.path, signer)
            )
        return signature, signer, signer_uid

    def run(self):
        self.validate()
        method = self.params["method"]
        signature = signer = signer_uid = None
        if method == "gpg":
            signature, signer, signer_uid = self.check_gpg()
        actual = sha256_of(self.path)
        self.check_sha256(actual)
        self.result.update(
            verified=True, method=method, sha256=actual, signature=signature, signer=signer, signer_uid=signer_uid
        )
        self.module.exit_json(changed=False, **self.result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            method=dict(type="str", choices=["gpg", "sha256"], default="gpg"),
            signature=dict(type="path"),
            gpg_key=dict(type="path"),
            sha256=dict(type="str"),
        ),
        required_if=[("method", "gpg", ("gpg_key",)), ("method", "sha256", ("sha256",))],
        supports_check_mode=True,
    )
    Verifier(module).run()


if __name__ == "__main__":
    main()
