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
module: ssm_agent_registration
short_description: Register the SSM Agent of an on-prem host with a hybrid activation
version_added: 0.1.0
description:
  - Runs on the managed host (Python standard library only).
  - Registers the host with a hybrid activation, as AWS's procedure does - stop the agent's service,
    C(amazon-ssm-agent -register -code <code> -id <id> -region <region> -y) - unless the Vault already holds a
    registration in O(region) (and O(force) is not set). It does not start the service again; the C(ssm_agent)
    role does that after this module.
  - Whether the host is registered is decided by the agent's Vault (C(<data_dir>/Vault/Store/RegistrationKey)),
    never by C(<data_dir>/registration), which the agent keeps after C(amazon-ssm-agent -register -clear) and
    which can therefore be stale (RV(registration_file_stale)).
  - To only read the registration use M(hybrid.onboard.ssm_agent_registration_info). (This module used to read it
    with C(state=info); the C(state) option is gone and the module always registers.)
  - Registering again gives the host a new C(mi-) id; the old managed instance stays registered in AWS until it
    is deregistered (a warning names it).
  - The activation code never appears in results, messages or warnings - it is removed from the agent's output
    before that output is used - and the Vault's private key is never read into a result.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  activation_id:
    description:
      - ID of the hybrid activation (a UUID, the activation's C(ActivationId)).
    type: str
    required: true
  activation_code:
    description:
      - Code of the hybrid activation (20 to 250 characters). A secret.
      - It is passed to the agent on its command line (the agent has no other way to take it), so it is visible
        in the host's process list while the agent registers.
    type: str
    required: true
  region:
    description:
      - AWS region to register in, e.g. C(eu-west-1).
    type: str
    required: true
  force:
    description:
      - Register again even when the Vault already holds a registration in O(region). The host gets a new
        C(mi-) id; deregister the old one (RV(previous_instance_id)).
    type: bool
    default: false
  agent_path:
    description:
      - The agent binary. By default the snap's C(/snap/amazon-ssm-agent/current/amazon-ssm-agent) when it exists
        (Ubuntu), else the deb/rpm package's C(/usr/bin/amazon-ssm-agent).
    type: path
  service_name:
    description:
      - systemd unit of the agent. By default the one matching O(agent_path) -
        C(snap.amazon-ssm-agent.amazon-ssm-agent.service) for the snap, else C(amazon-ssm-agent.service).
    type: str
  stop_service:
    description:
      - Stop the agent's service (when it is active) before registering, as AWS's procedure does. When the
        registration then fails, a service that was active is started again.
    type: bool
    default: true
  data_dir:
    description:
      - The agent's state directory, which holds C(Vault/) and C(registration).
    type: path
    default: /var/lib/amazon/ssm
notes:
  - Supports check mode - it then reports whether it would register, and runs nothing.
  - Supports diff mode - the instance id and region before and after.
  - Reading the Vault needs root (become).
  - "RV(failure_reason) tells apart why a registration failed: V(exhausted) (the activation's registration
    limit is reached), V(expired), V(invalid) (wrong id or code), V(unreachable) (DNS, TCP, TLS, proxy errors on
    the way to the ssm endpoint) and V(other)."
seealso:
  - module: hybrid.onboard.ssm_agent_registration_info
    description: Reads the registration and changes nothing.
  - module: hybrid.onboard.ssm_activation
  - module: hybrid.onboard.endpoint_probe
"""

EXAMPLES = r"""
- name: Register the host with the site's activation
  hybrid.onboard.ssm_agent_registration:
    activation_id: "{{ ssm_agent_activation_id }}"
    activation_code: "{{ ssm_agent_activation_code }}"
    region: eu-west-1
  register: ssm_registered

- name: Register again after a golden image carried another host's Vault
  hybrid.onboard.ssm_agent_registration:
    activation_id: "{{ ssm_agent_activation_id }}"
    activation_code: "{{ ssm_agent_activation_code }}"
    region: eu-west-1
    force: true
"""

RETURN = r"""
registered:
  description: Whether the Vault holds a registration (after the run).
  returned: always
  type: bool
  sample: true
instance_id:
  description: Managed instance id from the Vault (after the run); null when not registered.
  returned: always
  type: str
  sample: mi-0123456789abcdef0
region:
  description: Region of the registration from the Vault; null when not registered.
  returned: always
  type: str
  sample: eu-west-1
registration_file:
  description: Contents of C(<data_dir>/registration); null when the file does not exist or cannot be parsed.
  returned: always
  type: dict
  contains:
    instance_id:
      description: Its C(ManagedInstanceID).
      type: str
    region:
      description: Its C(Region).
      type: str
  sample: {instance_id: mi-0123456789abcdef0, region: eu-west-1}
registration_file_stale:
  description:
    - Whether the registration file exists but disagrees with the Vault (other id or region, or no Vault
      registration at all, e.g. after C(amazon-ssm-agent -register -clear)).
  returned: always
  type: bool
  sample: false
agent_path:
  description: The agent binary used (or that would be used).
  returned: always
  type: str
  sample: /usr/bin/amazon-ssm-agent
service_name:
  description: The agent's systemd unit.
  returned: always
  type: str
  sample: amazon-ssm-agent.service
snap:
  description: Whether the agent is the snap (Ubuntu).
  returned: always
  type: bool
  sample: false
installed:
  description: Whether the agent binary exists and is executable.
  returned: always
  type: bool
  sample: true
previous_instance_id:
  description:
    - The managed instance id the Vault held before this run registered the host again (in check mode - would
      register it again); null when the host was not registered before or nothing was registered. It stays
      registered in AWS until it is deregistered.
  returned: success
  type: str
  sample: mi-0fedcba98765432100
agent_output:
  description: The agent's output of the registration, with the activation code removed.
  returned: when the agent was run
  type: str
  sample: "Successfully registered the instance with AWS SSM using Managed instance-id: mi-0123456789abcdef0"
failure_reason:
  description:
    - Why the registration failed - V(exhausted), V(expired), V(invalid), V(unreachable) or V(other).
  returned: when the agent's registration failed
  type: str
  sample: exhausted
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_registration import (
    DEFAULT_DATA_DIR,
    NEEDS_ROOT,
    UnreadableError,
    detect,
    host_registration,
    vault_path,
)

REDACTED = "<activation code>"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")

# Order matters: a TLS error can say "certificate has expired", a skewed clock gives "Signature expired", and the
# tier's InstanceLimitExceeded is no activation limit. Each pattern is searched in the agent's output, lower-cased;
# the first match gives (failure_reason, what to do).
_ROTATE = "rotate the activation: ansible-playbook playbooks/activation.yml, then run this phase again"
_REASONS = (
    (
        "unreachable",
        re.compile(
            r"requesterror|send request failed|no such host|dial tcp|connection refused|i/o timeout|timed out"
            r"|network is unreachable|no route to host|connection reset|tls:|x509:|proxyconnect|certificate"
        ),
        "The host could not reach the ssm endpoint (DNS, TCP 443, TLS or proxy): run "
        "ansible-playbook playbooks/preflight.yml to see which hop fails.",
    ),
    (
        "other",
        re.compile(r"signature expired|signature not yet current|requesttimetooskewed|clock skew"),
        "AWS rejected the request's time: fix the host's clock (NTP) and register again.",
    ),
    (
        "other",
        re.compile(r"instancelimitexceeded"),
        "The managed-instance limit of the standard tier is reached: switch the activation tier to advanced "
        "(ansible-playbook playbooks/activation.yml) or deregister unused managed nodes.",
    ),
    (
        "exhausted",
        re.compile(r"registration ?limit|exhausted|maximum number of registrations"),
        "The activation has no registrations left: " + _ROTATE + ".",
    ),
    (
        "expired",
        re.compile(r"activation\S*( \S+){0,3} expired|expired activation|activationexpired"),
        "The activation has expired: " + _ROTATE + ".",
    ),
    (
        "invalid",
        re.compile(r"invalidactivation|invalid activation|not valid|does not exist"),
        "AWS does not accept this activation id and code: check activation_id and activation_code (both from the "
        "same activation, in this region), or " + _ROTATE + ".",
    ),
)
_OTHER_HINT = "See the agent's output; its log is /var/log/amazon/ssm/amazon-ssm-agent.log."


def classify(output):
    """(failure_reason, hint) for the agent's (redacted) output."""
    text = (output or "").lower()
    for reason, pattern, hint in _REASONS:
        if pattern.search(text):
            return reason, hint
    return "other", _OTHER_HINT


def redact(text, secret):
    """``text`` with every occurrence of ``secret`` replaced, whatever its case."""
    if not text:
        return text or ""
    if secret:
        text = re.sub(re.escape(secret), REDACTED, text, flags=re.IGNORECASE)
    return text


class Registration:
    def __init__(self, module):
        self.module = module
        params = module.params
        self.code = params.get("activation_code") or ""
        self.agent_path, self.service_name, _snap = detect(params.get("agent_path"), params.get("service_name"))
        self.data_dir = params.get("data_dir") or DEFAULT_DATA_DIR
        self.warnings = []

    def state(self):
        try:
            info, warnings = host_registration(self.data_dir, self.agent_path, self.service_name)
        except UnreadableError as exc:
            self.fail("%s; %s" % (exc, NEEDS_ROOT))
        self.warnings.extend(warnings)
        return info

    def fail(self, msg, **extra):
        for warning in self.warnings:
            self.module.warn(redact(warning, self.code))
        self.module.fail_json(msg=redact(msg, self.code), **extra)

    def exit(self, changed, result, before=None):
        for warning in self.warnings:
            self.module.warn(redact(warning, self.code))
        if self.module._diff and before is not None:
            result["diff"] = {
                "before": {"instance_id": before["instance_id"], "region": before["region"]},
                "after": {"instance_id": result["instance_id"], "region": result["region"]},
            }
        self.module.exit_json(changed=changed, **result)

    def validate(self):
        params = self.module.params
        problems = []
        if not _UUID.match(params["activation_id"] or ""):
            # The value is not echoed: a swapped id and code would print the code.
            problems.append(
                "activation_id must be the activation's id, a UUID like "
                "1a2b3c4d-1a2b-1a2b-1a2b-1a2b3c4d5e6f (is it the activation code?)"
            )
        if not _REGION.match(params["region"] or ""):
            problems.append("region must be an AWS region like eu-west-1, got %r" % params["region"])
        if not 20 <= len(self.code) <= 250 or self.code != self.code.strip():
            # AWS's activation codes are 20 to 250 characters; the value is not echoed.
            problems.append(
                "activation_code must be the activation's code, 20 to 250 characters without spaces "
                "around it (is it the activation id?)"
            )
        if problems:
            self.fail("; ".join(problems))

    # --- systemd ------------------------------------------------------------------------------------------

    def systemctl(self):
        path = self.module.get_bin_path("systemctl")
        if not path:
            self.fail(
                "stop_service=true needs systemctl, which is not on this host: set stop_service: false "
                "(and make sure the agent is not running while it registers)"
            )
        return path

    def stop_service(self):
        """Stop the service when active; True when it was active (so a failure can start it again)."""
        systemctl = self.systemctl()
        _rc, out, _err = self.module.run_command([systemctl, "is-active", self.service_name])
        # is-active prints the state (rc 0 only for "active"); a unit that is starting must be stopped too.
        if out.strip() not in ("active", "activating", "reloading"):
            return False
        rc, out, err = self.module.run_command([systemctl, "stop", self.service_name])
        if rc != 0:
            self.fail(
                "could not stop %s before registering (rc=%d): %s; stop it, or set stop_service: false"
                % (self.service_name, rc, (err or out).strip())
            )
        return True

    def start_service(self):
        rc, out, err = self.module.run_command([self.systemctl(), "start", self.service_name])
        if rc != 0:
            self.warnings.append(
                "%s was stopped for the registration and could not be started again (rc=%d): %s"
                % (self.service_name, rc, (err or out).strip())
            )

    # --- registration -------------------------------------------------------------------------------------

    def register(self):
        params = self.module.params
        self.validate()
        region = params["region"]
        before = self.state()
        current = before["instance_id"] if before["registered"] else None
        if before["registered"] and before["region"] == region and not params["force"]:
            self.exit(False, dict(before, previous_instance_id=None), before)

        if self.module.check_mode:
            if not before["installed"]:
                self.warnings.append(
                    "the agent is not installed at %s yet; a real run would fail unless it is "
                    "installed first" % self.agent_path
                )
            would = dict(before, previous_instance_id=current)
            self.exit(True, would, None)

        if not before["installed"]:
            self.fail(
                "the SSM Agent is not installed at %s (agent_path): install the agent first "
                "(ansible-playbook playbooks/ssm_agent.yml installs and registers it)" % self.agent_path
            )

        was_active = self.stop_service() if params["stop_service"] else False
        command = [
            self.agent_path,
            "-register",
            "-code",
            self.code,
            "-id",
            params["activation_id"],
            "-region",
            region,
            "-y",
        ]
        try:
            rc, out, err = self.module.run_command(command, handle_exceptions=False)
        except (OSError, IOError) as exc:
            if was_active:
                self.start_service()
            self.fail("could not run %s (agent_path): %s" % (self.agent_path, redact(str(exc), self.code)))
        output = "\n".join(part.strip() for part in (redact(out, self.code), redact(err, self.code)) if part.strip())

        after = self.state()
        if rc != 0:
            if was_active:
                self.start_service()
            reason, hint = classify(output)
            self.fail(
                "Registration with activation %s in %s failed (%s, agent rc=%d): %s. %s"
                % (params["activation_id"], region, reason, rc, output.rstrip(".") or "(no output)", hint),
                failure_reason=reason,
                agent_output=output,
                **after,
            )
        if not after["registered"]:
            if was_active:
                self.start_service()
            self.fail(
                "%s -register reported success but %s holds no registration (data_dir?): %s"
                % (
                    self.agent_path,
                    vault_path(self.data_dir),
                    output or "(no output)",
                ),
                failure_reason="other",
                agent_output=output,
                **after,
            )
        if after["region"] != region:
            self.warnings.append(
                "the agent registered in %s, not in region %s: its configuration "
                "(Agent.Region in amazon-ssm-agent.json) overrides the region" % (after["region"], region)
            )
        previous = current if current and current != after["instance_id"] else None
        if previous:
            self.warnings.append(
                "the host was registered as %s before; that managed instance stays registered in "
                "AWS until it is deregistered" % previous
            )
        self.exit(True, dict(after, previous_instance_id=previous, agent_output=output), before)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            activation_id=dict(type="str", required=True),
            activation_code=dict(type="str", required=True, no_log=True),
            region=dict(type="str", required=True),
            force=dict(type="bool", default=False),
            agent_path=dict(type="path"),
            service_name=dict(type="str"),
            stop_service=dict(type="bool", default=True),
            data_dir=dict(type="path", default=DEFAULT_DATA_DIR),
        ),
        supports_check_mode=True,
    )
    Registration(module).register()


if __name__ == "__main__":
    main()
