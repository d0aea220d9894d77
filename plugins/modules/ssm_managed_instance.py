#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: ssm_managed_instance
short_description: Tag or deregister hybrid managed nodes (mi-...) of AWS Systems Manager, many at once
description:
  - Manages the tags of hybrid managed nodes (C(AddTagsToResource), C(RemoveTagsFromResource) with
    C(ResourceType=ManagedInstance)) or deregisters them (C(DeregisterManagedInstance)).
  - One task handles a whole batch of nodes, so a play calls it once (for example with C(run_once)) for all its
    hosts instead of once per host.
  - Every node ID is checked for its format before any AWS call. With O(state=present) every listed node must be
    registered (one C(DescribeInstanceInformation) per 50 nodes, one per node of a batch holding an
    unknown ID) before any tag is changed, so an unknown ID fails the task without changing any node.
  - With O(state=absent) a node that is not (or no longer) registered is not an error; it is reported as not
    changed.
  - With O(state=present) the nodes' tags are read 100 nodes per call with the Resource Groups Tagging API
    (C(tag:GetResources), after one C(sts:GetCallerIdentity) for the account), so a run where nothing changes costs
    the same few calls for 3 or 3,000 nodes. That API is eventually consistent and lists only tagged nodes, so a node
    it does not list, or lists with tags other than the wanted ones, is read again with C(ListTagsForResource) before
    anything is changed, so a stale answer never causes a change. A tag changed outside Ansible moments before a run
    may be seen (and put back) only on the next run.
  - When C(tag:GetResources) or C(sts:GetCallerIdentity) is denied, the module warns and reads each node's tags
    with C(ListTagsForResource), one call per node, as before.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  instances:
    description:
      - The managed nodes to act on, each with its own tags.
      - An empty list does nothing.
    type: list
    elements: dict
    required: true
    suboptions:
      instance_id:
        description:
          - ID of the hybrid managed node, C(mi-) followed by 17 lower-case hexadecimal digits.
        type: str
        required: true
      tags:
        description:
          - Wanted tags of the node (keys and values are strings; other values are turned into strings).
          - V(None) (not set) leaves the node's tags alone. With O(purge_tags=true), V({}) removes every tag
            except C(aws:) ones.
          - Keys starting with C(aws:) are reserved by AWS and cannot be set. At most 50 tags.
          - Ignored with O(state=absent).
        type: dict
  state:
    description:
      - V(present) applies the tags of O(instances); every listed node must be registered.
      - V(absent) deregisters every listed node that is registered. Deregistering cannot be undone; the node
        must register again with an activation to be managed again.
    type: str
    choices: [present, absent]
    default: present
  purge_tags:
    description:
      - Remove tags of a node that are not in its O(instances[].tags). Keys starting with C(aws:) are never
        removed.
      - Has no effect on nodes whose O(instances[].tags) is not set.
    type: bool
    default: true
notes:
  - Supports check mode and diff. In check mode nothing is changed; RV(instances) then shows what the tags would be
    and which nodes would be deregistered.
  - The diff shows, per node ID that changes, its tags before and after; a node deregistered is missing from
    C(after).
  - AWS calls are retried with jittered backoff on throttling.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Tag every node of the play in one call (each host holds its node ID in hybrid_instance_id)
  hybrid.onboard.ssm_managed_instance:
    instances: >-
      {{ ansible_play_hosts
         | map('extract', hostvars, 'hybrid_instance_id')
         | map('community.general.dict_kv', 'instance_id')
         | map('combine', {'tags': {'Site': hybrid_name, 'ManagedBy': 'hybrid-onboard'}}) }}
  run_once: true
  delegate_to: localhost

- name: Add a tag to two nodes and keep the tags they already have
  hybrid.onboard.ssm_managed_instance:
    instances:
      - instance_id: mi-0123456789abcdef0
        tags: {Patch: wave-1}
      - instance_id: mi-0fedcba9876543210
        tags: {Patch: wave-2}
    purge_tags: false

- name: Deregister decommissioned nodes (already deregistered ones are skipped)
  hybrid.onboard.ssm_managed_instance:
    instances:
      - instance_id: mi-0123456789abcdef0
    state: absent
"""

RETURN = r"""
instances:
  description: One entry per node of O(instances), in the same order.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: ID of the managed node.
      type: str
      sample: mi-0123456789abcdef0
    tags:
      description:
        - Tags of the node after the run (in check mode, the tags it would have).
        - Empty for a node that is deregistered or not registered.
      type: dict
      sample: {Site: paris, ManagedBy: hybrid-onboard}
    changed:
      description: Whether this node was (or in check mode would be) changed.
      type: bool
    deregistered:
      description: Whether this node was (or in check mode would be) deregistered by this run.
      type: bool
"""

import re

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import (
    AnsibleAWSModule,
    aws_client,
    paginate,
    tag_changes,
    tags_from_boto3,
    tags_to_boto3,
)
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

INSTANCE_ID = re.compile(r"^mi-[0-9a-f]{17}$")
RESOURCE_TYPE = "ManagedInstance"
# DescribeInstanceInformation takes at most 50 results per page; one page per chunk keeps the check cheap.
CHUNK = 50
# GetResources takes at most 100 ARNs per call.
ARN_CHUNK = 100
_DENIED = ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"]
MAX_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256


def validate(module):
    """Every rule the API enforces on our input, checked before any call, naming the option."""
    problems = []
    seen = set()
    for index, item in enumerate(module.params["instances"]):
        where = f"instances[{index}]"
        instance_id = item["instance_id"]
        if not isinstance(instance_id, str) or not INSTANCE_ID.match(instance_id):
            problems.append(
                f"{where}.instance_id must be a hybrid managed node ID matching ^mi-[0-9a-f]{{17}}$ "
                f"such as mi-0123456789abcdef0 (got {instance_id!r})"
            )
        elif instance_id in seen:
            problems.append(f"{where}.instance_id {instance_id} is listed more than once; list each node once")
        seen.add(instance_id)
        tags = item.get("tags")
        if tags is None or module.params["state"] == "absent":
            continue
        if len(tags) > MAX_TAGS:
            problems.append(f"{where}.tags holds {len(tags)} tags; a managed node can have at most {MAX_TAGS}")
        for key, value in tags.items():
            if str(key).lower().startswith("aws:"):
                problems.append(f"{where}.tags key {key!r}: keys starting with aws: are reserved by AWS")
            elif not 1 <= len(str(key)) <= MAX_KEY:
                problems.append(f"{where}.tags key {key!r} must be 1 to {MAX_KEY} characters")
            if value is None:
                problems.append(f"{where}.tags.{key} has no value; use an empty string for an empty tag value")
            elif len(str(value)) > MAX_VALUE:
                problems.append(f"{where}.tags.{key} value must be at most {MAX_VALUE} characters")
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems))


def wanted_tags(item):
    tags = item.get("tags")
    if tags is None:
        return None
    return {str(k): str(v) for k, v in tags.items()}


class ManagedNodes:
    """The AWS calls of this module, each failing through fail_json_aws with the operation named."""

    def __init__(self, module):
        self.module = module
        self.client = aws_client(module, "ssm")

    def _describe(self, ids):
        """IDs among ``ids`` that are registered; raises InvalidInstanceId when any of them is not."""
        found = paginate(
            self.client,
            "describe_instance_information",
            "InstanceInformationList",
            Filters=[{"Key": "InstanceIds", "Values": list(ids)}],
        )
        return {node["InstanceId"] for node in found}

    def registered(self, ids):
        """The subset of ``ids`` registered in the region."""
        known = set()
        try:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                try:
                    known |= self._describe(chunk)
                except is_boto3_error_code("InvalidInstanceId"):
                    # AWS rejects the whole filter when one ID is unknown, without a parsable list of which:
                    # ask node by node for this chunk only.
                    for instance_id in chunk:
                        try:
                            known |= self._describe([instance_id])
                        except is_boto3_error_code("InvalidInstanceId"):
                            continue
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to describe instance information")
        return known & set(ids)

    def _arn_prefix(self):
        """``arn:<partition>:ssm:<region>:<account>:managed-instance/``; None (with a warning) if STS says no."""
        try:
            caller = aws_client(self.module, "sts").get_caller_identity(aws_retry=True)
        except is_boto3_error_code(_DENIED):
            self.module.warn(
                "sts:GetCallerIdentity is denied, so the account of the managed nodes' ARNs is unknown: reading each "
                "node's tags with ssm:ListTagsForResource, one call per node."
            )
            return None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to read the caller's account (sts:GetCallerIdentity)")
        partition = caller["Arn"].split(":")[1]
        return f"arn:{partition}:ssm:{self.module.region}:{caller['Account']}:managed-instance/"

    def listed_tags(self, ids):
        """``{instance_id: tags}`` of the nodes among ``ids`` that tag:GetResources lists, 100 nodes per call.

        The Tagging API lists tagged nodes only and is eventually consistent: a caller changes nothing on its word
        alone. ``{}`` when the API may not be used here (a warning says so): every node is then read on its own.
        """
        prefix = self._arn_prefix()
        if prefix is None:
            return {}
        client = aws_client(self.module, "resourcegroupstaggingapi")
        listed = {}
        try:
            for start in range(0, len(ids), ARN_CHUNK):
                answer = client.get_resources(
                    aws_retry=True, ResourceARNList=[prefix + i for i in ids[start : start + ARN_CHUNK]]
                )
                for mapping in answer.get("ResourceTagMappingList") or []:
                    listed[mapping["ResourceARN"].rsplit("/", 1)[-1]] = tags_from_boto3(mapping.get("Tags"))
        except is_boto3_error_code(_DENIED):
            self.module.warn(
                "tag:GetResources is denied: reading each managed node's tags with ssm:ListTagsForResource, one call "
                "per node. Allow tag:GetResources to read them 100 nodes per call."
            )
            return {}
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to read the managed nodes' tags (tag:GetResources)")
        asked = set(ids)
        return {i: tags for i, tags in listed.items() if i in asked}

    def tags(self, instance_id):
        try:
            answer = self.client.list_tags_for_resource(
                aws_retry=True, ResourceType=RESOURCE_TYPE, ResourceId=instance_id
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg=f"Failed to list tags of managed node {instance_id}")
        return tags_from_boto3(answer.get("TagList"))

    def retag(self, instance_id, to_set, to_unset, done):
        # Removing first keeps the node under the 50-tag limit while keys are replaced.
        operation = "remove tags from"
        try:
            if to_unset:
                self.client.remove_tags_from_resource(
                    aws_retry=True, ResourceType=RESOURCE_TYPE, ResourceId=instance_id, TagKeys=sorted(to_unset)
                )
            operation = "add tags to"
            if to_set:
                self.client.add_tags_to_resource(
                    aws_retry=True, ResourceType=RESOURCE_TYPE, ResourceId=instance_id, Tags=tags_to_boto3(to_set)
                )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            partly = ""
            if operation == "add tags to" and to_unset:
                partly = f"; its tags {', '.join(sorted(to_unset))} were already removed"
            self.module.fail_json_aws(e, msg=f"Failed to {operation} managed node {instance_id}{partly}" + _done(done))

    def deregister(self, instance_id, done):
        """Deregister; False when the node was already gone (deregistered meanwhile)."""
        try:
            self.client.deregister_managed_instance(aws_retry=True, InstanceId=instance_id)
        except is_boto3_error_code("InvalidInstanceId"):
            return False
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to deregister managed node {instance_id}" + _done(done))
        return True


def _done(done):
    """The tail of a failure message in the middle of a batch: which nodes were already changed."""
    if not done:
        return " (no node was changed before this failure)"
    return f" (already changed before this failure: {', '.join(done)})"


def run_present(module, nodes, items):
    ids = [item["instance_id"] for item in items]
    known = nodes.registered(ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        module.fail_json(
            msg=f"instances: {len(unknown)} managed node(s) not registered in region {module.region}: "
            f"{', '.join(unknown)}. No node was changed; remove them from instances, or register "
            "them first (state=absent skips unknown nodes)."
        )
    purge = module.params["purge_tags"]
    listed = nodes.listed_tags(ids)
    plans = []
    for item in items:  # every read before the first change: a failure here changes nothing
        wanted = wanted_tags(item)
        current = listed.get(item["instance_id"])
        if current is None or any(tag_changes(current, wanted, purge)):
            # Not listed, or listed as needing a change: the batch answer may be stale, ask the node itself.
            current = nodes.tags(item["instance_id"])
        to_set, to_unset = tag_changes(current, wanted, purge)
        plans.append((item["instance_id"], current, to_set, to_unset))
    results, diff, done = [], {"before": {}, "after": {}}, []
    for instance_id, current, to_set, to_unset in plans:
        changed = bool(to_set or to_unset)
        after = current
        if changed:
            after = {k: v for k, v in {**current, **to_set}.items() if k not in to_unset}
            diff["before"][instance_id] = current
            diff["after"][instance_id] = after
            if not module.check_mode:
                nodes.retag(instance_id, to_set, to_unset, done)
                done.append(instance_id)
                after = nodes.tags(instance_id)
        results.append(dict(instance_id=instance_id, tags=after, changed=changed, deregistered=False))
    return results, diff


def run_absent(module, nodes, items):
    ids = [item["instance_id"] for item in items]
    known = nodes.registered(ids)
    results, diff, done = [], {"before": {}, "after": {}}, []
    for instance_id in ids:
        changed = instance_id in known
        if changed:
            # The tags are read only for the diff: the node and its tags are gone afterwards.
            diff["before"][instance_id] = nodes.tags(instance_id) if module._diff else {}
            if not module.check_mode:
                changed = nodes.deregister(instance_id, done)
                if changed:
                    done.append(instance_id)
                else:
                    del diff["before"][instance_id]
        results.append(dict(instance_id=instance_id, tags={}, changed=changed, deregistered=changed))
    return results, diff


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instances=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    instance_id=dict(type="str", required=True),
                    tags=dict(type="dict"),
                ),
            ),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            purge_tags=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    validate(module)
    items = module.params["instances"]
    if not items:
        module.exit_json(changed=False, instances=[], **({"diff": {"before": {}, "after": {}}} if module._diff else {}))
    nodes = ManagedNodes(module)
    if module.params["state"] == "absent":
        results, diff = run_absent(module, nodes, items)
    else:
        results, diff = run_present(module, nodes, items)
    result = dict(changed=any(r["changed"] for r in results), instances=results)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
