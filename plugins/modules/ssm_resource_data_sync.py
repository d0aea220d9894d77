#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: ssm_resource_data_sync
short_description: Create, recreate and delete an AWS Systems Manager resource data sync to S3
description:
  - Manages one resource data sync of type C(SyncToDestination), which copies the Systems Manager Inventory of
    every managed node (hybrid C(mi-...) nodes included) to an S3 bucket, for Athena, Glue or QuickSight.
  - AWS cannot update a sync of this type. When the found sync differs from the wanted one, the module deletes it
    and creates it again with the wanted settings (O(recreate=true), the default), or fails naming the options
    that differ (O(recreate=false)).
  - An option that is not set is never changed; when a sync is recreated, unset options keep the found values.
  - Syncs of type C(SyncFromSource) (Explorer, OpsData) are never touched, even with the same name.
  - All options are validated before any AWS call.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  name:
    description:
      - Name of the sync (C(SyncName)), 1 to 64 letters, digits, C(_), C(-) or C(.).
    type: str
    required: true
    aliases: [sync_name]
  state:
    description:
      - V(present) ensures the sync exists with the given settings; V(absent) deletes it (the objects it already
        wrote to the bucket stay).
    type: str
    choices: [present, absent]
    default: present
  bucket_name:
    description:
      - Name of the destination S3 bucket (the bare name, not C(s3://...) or an ARN).
      - Required when O(state=present).
      - The bucket policy must allow C(ssm.amazonaws.com) to write to it; otherwise the sync is created but
        RV(resource_data_sync.last_status) becomes C(Failed) and the module warns.
    type: str
  prefix:
    description:
      - Key prefix in the bucket under which the inventory is written (at most 256 characters).
      - Not set keeps the found sync's prefix; an empty string means no prefix.
    type: str
  bucket_region:
    description:
      - Region of the destination bucket.
      - Defaults to the region the module works in (O(region)).
    type: str
  sync_format:
    description:
      - Format of the objects written; AWS supports only V(JsonSerDe).
    type: str
    choices: [JsonSerDe]
    default: JsonSerDe
  kms_key_arn:
    description:
      - ARN of the KMS key that encrypts the objects; it must be in O(bucket_region).
      - Not set keeps the found sync's key; an empty string means no key.
    type: str
  destination_data_sharing:
    description:
      - Share the destination data with the organization (C(DestinationDataSharing)).
      - Not set keeps the found sync's setting; V({}) means no sharing.
    type: dict
    suboptions:
      type:
        description:
          - Sharing type; AWS supports only V(Organization).
        type: str
        choices: [Organization]
  recreate:
    description:
      - When the found sync differs from the wanted settings, delete it and create it again.
      - With V(false) the module fails instead, naming the options that differ, and leaves the sync alone.
      - Between the deletion and the creation no sync exists; AWS then writes the whole inventory again.
    type: bool
    default: true
notes:
  - Supports check mode and diff. In check mode nothing is created or deleted.
  - AWS allows only a few syncs of type C(SyncToDestination) per account and region.
  - Deleting or recreating a sync never deletes objects in the bucket; after a change of O(prefix) the objects
    under the old prefix stay until removed.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Copy the inventory of every node to the site's inventory bucket
  hybrid.onboard.ssm_resource_data_sync:
    name: "{{ hybrid_name }}-inventory"
    bucket_name: "{{ hybrid_name }}-ssm-inventory"
    prefix: inventory
    kms_key_arn: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  register: __inventory_sync

- name: Fail instead of recreating a sync whose settings drifted
  hybrid.onboard.ssm_resource_data_sync:
    name: "{{ hybrid_name }}-inventory"
    bucket_name: "{{ hybrid_name }}-ssm-inventory"
    prefix: inventory
    recreate: false

- name: Delete the sync (the objects in the bucket stay)
  hybrid.onboard.ssm_resource_data_sync:
    name: "{{ hybrid_name }}-inventory"
    state: absent
"""

RETURN = r"""
resource_data_sync:
  description:
    - The sync after the run. Empty when absent, and in check mode before its creation; in check mode the
      found sync when it would be recreated.
    - Keys AWS gives no value for are null.
  returned: always
  type: dict
  contains:
    sync_name:
      description: Name of the sync.
      type: str
      sample: site1-inventory
    sync_type:
      description: Always C(SyncToDestination).
      type: str
      sample: SyncToDestination
    s3_destination:
      description: Where the inventory is written.
      type: dict
      contains:
        bucket_name:
          description: Name of the bucket.
          type: str
          sample: site1-ssm-inventory
        prefix:
          description: Key prefix in the bucket (null when none).
          type: str
          sample: inventory
        sync_format:
          description: Format of the objects.
          type: str
          sample: JsonSerDe
        region:
          description: Region of the bucket.
          type: str
          sample: eu-west-1
        awskms_key_arn:
          description: ARN of the KMS key that encrypts the objects (null when none).
          type: str
        destination_data_sharing:
          description: Data sharing setting (null when none).
          type: dict
          contains:
            destination_data_sharing_type:
              description: Sharing type.
              type: str
              sample: Organization
    last_status:
      description: Outcome of the last sync, C(Successful), C(Failed) or C(InProgress) (null before the first).
      type: str
      sample: Successful
    last_sync_time:
      description: Time of the last sync attempt, ISO 8601 UTC.
      type: str
      sample: "2025-01-31T12:00:00+00:00"
    last_successful_sync_time:
      description: Time of the last successful sync, ISO 8601 UTC.
      type: str
    sync_created_time:
      description: Creation time, ISO 8601 UTC.
      type: str
    sync_last_modified_time:
      description: Time of the last change, ISO 8601 UTC.
      type: str
    last_sync_status_message:
      description: Message of the last sync (why it failed, when it did).
      type: str
"""

import re
from datetime import datetime, timezone

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import (
    AnsibleAWSModule,
    aws_client,
    changed_fields,
    paginate,
)

SYNC_TYPE = "SyncToDestination"
_SYNC_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{1,64}$")
# Bucket names of today are 3-63 lower-case characters; buckets made before 2018 in us-east-1 may be longer and
# hold capitals and underscores, so only what can never be a bucket name is refused here.
_BUCKET = re.compile(r"^[A-Za-z0-9._-]{3,255}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):\d{12}:(key|alias)/.+$")
MAX_PREFIX = 256
MAX_KMS_ARN = 512

# The wanted settings by option name, and where each lives in S3Destination / in the returned s3_destination.
_FIELDS = (
    ("bucket_name", "BucketName", "bucket_name"),
    ("prefix", "Prefix", "prefix"),
    ("bucket_region", "Region", "region"),
    ("sync_format", "SyncFormat", "sync_format"),
    ("kms_key_arn", "AWSKMSKeyARN", "awskms_key_arn"),
    ("destination_data_sharing", "DestinationDataSharing", "destination_data_sharing"),
)


def validate(module):
    """Every rule the API enforces (and a few it enforces only later), before any call, naming the option."""
    p = module.params
    problems = []
    if not _SYNC_NAME.match(p["name"] or ""):
        problems.append(f"name must be 1 to 64 letters, digits, '_', '-' or '.' (got {p['name']!r})")
    bucket = p["bucket_name"]
    if p["state"] == "present" and not bucket:
        problems.append("bucket_name is required when state=present")
    elif bucket is not None:
        if bucket.startswith(("s3://", "arn:")) or "/" in bucket:
            bare = bucket.split(":::", 1)[-1].removeprefix("s3://").split("/", 1)[0]
            problems.append(
                f"bucket_name must be the bare bucket name, not a URL, ARN or path (got {bucket!r}); "
                f"use {bare!r} and put any path into prefix"
            )
        elif not _BUCKET.match(bucket):
            problems.append(f"bucket_name {bucket!r} is not a valid S3 bucket name")
    if p["prefix"] is not None and len(p["prefix"]) > MAX_PREFIX:
        problems.append(f"prefix must be at most {MAX_PREFIX} characters (got {len(p['prefix'])})")
    region = bucket_region(module)
    if region is None:
        problems.append("bucket_region is not set and the module has no region: set bucket_region or region")
    elif not _REGION.match(region):
        problems.append(f"bucket_region must be a region name such as eu-west-1 (got {region!r})")
    key = p["kms_key_arn"]
    if key:
        found = _KMS_ARN.match(key)
        if not found or len(key) > MAX_KMS_ARN:
            problems.append(
                f"kms_key_arn must be the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>), "
                f"at most {MAX_KMS_ARN} characters (got {key!r})"
            )
        elif region is not None and found.group("region") != region:
            problems.append(
                f"kms_key_arn must be a key in the bucket's region {region} "
                f"(bucket_region), not in {found.group('region')}"
            )
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems))


def bucket_region(module):
    return module.params["bucket_region"] or module.region


def _iso(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return value


# --- settings: option name -> value; "" means "none" (no prefix, no key, no sharing) ----------------


def found_settings(sync):
    """The settings of a sync as AWS describes it, by option name."""
    dest = sync.get("S3Destination") or {}
    return {
        "bucket_name": dest.get("BucketName"),
        "prefix": dest.get("Prefix") or "",
        "bucket_region": dest.get("Region"),
        "sync_format": dest.get("SyncFormat"),
        "kms_key_arn": dest.get("AWSKMSKeyARN") or "",
        "destination_data_sharing": (dest.get("DestinationDataSharing") or {}).get("DestinationDataSharingType") or "",
    }


def wanted_settings(module):
    """The settings the user asked for, by option name; None for an option not set (never compared)."""
    p = module.params
    sharing = p["destination_data_sharing"]
    return {
        "bucket_name": p["bucket_name"],
        "prefix": p["prefix"],
        "bucket_region": bucket_region(module),
        "sync_format": p["sync_format"],
        "kms_key_arn": p["kms_key_arn"],
        "destination_data_sharing": None if sharing is None else (sharing.get("type") or ""),
    }


def s3_destination(settings):
    """Settings -> the S3Destination of CreateResourceDataSync (empty optional ones left out)."""
    dest = {}
    for option, api_key, _return_key in _FIELDS:
        value = settings.get(option)
        if not value:
            continue
        dest[api_key] = {"DestinationDataSharingType": value} if option == "destination_data_sharing" else value
    return dest


def settings_view(settings, only=None):
    """Settings as the returned ``s3_destination`` shows them (snake_case, null for none), for the diff."""
    view = {}
    for option, _api_key, return_key in _FIELDS:
        if only is not None and option not in only:
            continue
        value = settings.get(option) or None
        if option == "destination_data_sharing" and value:
            value = {"destination_data_sharing_type": value}
        view[return_key] = value
    return view


def view(sync):
    """A sync as returned: the documented keys always present, ISO times, null for what AWS leaves out."""
    if not sync:
        return {}
    settings = found_settings(sync)
    return {
        "sync_name": sync.get("SyncName"),
        "sync_type": sync.get("SyncType"),
        "s3_destination": settings_view(settings),
        "last_status": sync.get("LastStatus"),
        "last_sync_time": _iso(sync.get("LastSyncTime")),
        "last_successful_sync_time": _iso(sync.get("LastSuccessfulSyncTime")),
        "sync_created_time": _iso(sync.get("SyncCreatedTime")),
        "sync_last_modified_time": _iso(sync.get("SyncLastModifiedTime")),
        "last_sync_status_message": sync.get("LastSyncStatusMessage") or None,
    }


class Syncs:
    """The AWS calls: list (describe), create, delete, each retried on throttling."""

    def __init__(self, module):
        self.module = module
        self.client = aws_client(module, "ssm")
        self.name = module.params["name"]

    def describe(self):
        try:
            items = paginate(self.client, "list_resource_data_sync", "ResourceDataSyncItems", SyncType=SYNC_TYPE)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg="Failed to list resource data syncs")
        return next((item for item in items if item.get("SyncName") == self.name), None)

    def create(self, settings, deleted=None):
        """Create the sync; ``deleted`` is the sync this replaces (named in the error when creation fails)."""
        lost = ""
        if deleted is not None:
            lost = (
                f" (the previous sync {self.name} was already deleted; it wrote to "
                f"{settings_view(found_settings(deleted))})"
            )
        try:
            self.client.create_resource_data_sync(
                aws_retry=True, SyncName=self.name, SyncType=SYNC_TYPE, S3Destination=s3_destination(settings)
            )
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            hint = ""
            if code == "ResourceDataSyncAlreadyExistsException":
                hint = (
                    f": a sync named {self.name} of another type (SyncFromSource) exists; this module manages "
                    "only SyncToDestination syncs, choose another name"
                )
            elif code == "ResourceDataSyncCountExceededException":
                hint = ": the account already has as many SyncToDestination syncs as AWS allows; delete an unused one"
            self.module.fail_json_aws(e, msg=f"Failed to create resource data sync {self.name}{hint}{lost}")
        except botocore.exceptions.BotoCoreError as e:
            self.module.fail_json_aws(e, msg=f"Failed to create resource data sync {self.name}{lost}")

    def delete(self):
        try:
            self.client.delete_resource_data_sync(aws_retry=True, SyncName=self.name, SyncType=SYNC_TYPE)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceDataSyncNotFoundException":
                return  # already gone (another run deleted it): the goal is reached
            self.module.fail_json_aws(e, msg=f"Failed to delete resource data sync {self.name}")
        except botocore.exceptions.BotoCoreError as e:
            self.module.fail_json_aws(e, msg=f"Failed to delete resource data sync {self.name}")

    def created(self, settings):
        """The sync after creating it; listing may lag creation, so fall back to what was asked for."""
        sync = self.describe()
        if sync is None:
            sync = {"SyncName": self.name, "SyncType": SYNC_TYPE, "S3Destination": s3_destination(settings)}
        return sync


def run_absent(syncs):
    current = syncs.describe()
    if current is None:
        return dict(changed=False, resource_data_sync={}, diff={"before": {}, "after": {}})
    if not syncs.module.check_mode:
        syncs.delete()
    before = {"sync_name": syncs.name, "s3_destination": settings_view(found_settings(current))}
    return dict(changed=True, resource_data_sync={}, diff={"before": before, "after": {}})


def run_present(syncs):
    module = syncs.module
    wanted = wanted_settings(module)
    current = syncs.describe()
    if current is None:
        settings = {k: v for k, v in wanted.items() if v is not None}
        diff = {
            "before": {},
            "after": {"sync_name": syncs.name, "sync_type": SYNC_TYPE, "s3_destination": settings_view(settings)},
        }
        if module.check_mode:
            return dict(changed=True, resource_data_sync={}, diff=diff)
        syncs.create(settings)
        return dict(changed=True, resource_data_sync=view(syncs.created(settings)), diff=diff)

    found = found_settings(current)
    changes = changed_fields(found, wanted)
    if not changes:
        return dict(changed=False, resource_data_sync=view(current), diff={"before": {}, "after": {}})
    if not module.params["recreate"]:
        described = ", ".join(
            f"{option} (is {found[option] or None!r}, wanted {changes[option] or None!r})" for option in changes
        )
        module.fail_json(
            msg=f"Resource data sync {syncs.name} differs in {described}. A SyncToDestination "
            "sync cannot be changed in place: use recreate=true to delete and recreate it, or give these "
            "options the found values. Nothing was changed.",
            resource_data_sync=view(current),
        )
    settings = {**found, **changes}  # unset options keep the found values
    diff = {
        "before": {"s3_destination": settings_view(found, only=changes)},
        "after": {"s3_destination": settings_view(settings, only=changes)},
    }
    if module.check_mode:
        return dict(changed=True, resource_data_sync=view(current), diff=diff)
    syncs.delete()
    syncs.create(settings, deleted=current)
    return dict(changed=True, resource_data_sync=view(syncs.created(settings)), diff=diff)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["sync_name"]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            bucket_name=dict(type="str"),
            prefix=dict(type="str"),
            bucket_region=dict(type="str"),
            sync_format=dict(type="str", choices=["JsonSerDe"], default="JsonSerDe"),
            kms_key_arn=dict(type="str", no_log=False),  # names the key, holds no key material
            destination_data_sharing=dict(type="dict", options=dict(type=dict(type="str", choices=["Organization"]))),
            recreate=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    validate(module)
    syncs = Syncs(module)
    result = run_absent(syncs) if module.params["state"] == "absent" else run_present(syncs)
    synced = result["resource_data_sync"]
    if synced.get("last_status") == "Failed":
        module.warn(
            f"Resource data sync {syncs.name} reports its last sync Failed: "
            f"{synced.get('last_sync_status_message') or 'no message'} (check that bucket "
            f"{synced['s3_destination']['bucket_name']} exists and its policy lets ssm.amazonaws.com write)"
        )
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
