#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: aws_config_recording
short_description: Keep AWS Config recording - configuration recorder, delivery channel and recording on
description:
  - Manages the customer managed AWS Config configuration recorder, the delivery channel and whether the
    recorder records, in one account and region. AWS allows only B(one) of each per account and region.
  - Only the fields this module owns are compared (the recorder's name, role and which resource types it
    records; the channel's bucket, prefix, topic and frequency), so the extra keys AWS returns
    (C(recordingMode), C(recordingStrategy), C(exclusionByResourceTypes), C(arn), ...) never make a run
    report a change. Fields it does not own (the recorder's C(recordingMode), the channel's C(s3KmsKeyArn))
    are sent back unchanged whenever the recorder or the channel is updated.
  - With O(merge_resource_types=true) (the default) an existing recording is never narrowed. A recorder that
    records a list of resource types records the union of its list and O(resource_types); one that records
    all supported types already covers them and is left alone; one that records all types except some
    stops excluding O(resource_types).
  - When the account and region already hold a recorder or a delivery channel with another name than
    O(recorder_name) or O(delivery_channel_name), the module fails before any change and names it.
  - With O(state=absent) recording is stopped and the delivery channel and the recorder are deleted - only
    those with our names; the data AWS Config already delivered stays in the bucket.
  - All options are validated before any AWS call.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  state:
    description:
      - V(present) creates or updates the recorder and the delivery channel and starts or stops recording
        (O(recording)); V(absent) stops recording and deletes the delivery channel and the recorder.
    type: str
    choices: [present, absent]
    default: present
  recorder_name:
    description:
      - Name of the configuration recorder (1 to 256 characters).
      - Must be the name of the recorder the account and region already have, if any.
    type: str
    default: default
  role_arn:
    description:
      - ARN of the IAM role AWS Config assumes to read the resources and write to the bucket
        (C(arn:aws:iam::<account>:role/<name>)).
      - Required when O(state=present). A recorder with another role is switched to this one.
    type: str
  resource_types:
    description:
      - Resource types to record, such as C(AWS::SSM::ManagedInstanceInventory) and C(AWS::SSM::FileData),
        each of the form C(AWS::<Service>::<Type>).
      - Mutually exclusive with O(all_supported=true). With O(state=present), one of the two is required.
      - See O(merge_resource_types) for what happens to the types an existing recorder already records.
    type: list
    elements: str
  all_supported:
    description:
      - V(true) records all supported resource types, now and in future.
      - Mutually exclusive with O(resource_types); V(false) is the same as leaving it unset.
    type: bool
  include_global_resource_types:
    description:
      - With O(all_supported=true), also record the global IAM resource types (users, groups, roles,
        customer managed policies). V(true) is only allowed with O(all_supported=true).
      - When not set, an existing recorder keeps its setting and a new one does not record them.
      - With O(merge_resource_types=true), V(false) does not turn off a recorder's existing recording of them.
    type: bool
  merge_resource_types:
    description:
      - V(true) never narrows what an existing recorder records (see the description).
      - V(false) makes the recorder record exactly O(resource_types) (or all supported types), which may
        stop the recording of types another team relies on.
    type: bool
    default: true
  delivery_channel_name:
    description:
      - Name of the delivery channel (1 to 256 characters).
      - Must be the name of the channel the account and region already have, if any.
    type: str
    default: default
  s3_bucket_name:
    description:
      - Bare name of the S3 bucket AWS Config delivers configuration snapshots and history to. Its policy
        must let AWS Config write (AWS checks this when the channel is created or changed).
      - Required when O(state=present).
    type: str
  s3_key_prefix:
    description:
      - Prefix of the objects in the bucket.
      - When not set, an existing channel keeps its prefix. An empty string removes the prefix.
    type: str
  sns_topic_arn:
    description:
      - ARN of the SNS topic AWS Config notifies.
      - When not set, an existing channel keeps its topic. An empty string removes the topic.
    type: str
  delivery_frequency:
    description:
      - How often AWS Config delivers configuration snapshots.
      - When not set, an existing channel keeps its frequency (a new one gets the AWS default, 24 hours).
    type: str
    choices: [One_Hour, Three_Hours, Six_Hours, Twelve_Hours, TwentyFour_Hours]
  recording:
    description:
      - V(true) starts the recorder when it does not record; V(false) stops it when it records.
    type: bool
    default: true
notes:
  - Supports check mode and diff. In check mode no call changes anything; RV(recorder), RV(delivery_channel)
    and RV(recording) then show the state as found and the diff shows what would change.
  - O(role_arn), O(resource_types), O(all_supported), O(include_global_resource_types),
    O(merge_resource_types), the delivery channel options and O(recording) are ignored with O(state=absent).
  - Service-linked recorders (created by other AWS services) are not customer managed and are never touched.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Record SSM inventory and file data of the hybrid nodes, deliver to the audit bucket
  hybrid.onboard.aws_config_recording:
    role_arn: "arn:aws:iam::123456789012:role/{{ hybrid_name }}-aws-config"
    resource_types:
      - AWS::SSM::ManagedInstanceInventory
      - AWS::SSM::FileData
    s3_bucket_name: "{{ hybrid_name }}-config-audit"
    s3_key_prefix: config
    delivery_frequency: TwentyFour_Hours

- name: Record everything, including the global IAM types
  hybrid.onboard.aws_config_recording:
    role_arn: arn:aws:iam::123456789012:role/aws-config
    all_supported: true
    include_global_resource_types: true
    s3_bucket_name: config-audit

- name: Stop recording, delete the delivery channel and the recorder
  hybrid.onboard.aws_config_recording:
    state: absent
"""

RETURN = r"""
recorder:
  description:
    - The configuration recorder after the run (as found in check mode); empty when there is none with
      O(recorder_name).
  returned: always
  type: dict
  contains:
    name:
      description: Name of the recorder.
      type: str
      sample: default
    role_arn:
      description: ARN of the IAM role AWS Config assumes.
      type: str
      sample: arn:aws:iam::123456789012:role/aws-config
    all_supported:
      description: Whether all supported resource types are recorded (with or without exclusions).
      type: bool
    include_global_resource_types:
      description: Whether the global IAM resource types are recorded along with all supported types.
      type: bool
    resource_types:
      description: The resource types recorded, sorted (empty when all supported types are recorded).
      type: list
      elements: str
      sample: [AWS::SSM::FileData, AWS::SSM::ManagedInstanceInventory]
    excluded_resource_types:
      description:
        - Resource types excluded, sorted, when the recorder records all types except some (AWS's
          C(EXCLUSION_BY_RESOURCE_TYPES) strategy); otherwise empty.
      type: list
      elements: str
delivery_channel:
  description:
    - The delivery channel after the run (as found in check mode); empty when there is none with
      O(delivery_channel_name).
  returned: always
  type: dict
  contains:
    name:
      description: Name of the channel.
      type: str
      sample: default
    s3_bucket_name:
      description: Bucket the snapshots and history go to.
      type: str
    s3_key_prefix:
      description: Prefix of the objects in the bucket (null when none).
      type: str
    s3_kms_key_arn:
      description: KMS key that encrypts the delivered objects (null when none; not managed by this module).
      type: str
    sns_topic_arn:
      description: SNS topic notified (null when none).
      type: str
    delivery_frequency:
      description: Snapshot delivery frequency (null when AWS uses its default).
      type: str
      sample: TwentyFour_Hours
recording:
  description: Whether the recorder records after the run (as found in check mode).
  returned: always
  type: bool
"""

import re

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import AnsibleAWSModule, aws_client


RESOURCE_TYPE = re.compile(r"^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
# Buckets made before 2018 in us-east-1 may hold capitals and underscores and be longer than 63 characters,
# so only what can never be a bucket name is refused here.
BUCKET = re.compile(r"^[A-Za-z0-9._-]{3,255}$")
MAX_NAME = 256
# Recorded with all supported types only when includeGlobalResourceTypes is true; recorded by the exclusion
# strategy unless excluded.
GLOBAL_IAM_TYPES = frozenset(("AWS::IAM::Group", "AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::User"))


def validate(module):
    """Every rule the API enforces, checked before any call, naming the option."""
    p = module.params
    problems = []
    for option in ("recorder_name", "delivery_channel_name"):
        if not p[option] or len(p[option]) > MAX_NAME:
            problems.append(f"{option} must be 1 to {MAX_NAME} characters (got {p[option]!r})")
    if p["state"] == "absent":
        if problems:
            module.fail_json(msg="Invalid options: " + "; ".join(problems))
        return
    role = p["role_arn"]
    if not role:
        problems.append("role_arn is required when state=present")
    elif not ROLE_ARN.match(role):
        hint = ""
        if not role.startswith("arn:"):
            hint = f"; for a role named {role!r} use arn:aws:iam::<account>:role/{role}"
        problems.append(
            f"role_arn must be the ARN of an IAM role (arn:aws:iam::<account>:role/<name>), got {role!r}{hint}"
        )
    types = p["resource_types"]
    if p["all_supported"] and types:
        problems.append("resource_types and all_supported=true are mutually exclusive: set one of them")
    elif not p["all_supported"] and not types:
        problems.append("one of resource_types (a non-empty list) or all_supported=true is required when state=present")
    if types:
        bad = [t for t in types if not isinstance(t, str) or not RESOURCE_TYPE.match(t)]
        if bad:
            problems.append(
                f"resource_types must be of the form AWS::<Service>::<Type>, such as "
                f"AWS::SSM::ManagedInstanceInventory (got {', '.join(repr(t) for t in bad)})"
            )
    if p["include_global_resource_types"] and not p["all_supported"]:
        problems.append("include_global_resource_types=true is only allowed with all_supported=true")
    bucket = p["s3_bucket_name"]
    if not bucket:
        problems.append("s3_bucket_name is required when state=present")
    elif bucket.startswith(("s3://", "arn:")) or "/" in bucket:
        bare = bucket.split(":::", 1)[-1].removeprefix("s3://").split("/", 1)[0]
        problems.append(
            f"s3_bucket_name must be the bare bucket name, not a URL, ARN or path (got {bucket!r}); "
            f"use {bare!r} and put any path into s3_key_prefix"
        )
    elif not BUCKET.match(bucket):
        problems.append(f"s3_bucket_name {bucket!r} is not a valid S3 bucket name")
    topic = p["sns_topic_arn"]
    if topic and not SNS_ARN.match(topic):
        problems.append(
            f"sns_topic_arn must be the ARN of an SNS topic (arn:aws:sns:<region>:<account>:<name>) or an empty "
            f"string to remove the topic (got {topic!r})"
        )
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems))


# --- the fields we own, as returned and as shown in the diff -----------------------------------------


def recorder_view(recorder):
    """A described recorder reduced to the fields this module owns (``{}`` when there is none)."""
    if not recorder:
        return {}
    group = recorder.get("recordingGroup") or {}
    excluded = sorted(set((group.get("exclusionByResourceTypes") or {}).get("resourceTypes") or []))
    strategy = (group.get("recordingStrategy") or {}).get("useOnly")
    if strategy == "EXCLUSION_BY_RESOURCE_TYPES" or excluded:
        all_supported, include_global, types = True, False, []
    else:
        types = sorted(set(group.get("resourceTypes") or []))
        # No recordingGroup at all is AWS's default: all supported types without the global IAM ones.
        all_supported = bool(group.get("allSupported")) if "allSupported" in group else not types
        include_global = bool(group.get("includeGlobalResourceTypes")) and all_supported
        if all_supported:
            types = []
        excluded = []
    return {
        "name": recorder.get("name"),
        "role_arn": recorder.get("roleARN"),
        "all_supported": all_supported,
        "include_global_resource_types": include_global,
        "resource_types": types,
        "excluded_resource_types": excluded,
    }


def channel_view(channel):
    """A described delivery channel reduced to its fields (``{}`` when there is none)."""
    if not channel:
        return {}
    return {
        "name": channel.get("name"),
        "s3_bucket_name": channel.get("s3BucketName"),
        "s3_key_prefix": channel.get("s3KeyPrefix") or None,
        "s3_kms_key_arn": channel.get("s3KmsKeyArn") or None,
        "sns_topic_arn": channel.get("snsTopicARN") or None,
        "delivery_frequency": (channel.get("configSnapshotDeliveryProperties") or {}).get("deliveryFrequency"),
    }


def records_global_iam(view):
    """Whether a recorder (view) records the global IAM resource types."""
    if not view:
        return False
    if view["excluded_resource_types"]:
        return not set(view["excluded_resource_types"]) >= GLOBAL_IAM_TYPES
    if view["all_supported"]:
        return view["include_global_resource_types"]
    return bool(GLOBAL_IAM_TYPES & set(view["resource_types"]))


def wanted_recorder(params, current):
    """The recorder view we want, given the current one (``{}`` when none).

    Returns ``(view, problem)``; ``problem`` is a message when the merge cannot be expressed.
    """
    p = params
    merge = p["merge_resource_types"]
    base = {"name": p["recorder_name"], "role_arn": p["role_arn"], "excluded_resource_types": []}
    if p["all_supported"]:
        include_global = p["include_global_resource_types"]
        if include_global is None:
            include_global = current.get("include_global_resource_types", False) if current else False
        if merge and records_global_iam(current):
            include_global = True  # never narrowed: the recorder records them already
        return dict(base, all_supported=True, include_global_resource_types=include_global, resource_types=[]), None
    ours = sorted(set(p["resource_types"]))
    if not current or not merge:
        return dict(base, all_supported=False, include_global_resource_types=False, resource_types=ours), None
    if current["excluded_resource_types"]:
        still_excluded = sorted(set(current["excluded_resource_types"]) - set(ours))
        if not still_excluded:
            return None, (
                f"the configuration recorder {current['name']!r} records all resource types except "
                f"{', '.join(current['excluded_resource_types'])}; recording resource_types as well would leave "
                "it nothing to exclude, which AWS does not accept: set all_supported=true (and "
                "include_global_resource_types as needed) or merge_resource_types=false"
            )
        return dict(current, role_arn=p["role_arn"], excluded_resource_types=still_excluded), None
    if current["all_supported"]:
        return dict(current, role_arn=p["role_arn"]), None  # ours are recorded already
    union = sorted(set(current["resource_types"]) | set(ours))
    return dict(base, all_supported=False, include_global_resource_types=False, resource_types=union), None


def wanted_channel(params, current):
    """The delivery channel view we want: options not set keep the current values."""
    p = params

    def keep(option):
        if p[option] is None:
            return current.get(option) if current else None
        return p[option] or None  # an empty string removes the setting

    return {
        "name": p["delivery_channel_name"],
        "s3_bucket_name": p["s3_bucket_name"],
        "s3_key_prefix": keep("s3_key_prefix"),
        "s3_kms_key_arn": current.get("s3_kms_key_arn") if current else None,
        "sns_topic_arn": keep("sns_topic_arn"),
        "delivery_frequency": keep("delivery_frequency"),
    }


# --- requests ------------------------------------------------------------------------------------------


def recorder_request(view, found):
    """PutConfigurationRecorder's ConfigurationRecorder for ``view``; keeps the found recordingMode."""
    if view["excluded_resource_types"]:
        group = {
            "allSupported": False,
            "includeGlobalResourceTypes": False,
            "exclusionByResourceTypes": {"resourceTypes": list(view["excluded_resource_types"])},
            "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
        }
    elif view["all_supported"]:
        group = {
            "allSupported": True,
            "includeGlobalResourceTypes": view["include_global_resource_types"],
            "recordingStrategy": {"useOnly": "ALL_SUPPORTED_RESOURCE_TYPES"},
        }
    else:
        group = {
            "allSupported": False,
            "includeGlobalResourceTypes": False,
            "resourceTypes": list(view["resource_types"]),
            "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"},
        }
    request = {"name": view["name"], "roleARN": view["role_arn"], "recordingGroup": group}
    if found and found.get("recordingMode"):
        request["recordingMode"] = found["recordingMode"]  # not ours: without it AWS would reset it
    return request


def channel_request(view):
    """PutDeliveryChannel's DeliveryChannel for ``view`` (unset fields left out)."""
    request = {"name": view["name"], "s3BucketName": view["s3_bucket_name"]}
    for key, field in (
        ("s3_key_prefix", "s3KeyPrefix"),
        ("s3_kms_key_arn", "s3KmsKeyArn"),
        ("sns_topic_arn", "snsTopicARN"),
    ):
        if view[key]:
            request[field] = view[key]
    if view["delivery_frequency"]:
        request["configSnapshotDeliveryProperties"] = {"deliveryFrequency": view["delivery_frequency"]}
    return request


# --- AWS -----------------------------------------------------------------------------------------------


class ConfigService:
    """Small wrappers around the AWS Config calls, retried on throttling, errors named by operation."""

    def __init__(self, module):
        self.module = module
        self.client = aws_client(module, "config")

    def _call(self, what, operation, **kwargs):
        try:
            return getattr(self.client, operation)(aws_retry=True, **kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg=f"Failed to {what}")

    def recorder(self):
        """The customer managed recorder of the account and region, or None."""
        found = self._call("describe configuration recorders", "describe_configuration_recorders")
        customer = [r for r in found.get("ConfigurationRecorders", []) if not r.get("servicePrincipal")]
        return customer[0] if customer else None

    def channel(self):
        found = self._call("describe delivery channels", "describe_delivery_channels")
        channels = found.get("DeliveryChannels", [])
        return channels[0] if channels else None

    def recording(self, name):
        """Whether the recorder ``name`` records (False when it does not exist)."""
        found = self._call("describe configuration recorder status", "describe_configuration_recorder_status")
        return any(s.get("name") == name and s.get("recording") for s in found.get("ConfigurationRecordersStatus", []))

    def put_recorder(self, request):
        try:
            self.client.put_configuration_recorder(aws_retry=True, ConfigurationRecorder=request)
        except botocore.exceptions.ClientError as e:
            hint = ""
            if e.response.get("Error", {}).get("Code") == "InvalidRoleException":
                hint = (
                    f" (role_arn {request['roleARN']!r} must exist and trust config.amazonaws.com, and the "
                    "caller needs iam:PassRole on it)"
                )
            self.module.fail_json_aws(e, msg=f"Failed to put configuration recorder {request['name']}{hint}")
        except botocore.exceptions.BotoCoreError as e:
            self.module.fail_json_aws(e, msg=f"Failed to put configuration recorder {request['name']}")

    def put_channel(self, request):
        try:
            self.client.put_delivery_channel(aws_retry=True, DeliveryChannel=request)
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            hints = {
                "NoSuchBucketException": f" (s3_bucket_name {request['s3BucketName']!r} does not exist)",
                "InsufficientDeliveryPolicyException": (
                    f" (the policy of bucket {request['s3BucketName']!r} must let AWS Config write to it, see "
                    "'Permissions for the Amazon S3 Bucket' in the AWS Config developer guide)"
                ),
                "InvalidS3KeyPrefixException": " (check s3_key_prefix)",
                "InvalidSNSTopicARNException": " (check sns_topic_arn)",
            }
            self.module.fail_json_aws(e, msg=f"Failed to put delivery channel {request['name']}{hints.get(code, '')}")
        except botocore.exceptions.BotoCoreError as e:
            self.module.fail_json_aws(e, msg=f"Failed to put delivery channel {request['name']}")

    def start(self, name):
        self._call(
            f"start configuration recorder {name}", "start_configuration_recorder", ConfigurationRecorderName=name
        )

    def stop(self, name):
        self._call(f"stop configuration recorder {name}", "stop_configuration_recorder", ConfigurationRecorderName=name)

    def delete_channel(self, name):
        self._call(f"delete delivery channel {name}", "delete_delivery_channel", DeliveryChannelName=name)

    def delete_recorder(self, name):
        self._call(
            f"delete configuration recorder {name}", "delete_configuration_recorder", ConfigurationRecorderName=name
        )


def found_state(aws):
    """(recorder, channel, recording) as described, whatever their names (there is at most one of each)."""
    recorder = aws.recorder()
    channel = aws.channel()
    recording = aws.recording(recorder["name"]) if recorder else False
    return recorder, channel, recording


def state_dict(recorder, channel, recording):
    return {"recorder": recorder, "delivery_channel": channel, "recording": recording}


def run_present(module, aws):
    p = module.params
    found_recorder, found_channel, found_recording = found_state(aws)
    # AWS allows one recorder and one channel per account and region: refuse before any change.
    problems = [
        f"{option} is {p[option]!r} but this account and region already have the {what} {found['name']!r} (AWS "
        f"allows only one): set {option}={found['name']!r} to manage it, or delete it first"
        for option, what, found in (("recorder_name", "configuration recorder", found_recorder),
                                    ("delivery_channel_name", "delivery channel", found_channel))
        if found and found["name"] != p[option]
    ]
    if problems:
        module.fail_json(
            msg="; ".join(problems),
            **state_dict(recorder_view(found_recorder), channel_view(found_channel), found_recording),
        )
    before = state_dict(recorder_view(found_recorder), channel_view(found_channel), found_recording)
    want_recorder, problem = wanted_recorder(p, before["recorder"])
    if problem:
        module.fail_json(msg=f"Cannot merge resource_types: {problem}", **before)
    want_channel = wanted_channel(p, before["delivery_channel"])
    recording = p["recording"]
    after = state_dict(want_recorder, want_channel, recording)

    recorder_changes = want_recorder != before["recorder"]
    channel_changes = want_channel != before["delivery_channel"]
    recording_changes = recording != found_recording
    changed = recorder_changes or channel_changes or recording_changes
    diff = {"before": before, "after": after} if changed else {"before": {}, "after": {}}
    if not changed or module.check_mode:
        return dict(changed=changed, diff=diff, **before)

    # This order is the one AWS needs: a channel needs a recorder, recording needs a channel.
    if recorder_changes:
        aws.put_recorder(recorder_request(want_recorder, found_recorder))
    if channel_changes:
        aws.put_channel(channel_request(want_channel))
    if recording_changes:
        (aws.start if recording else aws.stop)(p["recorder_name"])
    now_recorder, now_channel, now_recording = found_state(aws)
    now = state_dict(recorder_view(now_recorder), channel_view(now_channel), now_recording)
    return dict(changed=True, diff={"before": before, "after": now}, **now)


def run_absent(module, aws):
    p = module.params
    found_recorder, found_channel, found_recording = found_state(aws)
    ours_recorder = found_recorder if found_recorder and found_recorder["name"] == p["recorder_name"] else None
    ours_channel = found_channel if found_channel and found_channel["name"] == p["delivery_channel_name"] else None
    ours_recording = bool(ours_recorder) and found_recording
    if ours_channel and found_recording and not ours_recorder:
        # AWS refuses to delete the last channel while a recorder records; that recorder is not ours to stop.
        module.fail_json(
            msg=f"Cannot delete delivery channel {ours_channel['name']!r}: the configuration recorder "
            f"{found_recorder['name']!r} records and is not ours (recorder_name is {p['recorder_name']!r}); "
            f"set recorder_name={found_recorder['name']!r} to stop and delete it as well, or stop it first",
            **state_dict({}, channel_view(ours_channel), False),
        )
    before = state_dict(recorder_view(ours_recorder), channel_view(ours_channel), ours_recording)
    changed = bool(ours_recorder or ours_channel)
    gone = state_dict({}, {}, False)
    diff = {"before": before, "after": gone} if changed else {"before": {}, "after": {}}
    if not changed or module.check_mode:
        return dict(changed=changed, diff=diff, **before)
    if ours_recording:
        aws.stop(ours_recorder["name"])
    if ours_channel:
        aws.delete_channel(ours_channel["name"])
    if ours_recorder:
        aws.delete_recorder(ours_recorder["name"])
    return dict(changed=True, diff=diff, **gone)


def main():
    argument_spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        recorder_name=dict(type="str", default="default"),
        role_arn=dict(type="str"),
        resource_types=dict(type="list", elements="str"),
        all_supported=dict(type="bool"),
        include_global_resource_types=dict(type="bool"),
        merge_resource_types=dict(type="bool", default=True),
        delivery_channel_name=dict(type="str", default="default"),
        s3_bucket_name=dict(type="str"),
        s3_key_prefix=dict(type="str", no_log=False),
        sns_topic_arn=dict(type="str"),
        delivery_frequency=dict(
            type="str", choices=["One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours"]
        ),
        recording=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    validate(module)
    aws = ConfigService(module)
    result = run_absent(module, aws) if module.params["state"] == "absent" else run_present(module, aws)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
