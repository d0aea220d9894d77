#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: ssm_service_setting
short_description: Get, update or reset an AWS Systems Manager service setting
description:
  - Reads a service setting such as C(/ssm/managed-instance/activation-tier) and, when asked, changes it
    (C(UpdateServiceSetting)) or resets it to the AWS default (C(ResetServiceSetting)).
  - Without O(value) and with O(state=present) the module only reads (never changed).
  - Switching C(/ssm/managed-instance/activation-tier) to C(advanced) costs per hybrid node and hour; going
    back to C(standard) needs 1,000 hybrid nodes or fewer and takes at least 30 minutes in AWS.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  setting_id:
    description:
      - The setting's path (C(/ssm/managed-instance/activation-tier)) or its full ARN.
    type: str
    required: true
    aliases: [name]
  value:
    description:
      - Wanted value. V(None) reads the setting without changing it.
    type: str
  state:
    description:
      - V(present) sets O(value) when given; V(reset) returns the setting to its AWS default.
    type: str
    choices: [present, reset]
    default: present
notes:
  - Supports check mode and diff.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the activation tier
  hybrid.onboard.ssm_service_setting:
    setting_id: /ssm/managed-instance/activation-tier
  register: __tier

- name: Switch to the advanced tier (per-node cost)
  hybrid.onboard.ssm_service_setting:
    setting_id: /ssm/managed-instance/activation-tier
    value: advanced
"""

RETURN = r"""
service_setting:
  description: The setting after the run (before it, in check mode).
  returned: always
  type: dict
  contains:
    setting_id:
      description: Path of the setting.
      type: str
      sample: /ssm/managed-instance/activation-tier
    setting_value:
      description: Current value (absent when the setting has no value).
      type: str
      sample: standard
    status:
      description: C(Default), C(Customized), C(PendingUpdate).
      type: str
    arn:
      description: ARN of the setting.
      type: str
    last_modified_date:
      description: Time of the last change, ISO 8601 (absent when never changed).
      type: str
    last_modified_user:
      description: Who changed it last.
      type: str
"""

from datetime import datetime

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import (
    AnsibleAWSModule,
    aws_client,
    snake_result,
)


def describe(module, client, setting_id):
    try:
        setting = client.get_service_setting(aws_retry=True, SettingId=setting_id)["ServiceSetting"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to get service setting {setting_id}")
    result = snake_result(setting)
    for key, value in result.items():
        if isinstance(value, datetime):
            result[key] = value.isoformat()
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            setting_id=dict(type="str", required=True, aliases=["name"]),
            value=dict(type="str"),
            state=dict(type="str", choices=["present", "reset"], default="present"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "reset" and p["value"] is not None:
        module.fail_json(msg="value cannot be combined with state=reset")
    if not p["setting_id"].startswith(("/ssm/", "arn:")):
        module.fail_json(msg="setting_id must be a path starting with /ssm/ or a service setting ARN "
                             f"(got {p['setting_id']!r})")
    client = aws_client(module, "ssm")
    before = describe(module, client, p["setting_id"])
    if p["state"] == "reset":
        changed = before.get("status") != "Default"
    else:
        changed = p["value"] is not None and before.get("setting_value") != p["value"]
    diff = {"before": {}, "after": {}}
    if changed:
        after_value = "(AWS default)" if p["state"] == "reset" else p["value"]
        diff = {"before": {"setting_value": before.get("setting_value")}, "after": {"setting_value": after_value}}
    after = before
    if changed and not module.check_mode:
        try:
            if p["state"] == "reset":
                client.reset_service_setting(aws_retry=True, SettingId=p["setting_id"])
            else:
                client.update_service_setting(aws_retry=True, SettingId=p["setting_id"], SettingValue=p["value"])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            action = "reset" if p["state"] == "reset" else "update"
            module.fail_json_aws(e, msg=f"Failed to {action} service setting {p['setting_id']}")
        after = describe(module, client, p["setting_id"])
        if p["state"] == "reset":
            diff["after"] = {"setting_value": after.get("setting_value")}
    result = dict(changed=changed, service_setting=after)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
