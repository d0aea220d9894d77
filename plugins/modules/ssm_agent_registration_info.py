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
module: ssm_agent_registration_info
short_description: Read the SSM Agent's hybrid registration on an on-prem host
version_added: 1.0.0
description:
  - Reads, on the managed host, whether the SSM Agent is registered with a hybrid activation, as which managed
    instance and in which region, and which agent binary and systemd unit the host has. It runs no command and
    changes nothing.
  - Whether the host is registered is decided by the agent's Vault (C(<data_dir>/Vault/Store/RegistrationKey)),
    never by C(<data_dir>/registration), which the agent keeps after C(amazon-ssm-agent -register -clear) and
    which can therefore be stale (RV(registration_file_stale)).
  - The Vault's private key is never read into a result.
  - Runs on the managed host (Python standard library only). It replaces C(state=info) of
    M(hybrid.onboard.ssm_agent_registration), which now only registers.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
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
  data_dir:
    description:
      - The agent's state directory, which holds C(Vault/) and C(registration).
    type: path
    default: /var/lib/amazon/ssm
notes:
  - Read-only; supports check mode (it reads the same in check mode).
  - Reading the Vault needs root (become). A state file that exists but cannot be read fails the task rather than
    report the host as not registered.
  - A Vault or registration file that is not a JSON object gives a warning; such a Vault counts as not registered.
seealso:
  - module: hybrid.onboard.ssm_agent_registration
    description: Registers the host with a hybrid activation.
  - module: hybrid.onboard.ssm_managed_node_info
    description: The same managed nodes as AWS sees them.
  - module: hybrid.onboard.ssm_managed_instance
    description: Tags or deregisters managed nodes in AWS.
"""

EXAMPLES = r"""
- name: Read the agent and its registration on the host
  hybrid.onboard.ssm_agent_registration_info:
  become: true
  register: ssm_registration

- name: Refuse hosts that are not managed instances
  ansible.builtin.assert:
    that: ssm_registration.registered
    fail_msg: "{{ inventory_hostname }} is not registered with Systems Manager"

- name: Read an agent installed elsewhere
  hybrid.onboard.ssm_agent_registration_info:
    agent_path: /opt/amazon/ssm/amazon-ssm-agent
    service_name: amazon-ssm-agent.service
    data_dir: /var/lib/amazon/ssm
  become: true
  register: ssm_registration
"""

RETURN = r"""
registered:
  description: Whether the Vault holds a registration.
  returned: always
  type: bool
  sample: true
instance_id:
  description: Managed instance id from the Vault; null when not registered.
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
      registration at all, e.g. after C(amazon-ssm-agent -register -clear)), or cannot be parsed.
  returned: always
  type: bool
  sample: false
agent_path:
  description: The agent binary (O(agent_path) or the one found).
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
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_registration import (
    DEFAULT_DATA_DIR,
    NEEDS_ROOT,
    UnreadableError,
    host_registration,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            agent_path=dict(type="path"),
            service_name=dict(type="str"),
            data_dir=dict(type="path", default=DEFAULT_DATA_DIR),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        state, warnings = host_registration(params["data_dir"], params["agent_path"], params["service_name"])
    except UnreadableError as exc:
        module.fail_json(msg="%s; %s" % (exc, NEEDS_ROOT))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, **state)


if __name__ == "__main__":
    main()
