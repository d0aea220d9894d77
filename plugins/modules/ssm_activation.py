#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: ssm_activation
short_description: Create, rotate and delete an AWS Systems Manager hybrid activation
description:
  - Keeps one usable hybrid activation for a site. The activation is found again by its C(Name) tag
    plus an ownership tag (O(owner_tag)), never by its code.
  - With O(state=present), a found activation that is expired, exhausted, within O(rotate_margin_hours) of
    its expiry or within O(rotate_margin_registrations) of its registration limit, or whose immutable settings
    (O(iam_role), O(registration_limit), O(default_instance_name), O(description)) differ from the wanted ones,
    is rotated - a new activation is created and the old one deleted (deleting an activation does not affect
    nodes already registered with it).
  - The activation code is returned only by the run that creates the activation (RV(activation_code)); it
    never appears in the diff, in warnings or in messages. Run this module with C(no_log=true) and store the
    code at once (for example as a SecureString parameter).
  - All options are validated before any AWS call.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  name:
    description:
      - Value of the C(Name) tag that identifies the activation (for example the site's C(hybrid_name)).
    type: str
    required: true
  owner_tag:
    description:
      - Ownership tag (one key and value) that an activation must also carry to be considered ours.
      - Activations with the same C(Name) tag but another owner are never touched.
    type: dict
    default: {ManagedBy: hybrid-onboard}
  state:
    description:
      - V(present) ensures one usable activation (created or rotated when needed); V(absent) deletes every
        activation with our tags.
    type: str
    choices: [present, absent]
    default: present
  iam_role:
    description:
      - Name (not ARN) of the IAM service role the registered nodes get; it must trust C(ssm.amazonaws.com).
      - Required when O(state=present).
    type: str
  registration_limit:
    description:
      - Maximum number of nodes that can register with the activation, 1 to 1000.
      - When not set, a new activation gets the API default (1) and a found one is not compared.
    type: int
  expiration_days:
    description:
      - Lifetime of a new activation in days (at most 30). Mutually exclusive with O(expiration_hours).
      - When neither is set the API default (24 hours) applies.
    type: int
  expiration_hours:
    description:
      - Lifetime of a new activation in hours (at most 720). Mutually exclusive with O(expiration_days).
    type: int
  default_instance_name:
    description:
      - Name given to nodes registered with the activation (at most 256 characters).
    type: str
  description:
    description:
      - Description of the activation (at most 256 characters).
    type: str
  rotate_margin_hours:
    description:
      - Rotate when the found activation expires within this many hours. V(0) rotates only once it expired.
      - Must be shorter than the lifetime of a new activation.
    type: int
    default: 0
  rotate_margin_registrations:
    description:
      - Rotate when this many registrations or fewer are left. V(0) rotates only once it is exhausted.
    type: int
    default: 0
  force_rotate:
    description:
      - Replace the found activation even when it is usable (for example when its code may have leaked).
    type: bool
    default: false
  known_activation_id:
    description:
      - ID of the activation whose code the caller holds (for example read from its SecureString parameter).
      - When set, only that activation can be kept; when it is not found or not usable a new one is created,
        and every other activation with our tags is deleted once the new one exists.
      - Use an empty string when the caller holds no code at all.
      - When not set, the newest usable activation with our tags is kept.
    type: str
  tags:
    description:
      - Further tags of the activation. The C(Name) tag and O(owner_tag) are always set and never purged.
      - V(None) leaves the further tags of a found activation alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description:
      - Remove tags of a found activation that are not in O(tags) (never C(Name), the owner tag or C(aws:) keys).
    type: bool
    default: true
notes:
  - Supports check mode and diff. In check mode nothing is created or deleted and no code is returned.
  - The emulator of the lab and AWS both report C(Expired); the margin uses the controller's clock.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Ensure a usable activation for the site (store the code at once, never print it)
  hybrid.onboard.ssm_activation:
    name: "{{ hybrid_name }}"
    iam_role: "{{ hybrid_name }}-ssm-hybrid"
    registration_limit: 100
    expiration_days: 7
    rotate_margin_hours: 12
    default_instance_name: "{{ hybrid_name }}-node"
  register: __activation
  no_log: true

- name: Delete the site's activations (registered nodes stay registered)
  hybrid.onboard.ssm_activation:
    name: "{{ hybrid_name }}"
    state: absent
"""

RETURN = r"""
activation:
  description: The activation kept or created (empty when absent or in check mode before creation).
  returned: always
  type: dict
  contains:
    activation_id:
      description: ID of the activation.
      type: str
      sample: 0b0e2a8c-6f1d-4a7c-9e3f-1f2d3c4b5a69
    description:
      description: Description.
      type: str
    default_instance_name:
      description: Name given to registered nodes.
      type: str
    iam_role:
      description: Name of the IAM role registered nodes get.
      type: str
    registration_limit:
      description: Maximum number of registrations.
      type: int
    registrations_count:
      description: Registrations used.
      type: int
    registrations_left:
      description: Registrations left.
      type: int
    expiration_date:
      description: Expiry, ISO 8601 UTC.
      type: str
      sample: "2025-01-31T12:00:00+00:00"
    expires_in_hours:
      description: Hours until expiry by the controller's clock (negative once past).
      type: float
    expired:
      description: Whether AWS reports the activation expired.
      type: bool
    exhausted:
      description: Whether every registration is used.
      type: bool
    created_date:
      description: Creation time, ISO 8601 UTC.
      type: str
    tags:
      description: Tags of the activation.
      type: dict
activation_code:
  description:
    - The activation code. Returned only when this run created the activation (not in check mode).
    - A secret; run the module with C(no_log=true).
  returned: when created
  type: str
rotated:
  description: Whether a found activation was (or in check mode would be) replaced.
  returned: always
  type: bool
reasons:
  description: Why a new activation was (or would be) created, e.g. C(expired), C(exhausted), C(expiry_margin).
  returned: always
  type: list
  elements: str
deleted_activation_ids:
  description: Activations deleted (or that would be deleted in check mode).
  returned: always
  type: list
  elements: str
"""

import re
from datetime import datetime, timedelta, timezone

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import (
    AnsibleAWSModule,
    aws_client,
    paginate,
    snake_result,
    tag_changes,
    tags_from_boto3,
    tags_to_boto3,
)


MAX_EXPIRY_HOURS = 30 * 24
LIMIT_RANGE = (1, 1000)
MAX_TEXT = 256
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


def validate(module):
    """Every rule the API enforces, checked before any call, naming the option."""
    p = module.params
    problems = []
    if not p["name"] or len(p["name"]) > MAX_TEXT:
        problems.append(f"name must be 1 to {MAX_TEXT} characters")
    if not isinstance(p["owner_tag"], dict) or len(p["owner_tag"]) != 1:
        problems.append("owner_tag must hold exactly one key and value")
    if p["state"] == "present":
        role = p["iam_role"]
        if not role:
            problems.append("iam_role is required when state=present")
        elif role.startswith("arn:") or "/" in role:
            problems.append(f"iam_role must be an IAM role NAME, not an ARN or path (got {role!r}); "
                            f"use the part after 'role/', e.g. {role.rsplit('/', 1)[-1]!r}")
        elif not _ROLE_NAME.match(role):
            problems.append(f"iam_role {role!r} is not a valid IAM role name")
    limit = p["registration_limit"]
    if limit is not None and not LIMIT_RANGE[0] <= limit <= LIMIT_RANGE[1]:
        problems.append(f"registration_limit must be between {LIMIT_RANGE[0]} and {LIMIT_RANGE[1]} (got {limit})")
    hours = expiry_hours(p)
    if hours is not None and not 0 < hours <= MAX_EXPIRY_HOURS:
        option = "expiration_days" if p["expiration_days"] is not None else "expiration_hours"
        problems.append(f"{option} must be more than 0 and at most 30 days (720 hours) (got {p[option]})")
    for option in ("default_instance_name", "description"):
        if p[option] is not None and len(p[option]) > MAX_TEXT:
            problems.append(f"{option} must be at most {MAX_TEXT} characters (got {len(p[option])})")
    if p["rotate_margin_hours"] < 0:
        problems.append("rotate_margin_hours must not be negative")
    elif p["rotate_margin_hours"] >= (hours if hours is not None else 24):
        problems.append(f"rotate_margin_hours ({p['rotate_margin_hours']}) must be shorter than the lifetime of a "
                        f"new activation ({hours if hours is not None else 24} hours), or every run would rotate")
    if p["rotate_margin_registrations"] < 0:
        problems.append("rotate_margin_registrations must not be negative")
    elif limit is not None and p["rotate_margin_registrations"] >= limit:
        problems.append(f"rotate_margin_registrations ({p['rotate_margin_registrations']}) must be less than "
                        f"registration_limit ({limit}), or every run would rotate")
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems))


def expiry_hours(params):
    if params["expiration_days"] is not None:
        return params["expiration_days"] * 24
    return params["expiration_hours"]


def _iso(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return value


class Activations:
    """describe -> decide -> act for the activations that carry our tags."""

    def __init__(self, module):
        self.module = module
        self.client = aws_client(module, "ssm")
        self.p = module.params
        self.identity = {"Name": self.p["name"], **{str(k): str(v) for k, v in self.p["owner_tag"].items()}}

    # --- describe -----------------------------------------------------------------------------

    def ours(self):
        """Our activations, newest first."""
        try:
            found = paginate(self.client, "describe_activations", "ActivationList")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg="Failed to describe activations")
        mine = [a for a in found if all(tags_from_boto3(a.get("Tags")).get(k) == v for k, v in self.identity.items())]
        return sorted(mine, key=lambda a: a.get("CreatedDate") or datetime.min.replace(tzinfo=timezone.utc),
                      reverse=True)

    def one(self, activation_id):
        for act in self.ours():
            if act["ActivationId"] == activation_id:
                return act
        return None

    # --- decide -------------------------------------------------------------------------------

    def problems(self, act):
        """Reasons why ``act`` cannot be kept (empty list: usable)."""
        p = self.p
        reasons = []
        left = act.get("RegistrationLimit", 0) - act.get("RegistrationsCount", 0)
        if act.get("Expired"):
            reasons.append("expired")
        elif hours_left(act) <= p["rotate_margin_hours"]:
            reasons.append("expiry_margin")
        if left <= 0:
            reasons.append("exhausted")
        elif left <= p["rotate_margin_registrations"]:
            reasons.append("registrations_margin")
        wanted = {
            "IamRole": p["iam_role"],
            "RegistrationLimit": p["registration_limit"],
            "DefaultInstanceName": p["default_instance_name"],
            "Description": p["description"],
        }
        for key, value in wanted.items():
            if value is not None and act.get(key, "") != value:
                reasons.append("changed_" + re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower())
        return reasons

    # --- act ----------------------------------------------------------------------------------

    def wanted_tags(self):
        extra = self.p["tags"] or {}
        return {**{str(k): str(v) for k, v in extra.items()}, **self.identity}

    def create(self):
        p = self.p
        args = {"IamRole": p["iam_role"], "Tags": tags_to_boto3(self.wanted_tags())}
        optional = (("registration_limit", "RegistrationLimit"), ("default_instance_name", "DefaultInstanceName"),
                    ("description", "Description"))
        for option, key in optional:
            if p[option] is not None:
                args[key] = p[option]
        hours = expiry_hours(p)
        if hours is not None:
            args["ExpirationDate"] = datetime.now(timezone.utc) + timedelta(hours=hours)
        try:
            made = self.client.create_activation(aws_retry=True, **args)
        except botocore.exceptions.ClientError as e:
            message = str(e.response.get("Error", {}).get("Message", ""))
            hint = ""
            if "role" in message.lower():
                hint = (f" (is {p['iam_role']!r} an existing role trusted by ssm.amazonaws.com? "
                        "playbooks/identity.yml creates it)")
            self.module.fail_json_aws(e, msg="Failed to create activation" + hint)
        except botocore.exceptions.BotoCoreError as e:
            self.module.fail_json_aws(e, msg="Failed to create activation")
        return made["ActivationId"], made["ActivationCode"]

    def delete(self, activation_id):
        try:
            self.client.delete_activation(aws_retry=True, ActivationId=activation_id)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") == "InvalidActivation":
                return  # already gone (another job rotated it): the goal is reached
            self.module.fail_json_aws(e, msg=f"Failed to delete activation {activation_id}")
        except botocore.exceptions.BotoCoreError as e:
            self.module.fail_json_aws(e, msg=f"Failed to delete activation {activation_id}")

    def update_tags(self, act):
        current = tags_from_boto3(act.get("Tags"))
        to_set, to_unset = tag_changes(current, None if self.p["tags"] is None else self.wanted_tags(),
                                       self.p["purge_tags"])
        to_unset = [k for k in to_unset if k not in self.identity]
        if not (to_set or to_unset) or self.module.check_mode:
            return bool(to_set or to_unset), (to_set, to_unset)
        try:
            if to_unset:
                self.client.remove_tags_from_resource(aws_retry=True, ResourceType="Activation",
                                                      ResourceId=act["ActivationId"], TagKeys=to_unset)
            if to_set:
                self.client.add_tags_to_resource(aws_retry=True, ResourceType="Activation",
                                                 ResourceId=act["ActivationId"], Tags=tags_to_boto3(to_set))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg=f"Failed to update tags of activation {act['ActivationId']}")
        return True, (to_set, to_unset)


def hours_left(act):
    expiry = act.get("ExpirationDate")
    if not isinstance(expiry, datetime):
        return 0.0
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=timezone.utc)
    return (expiry - datetime.now(timezone.utc)).total_seconds() / 3600


def view(act):
    """The activation as returned: snake_case, ISO dates, counts and flags computed."""
    if not act:
        return {}
    result = snake_result(act, secret_keys=("ActivationCode",))
    result["expiration_date"] = _iso(act.get("ExpirationDate"))
    result["created_date"] = _iso(act.get("CreatedDate"))
    left = act.get("RegistrationLimit", 0) - act.get("RegistrationsCount", 0)
    result["registrations_left"] = max(left, 0)
    result["exhausted"] = left <= 0
    result["expires_in_hours"] = round(hours_left(act), 2)
    result["expired"] = bool(act.get("Expired"))
    return result


def _summary(act):
    """What the diff shows of an activation (never the code)."""
    if not act:
        return {}
    v = view(act)
    return {k: v.get(k) for k in ("activation_id", "iam_role", "registration_limit", "registrations_count",
                                  "expiration_date", "expired", "default_instance_name", "description", "tags")}


def run_absent(acts):
    ours = acts.ours()
    if ours and not acts.module.check_mode:
        for act in ours:
            acts.delete(act["ActivationId"])
    return dict(changed=bool(ours), activation={}, rotated=False, reasons=[],
                deleted_activation_ids=[a["ActivationId"] for a in ours],
                diff={"before": {"activations": [_summary(a) for a in ours]}, "after": {"activations": []}})


def run_present(acts):
    module, p = acts.module, acts.p
    ours = acts.ours()
    candidates = ours
    if p["known_activation_id"] is not None:
        candidates = [a for a in ours if a["ActivationId"] == p["known_activation_id"]]
    keep, reasons = None, []
    for act in candidates:
        problems = acts.problems(act)
        if not problems and not p["force_rotate"]:
            keep = act
            break
        if not reasons:  # the reasons of the best candidate explain the rotation
            reasons = problems or ["force_rotate"]
    if keep is not None:
        # Leftovers that can never register a node again are cleaned up; usable ones are left alone
        # (a concurrent job may hold their code).
        dead = [a for a in ours if a is not keep and (a.get("Expired") or
                                                      a.get("RegistrationsCount", 0) >= a.get("RegistrationLimit", 0))]
        tags_changed, (to_set, to_unset) = acts.update_tags(keep)
        if not module.check_mode:
            for act in dead:
                acts.delete(act["ActivationId"])
        changed = tags_changed or bool(dead)
        after = acts.one(keep["ActivationId"]) if (tags_changed and not module.check_mode) else keep
        diff = {"before": {}, "after": {}}
        if changed:
            diff = {"before": {"tags": tags_from_boto3(keep.get("Tags")),
                               "deleted_activations": []},
                    "after": {"tags": {k: v for k, v in {**tags_from_boto3(keep.get("Tags")), **to_set}.items()
                                       if k not in to_unset},
                              "deleted_activations": [a["ActivationId"] for a in dead]}}
        return dict(changed=changed, activation=view(after), rotated=False, reasons=[],
                    deleted_activation_ids=[a["ActivationId"] for a in dead], diff=diff)

    if not candidates:
        reasons = ["code_unknown"] if ours else ["not_found"]
    rotated = bool(ours)
    replaced = ours  # everything with our tags is superseded by the new activation
    diff_before = {"activations": [_summary(a) for a in replaced]}
    wanted = {"iam_role": p["iam_role"], "registration_limit": p["registration_limit"],
              "default_instance_name": p["default_instance_name"], "description": p["description"],
              "expiration_hours": expiry_hours(p), "tags": acts.wanted_tags()}
    diff_after = {"activations": [{k: v for k, v in wanted.items() if v is not None}]}
    if module.check_mode:
        return dict(changed=True, activation={}, rotated=rotated, reasons=reasons,
                    deleted_activation_ids=[a["ActivationId"] for a in replaced],
                    diff={"before": diff_before, "after": diff_after})
    new_id, code = acts.create()  # first the new one, then the old ones go: there is always one
    for act in replaced:
        acts.delete(act["ActivationId"])
    created = acts.one(new_id)
    if created is None:  # listing lags creation; describe by id
        created = {"ActivationId": new_id}
    diff_after["activations"][0]["activation_id"] = new_id
    return dict(changed=True, activation=view(created), activation_code=code, rotated=rotated, reasons=reasons,
                deleted_activation_ids=[a["ActivationId"] for a in replaced],
                diff={"before": diff_before, "after": diff_after})


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        owner_tag=dict(type="dict", default={"ManagedBy": "hybrid-onboard"}),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        iam_role=dict(type="str"),
        registration_limit=dict(type="int"),
        expiration_days=dict(type="int"),
        expiration_hours=dict(type="int"),
        default_instance_name=dict(type="str"),
        description=dict(type="str"),
        rotate_margin_hours=dict(type="int", default=0),
        rotate_margin_registrations=dict(type="int", default=0),
        force_rotate=dict(type="bool", default=False),
        known_activation_id=dict(type="str"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[["expiration_days", "expiration_hours"]],
        required_if=[["state", "present", ["iam_role"]]],
    )
    validate(module)
    acts = Activations(module)
    result = run_absent(acts) if module.params["state"] == "absent" else run_present(acts)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
