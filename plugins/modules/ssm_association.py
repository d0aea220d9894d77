#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: ssm_association
short_description: Create, update and delete an AWS Systems Manager State Manager association, found by its name
description:
  - Keeps one State Manager association, identified by its association name (O(name)), in the wanted shape.
    It is found with C(ListAssociations) filtered on C(AssociationName); when more than one association has
    that name the module fails and lists their IDs instead of guessing which one is meant.
  - The task describes the whole association. AWS's C(UpdateAssociation) replaces every optional field the
    request leaves out with nothing, so when anything differs the module sends the complete association from
    the task (every option below, with O(parameters) in full), never only the changed fields.
  - An option that is not set means "not set in AWS either", or the AWS default where AWS has one, and is compared
    that way, so that a second run reports no change - for example O(apply_only_at_cron_interval=false),
    O(sync_compliance=AUTO), O(compliance_severity=UNSPECIFIED), O(max_concurrency=100%). A value set outside this
    module (for example in the console) for an option the task leaves out is therefore a change, and the update
    removes it (or puts the default back). The exception is O(document_version), which is not managed when left
    out (the association keeps the version it has).
  - Fields this module has no option for (C(CalendarNames), C(Duration), C(AlarmConfiguration),
    C(AutomationTargetParameterName), C(TargetLocations), C(AssociationDispatchAssumeRole)) are copied from the
    found association into every update, so an update never drops them.
  - Each update creates a new association version (RV(association.association_version)); C(UpdateAssociation)
    is called with the version that was described, so a concurrent change makes the run fail instead of being
    overwritten.
  - All options are validated before any AWS call.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  name:
    description:
      - The association name (C(AssociationName)) that identifies the association. 3 to 128 letters, digits,
        C(_), C(-) or C(.).
    type: str
    required: true
    aliases: [association_name]
  state:
    description:
      - V(present) creates the association or updates it to match the task; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  document_name:
    description:
      - Name (or ARN, for a document shared from another account) of the SSM document the association applies,
        for example C(AWS-GatherSoftwareInventory) or C(AWS-UpdateSSMAgent).
      - Required when O(state=present).
    type: str
  document_version:
    description:
      - Document version the association runs - V($DEFAULT), V($LATEST) or a version number such as V(3).
      - When not set, the version is not managed - a new association gets AWS's default (C($DEFAULT)) and a found
        one keeps its version.
    type: str
  parameters:
    description:
      - Parameters of the document, as a dictionary of parameter name to a list of string values. A single string
        (or number) is taken as a list of one value.
      - Compared exactly - a parameter the association has in AWS but the task does not list is removed, and
        every update sends all of them. Not set is the same as V({}) (the document's defaults apply).
      - Values are shown in the diff and in RV(association.parameters); reference secrets as
        C({{ssm:parameter-name}}) (inside C({% raw %}) in a playbook) instead of writing them here.
    type: dict
  targets:
    description:
      - The nodes the association applies to (at most 5 entries, AND-ed by AWS).
      - Required when O(state=present). Compared without regard to order.
    type: list
    elements: dict
    suboptions:
      key:
        description:
          - V(InstanceIds), V(tag:<tag key>) (nodes with that tag and one of the values), V(tag-key) (nodes that
            carry any of the tag keys in O(targets[].values)), V(resource-groups:Name) or
            V(resource-groups:ResourceTypeFilters).
        type: str
        required: true
      values:
        description:
          - 1 to 50 values. For V(InstanceIds) these are node IDs (C(mi-...) for hybrid nodes, C(i-...) for EC2),
            or the single value V(*) for every managed node of the account.
        type: list
        elements: str
        required: true
  schedule_expression:
    description:
      - When the association runs again, as C(cron(...)) (6 or 7 fields, UTC) or C(rate(N minutes|hours|days))
        (at least 30 minutes; C(rate(1 day)), C(rate(2 days))).
      - When not set, the association runs once when it is created or updated and not again.
    type: str
  schedule_offset:
    description:
      - Days (1 to 6) to wait after the scheduled day before running. Needs a C(cron(...)) O(schedule_expression)
        and O(apply_only_at_cron_interval=true), as AWS requires.
    type: int
  apply_only_at_cron_interval:
    description:
      - Run only at the schedule, not at once when the association is created or updated.
      - AWS does not support this with C(rate(...)) schedules, so it needs a C(cron(...)) O(schedule_expression).
    type: bool
    default: false
  compliance_severity:
    description:
      - Severity of the association's compliance status. Not set compares equal to V(UNSPECIFIED).
    type: str
    choices: [CRITICAL, HIGH, MEDIUM, LOW, UNSPECIFIED]
  max_concurrency:
    description:
      - Most targets that run the association at the same time - a number (V(10)) or a percentage (V(10%)), as
        the API pattern C(^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$) allows. Not set compares equal to V(100%).
    type: str
  max_errors:
    description:
      - Errors after which the association stops being sent to further targets - a number (V(0) stops at the first
        error) or a percentage, as the API pattern C(^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$) allows.
    type: str
  sync_compliance:
    description:
      - V(AUTO) - State Manager sets the compliance status from the execution; V(MANUAL) - you report it with
        C(PutComplianceItems). Not set compares equal to V(AUTO), the AWS default.
    type: str
    choices: [AUTO, MANUAL]
  output_location:
    description:
      - S3 bucket where the nodes write the command output of each run.
    type: dict
    suboptions:
      s3_bucket_name:
        description:
          - Bucket name (3 to 63 characters).
        type: str
        required: true
      s3_key_prefix:
        description:
          - Key prefix (folder) inside the bucket, at most 500 characters.
        type: str
      s3_region:
        description:
          - Region of the bucket. When not set, a region AWS reports is not compared.
        type: str
  rerun_failed:
    description:
      - When V(true) and the association is found unchanged while its last run failed on some of its targets
        (C(Overview.AssociationStatusAggregatedCount) counts C(Failed)), run it once more now on its targets
        (C(StartAssociationsOnce)), as the console's C(Apply association now) does. A failed run is otherwise
        retried only at the next time of its schedule, which for an agent update can be weeks away.
      - This is a change (RV(rerun) is V(true)); in check mode it is only reported. An association this run
        creates or updates is not started again - a new version runs on every target anyway.
    type: bool
    default: false
notes:
  - Supports check mode and diff. In check mode nothing is created, updated or deleted; the diff shows the
    comparable fields before and after (snake_case).
  - Associations that target a single node through the deprecated C(InstanceId) field are not managed by this
    module.
  - Parameters are a sensitive field in the AWS API model; this module returns them (see O(parameters)).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Gather software inventory from the site's hybrid nodes every 12 hours
  hybrid.onboard.ssm_association:
    name: "{{ hybrid_name }}-inventory"
    document_name: AWS-GatherSoftwareInventory
    targets:
      - key: tag:HybridSite
        values: ["{{ hybrid_name }}"]
    schedule_expression: rate(12 hours)
    parameters:
      applications: Enabled
      windowsUpdates: Disabled
    max_concurrency: 10%
    max_errors: 10%
    compliance_severity: MEDIUM

- name: Update the SSM Agent on two nodes on Sunday night only (not at once)
  hybrid.onboard.ssm_association:
    name: "{{ hybrid_name }}-agent-update"
    document_name: AWS-UpdateSSMAgent
    document_version: $DEFAULT
    targets:
      - key: InstanceIds
        values: [mi-0123456789abcdef0, mi-0123456789abcdef1]
    schedule_expression: cron(0 2 ? * SUN *)
    apply_only_at_cron_interval: true
    parameters:
      allowDowngrade: "false"
    output_location:
      s3_bucket_name: "{{ hybrid_name }}-ssm-output"
      s3_key_prefix: associations/agent-update

- name: Delete the association
  hybrid.onboard.ssm_association:
    name: "{{ hybrid_name }}-agent-update"
    state: absent
"""

RETURN = r"""
rerun:
  description:
    - Whether the association was started once more (O(rerun_failed)) because its last run failed on some
      targets. In check mode, whether it would be.
  returned: always
  type: bool
  sample: false
association:
  description:
    - The association after the run (as found, in check mode; empty when absent or not yet created in check
      mode).
    - Every key below is present; keys AWS does not report for this association are C(null).
  returned: always
  type: dict
  contains:
    association_id:
      description: ID of the association.
      type: str
      sample: 8dfe3659-4309-493a-8755-0123456789ab
    association_name:
      description: Name of the association (O(name)).
      type: str
      sample: site1-inventory
    association_version:
      description: Version of the association; every update adds one.
      type: str
      sample: "2"
    document_name:
      description: SSM document the association applies.
      type: str
      sample: AWS-GatherSoftwareInventory
    document_version:
      description: Document version, for example C($DEFAULT).
      type: str
      sample: $DEFAULT
    parameters:
      description: Parameters as stored by AWS (names unchanged, each a list of strings).
      type: dict
      sample: {"applications": ["Enabled"]}
    targets:
      description: Targets of the association.
      type: list
      elements: dict
      contains:
        key:
          description: Target key, for example C(InstanceIds) or C(tag:HybridSite).
          type: str
        values:
          description: Target values.
          type: list
          elements: str
      sample: [{"key": "tag:HybridSite", "values": ["site1"]}]
    schedule_expression:
      description: Schedule, C(cron(...)) or C(rate(...)).
      type: str
      sample: rate(12 hours)
    schedule_offset:
      description: Days to wait after the scheduled day.
      type: int
    compliance_severity:
      description: Compliance severity.
      type: str
      sample: MEDIUM
    max_concurrency:
      description: Rate control, targets at the same time.
      type: str
      sample: 10%
    max_errors:
      description: Rate control, errors before stopping.
      type: str
      sample: "1"
    apply_only_at_cron_interval:
      description: Whether the association runs only at its schedule.
      type: bool
    sync_compliance:
      description: C(AUTO) or C(MANUAL) compliance reporting.
      type: str
    output_location:
      description: S3 output location of the runs.
      type: dict
      contains:
        s3_bucket_name:
          description: Bucket name.
          type: str
        s3_key_prefix:
          description: Key prefix.
          type: str
        s3_region:
          description: Bucket region.
          type: str
    overview:
      description: Status of the association over its targets.
      type: dict
      contains:
        status:
          description: C(Pending), C(Success) or C(Failed).
          type: str
        detailed_status:
          description: Detailed status.
          type: str
        association_status_aggregated_count:
          description: Number of targets per status (keys as AWS names them, for example C(Success)).
          type: dict
          sample: {"Success": 3, "Pending": 1}
    date:
      description: Creation time, ISO 8601.
      type: str
    last_update_association_date:
      description: Time of the last update, ISO 8601.
      type: str
    last_execution_date:
      description: Time of the last run, ISO 8601 (null before the first run).
      type: str
    last_successful_execution_date:
      description: Time of the last successful run, ISO 8601 (null before the first success).
      type: str
"""

import copy
import re
from datetime import datetime

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import AnsibleAWSModule, aws_client, paginate


_ASSOCIATION_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
_DOCUMENT_NAME = re.compile(r"^[a-zA-Z0-9_\-.:/]{3,128}$")
_DOCUMENT_VERSION = re.compile(r"^(\$LATEST|\$DEFAULT|[1-9][0-9]*)$")
# The API model's patterns (botocore ssm service-2.json, shapes MaxConcurrency and MaxErrors).
_MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
_MAX_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
_NODE_ID = re.compile(r"^(i-(\w{8}|\w{17})|mi-\w{17})$")
_RATE = re.compile(r"^rate\(([0-9]+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#\-]+$")
_RATE_MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60}
MIN_RATE_MINUTES = 30
TARGET_KEYS = ("InstanceIds", "tag:<tag key>", "tag-key", "resource-groups:Name", "resource-groups:ResourceTypeFilters")
_FIXED_TARGET_KEYS = {"InstanceIds", "tag-key", "resource-groups:Name", "resource-groups:ResourceTypeFilters"}

# Fields without an option here: copied from the found association into every update, because
# UpdateAssociation resets what a request leaves out (TargetMaps cannot go together with Targets).
CARRIED_FIELDS = (
    "CalendarNames",
    "Duration",
    "AlarmConfiguration",
    "AutomationTargetParameterName",
    "TargetLocations",
    "AssociationDispatchAssumeRole",
)

# What AWS reports for a field that was never set, where it has a default: an unset option compares equal to it.
AWS_DEFAULTS = {
    "document_version": "$DEFAULT",
    "compliance_severity": "UNSPECIFIED",
    "max_concurrency": "100%",
    "sync_compliance": "AUTO",
    "apply_only_at_cron_interval": False,
}


# --- validation (before any call) ---------------------------------------------------------------


def schedule_problem(expr):
    """Why ``expr`` is not a State Manager schedule (None when it is)."""
    allowed = "use cron(...) with 6 or 7 fields or rate(N minutes|hours|days) of at least 30 minutes"
    if len(expr) > 256:
        return f"schedule_expression must be at most 256 characters; {allowed}"
    rate = _RATE.match(expr)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1:
            return f"schedule_expression {expr!r}: the rate must be at least 1"
        if (count == 1) != (not unit.endswith("s")):
            singular = unit.rstrip("s")
            return (
                f"schedule_expression {expr!r}: the unit is singular for 1 and plural above, "
                f"as in rate(1 {singular}) or rate(2 {singular}s)"
            )
        if count * _RATE_MINUTES[unit.rstrip("s")] < MIN_RATE_MINUTES:
            return f"schedule_expression {expr!r}: the shortest rate State Manager allows is rate(30 minutes)"
        return None
    cron = _CRON.match(expr)
    if cron:
        fields = cron.group(1).split()
        if len(fields) not in (6, 7) or not all(_CRON_FIELD.match(f) for f in fields):
            return f"schedule_expression {expr!r} is not a valid cron expression; {allowed}"
        return None
    return f"schedule_expression {expr!r} is not valid; {allowed}"


def normalise_parameters(raw, problems):
    """``{name: str | number | [str | number]}`` -> ``{name: [str]}``; problems are appended."""
    result = {}
    for pname, value in (raw or {}).items():
        if not isinstance(pname, str) or not pname:
            problems.append(f"parameters: parameter names must be non-empty strings (got {pname!r})")
            continue
        values = value if isinstance(value, list) else [value]
        converted = []
        for item in values:
            if isinstance(item, bool) or item is None or not isinstance(item, (str, int, float)):
                problems.append(
                    f"parameters.{pname}: values must be strings or lists of strings (got {item!r}); "
                    'quote booleans ("true") and pass maps as a JSON string'
                )
                break
            converted.append(str(item))
        else:
            result[pname] = converted
    return result


def target_problems(targets):
    problems = []
    if len(targets) > 5:
        problems.append(f"targets must have at most 5 entries (got {len(targets)})")
    for number, target in enumerate(targets, start=1):
        key, values = target["key"], target["values"]
        where = f"targets[{number}]"
        if key.startswith("tag:"):
            tag = key[4:]
            if not tag or len(tag) > 128:
                problems.append(f"{where}.key {key!r}: the tag key after 'tag:' must be 1 to 128 characters")
        elif key not in _FIXED_TARGET_KEYS:
            problems.append(f"{where}.key {key!r} is not supported; use one of {', '.join(TARGET_KEYS)}")
        if not values or len(values) > 50:
            problems.append(f"{where}.values must hold 1 to 50 values (got {len(values)})")
        elif any(not v for v in values):
            problems.append(f"{where}.values must not contain empty strings")
        elif key == "InstanceIds":
            if "*" in values and len(values) > 1:
                problems.append(f"{where}.values: '*' (every managed node) must be the only value")
            bad = [v for v in values if v != "*" and not _NODE_ID.match(v)]
            if bad:
                problems.append(
                    f"{where}.values: not node IDs (mi- plus 17 characters, or an EC2 i- ID): {', '.join(bad)}"
                )
    return problems


def validate(module):
    """Every rule the API enforces on our options, checked before any call, each message naming the option."""
    p = module.params
    problems = []
    if not _ASSOCIATION_NAME.match(p["name"]):
        problems.append(f"name {p['name']!r} must be 3 to 128 letters, digits, '_', '-' or '.'")
    if p["document_name"] is not None and not _DOCUMENT_NAME.match(p["document_name"]):
        problems.append(
            f"document_name {p['document_name']!r} must be 3 to 128 letters, digits, '_', '-', '.', ':' or '/'"
        )
    if p["document_version"] is not None and not _DOCUMENT_VERSION.match(p["document_version"]):
        problems.append(f"document_version {p['document_version']!r} must be $DEFAULT, $LATEST or a version number")
    if p["parameters"] is not None:
        p["parameters"] = normalise_parameters(p["parameters"], problems)
    if p["targets"] is not None:
        if p["state"] == "present" and not p["targets"]:
            problems.append("targets must hold at least one target when state=present")
        problems += target_problems(p["targets"])
    schedule = p["schedule_expression"]
    if schedule is not None:
        problem = schedule_problem(schedule)
        if problem:
            problems.append(problem)
    is_cron = schedule is not None and bool(_CRON.match(schedule))
    if p["apply_only_at_cron_interval"] and not is_cron:
        problems.append(
            "apply_only_at_cron_interval=true needs a cron(...) schedule_expression "
            "(AWS does not support it with rate(...) or without a schedule)"
        )
    offset = p["schedule_offset"]
    if offset is not None:
        if not 1 <= offset <= 6:
            problems.append(f"schedule_offset must be between 1 and 6 days (got {offset})")
        if not (is_cron and p["apply_only_at_cron_interval"]):
            problems.append(
                "schedule_offset needs a cron(...) schedule_expression and apply_only_at_cron_interval=true"
            )
    if p["max_concurrency"] is not None and not _MAX_CONCURRENCY.match(p["max_concurrency"]):
        problems.append(
            f"max_concurrency {p['max_concurrency']!r} must be a number from 1 or a percentage from 1% to 100% "
            f"(pattern {_MAX_CONCURRENCY.pattern})"
        )
    if p["max_errors"] is not None and not _MAX_ERRORS.match(p["max_errors"]):
        problems.append(
            f"max_errors {p['max_errors']!r} must be a number from 0 or a percentage from 0% to 100% "
            f"(pattern {_MAX_ERRORS.pattern})"
        )
    out = p["output_location"]
    if out is not None:
        if not 3 <= len(out["s3_bucket_name"]) <= 63:
            problems.append("output_location.s3_bucket_name must be 3 to 63 characters")
        if out["s3_key_prefix"] is not None and len(out["s3_key_prefix"]) > 500:
            problems.append("output_location.s3_key_prefix must be at most 500 characters")
        if out["s3_region"] is not None and not 3 <= len(out["s3_region"]) <= 20:
            problems.append("output_location.s3_region must be 3 to 20 characters, for example eu-central-1")
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems))


# --- the wanted association -------------------------------------------------------------------


def wanted_request(p, current):
    """The complete association for Create/UpdateAssociation, from the task (plus what is carried)."""
    request = {
        "AssociationName": p["name"],
        "Name": p["document_name"],
        "Targets": [{"Key": t["key"], "Values": list(t["values"])} for t in p["targets"]],
        "Parameters": copy.deepcopy(p["parameters"] or {}),
        "ApplyOnlyAtCronInterval": p["apply_only_at_cron_interval"],
    }
    document_version = p["document_version"]
    if document_version is None and current:
        document_version = current.get("DocumentVersion")  # not managed: keep what the association has
    optional = {
        "DocumentVersion": document_version,
        "ScheduleExpression": p["schedule_expression"],
        "ScheduleOffset": p["schedule_offset"],
        "ComplianceSeverity": p["compliance_severity"],
        "MaxConcurrency": p["max_concurrency"],
        "MaxErrors": p["max_errors"],
        "SyncCompliance": p["sync_compliance"],
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    out = p["output_location"]
    if out is not None:
        s3 = {"OutputS3BucketName": out["s3_bucket_name"]}
        if out["s3_key_prefix"] is not None:
            s3["OutputS3KeyPrefix"] = out["s3_key_prefix"]
        if out["s3_region"] is not None:
            s3["OutputS3Region"] = out["s3_region"]
        request["OutputLocation"] = {"S3Location": s3}
    if current:
        request.update({k: copy.deepcopy(current[k]) for k in CARRIED_FIELDS if current.get(k) is not None})
    return request


def comparable(assoc):
    """The managed fields of an association (API-shaped description or request), snake_case, for diff and compare."""
    if not assoc:
        return {}
    s3 = (assoc.get("OutputLocation") or {}).get("S3Location")
    return {
        "association_name": assoc.get("AssociationName"),
        "document_name": assoc.get("Name"),
        "document_version": assoc.get("DocumentVersion"),
        "parameters": copy.deepcopy(assoc.get("Parameters") or {}),
        "targets": [{"key": t.get("Key"), "values": list(t.get("Values") or [])} for t in assoc.get("Targets") or []],
        "schedule_expression": assoc.get("ScheduleExpression"),
        "schedule_offset": assoc.get("ScheduleOffset"),
        "apply_only_at_cron_interval": bool(assoc.get("ApplyOnlyAtCronInterval")),
        "compliance_severity": assoc.get("ComplianceSeverity"),
        "max_concurrency": assoc.get("MaxConcurrency"),
        "max_errors": assoc.get("MaxErrors"),
        "sync_compliance": assoc.get("SyncCompliance"),
        "output_location": None
        if not s3
        else {
            "s3_bucket_name": s3.get("OutputS3BucketName"),
            "s3_key_prefix": s3.get("OutputS3KeyPrefix"),
            "s3_region": s3.get("OutputS3Region"),
        },
    }


def _canonical(field, value, wanted_region=None):
    """A field's value as compared: AWS defaults for unset values, targets without order."""
    if value is None and field in AWS_DEFAULTS:
        return AWS_DEFAULTS[field]
    if field == "targets":
        return sorted((t["key"], sorted(t["values"])) for t in value)
    if field == "output_location" and value is not None:
        return (
            value["s3_bucket_name"],
            value.get("s3_key_prefix") or "",
            value.get("s3_region") if wanted_region is not None else None,
        )
    return value


def differences(before, after):
    """Fields of ``after`` (the wanted association) that differ from ``before`` (the found one)."""
    wanted_region = (after.get("output_location") or {}).get("s3_region")
    return sorted(
        field
        for field in after
        if _canonical(field, before.get(field), wanted_region) != _canonical(field, after[field], wanted_region)
    )


# --- AWS ----------------------------------------------------------------------------------------


class Associations:
    def __init__(self, module):
        self.module = module
        self.client = aws_client(module, "ssm")

    def _fail(self, e, msg):
        self.module.fail_json_aws(e, msg=msg)

    def find(self, name):
        """The full description of the association named ``name`` (None when there is none)."""
        try:
            listed = paginate(
                self.client,
                "list_associations",
                "Associations",
                AssociationFilterList=[{"key": "AssociationName", "value": name}],
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, f"Failed to list associations named {name}")
        # The filter is applied again here: the match must be exact, whatever the service's filter does.
        same = [a for a in listed if a.get("AssociationName") == name]
        if len(same) > 1:
            ids = ", ".join(a["AssociationId"] for a in same)
            self.module.fail_json(
                msg=f"{len(same)} associations are named {name!r} ({ids}); the module cannot tell which one to "
                "manage. Delete or rename all but one (for example with aws ssm delete-association --association-id)"
            )
        if not same:
            return None
        return self.describe(same[0]["AssociationId"])

    def describe(self, association_id):
        try:
            return self.client.describe_association(aws_retry=True, AssociationId=association_id)[
                "AssociationDescription"
            ]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, f"Failed to describe association {association_id}")

    def create(self, request):
        try:
            made = self.client.create_association(aws_retry=True, **request)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, f"Failed to create association {request['AssociationName']}")
        return made["AssociationDescription"]["AssociationId"]

    def update(self, current, request):
        association_id = current["AssociationId"]
        try:
            self.client.update_association(
                aws_retry=True,
                AssociationId=association_id,
                # Concurrency control: fails if someone else updated it since we described it.
                AssociationVersion=current["AssociationVersion"],
                **request,
            )
        except botocore.exceptions.ClientError as e:
            hint = ""
            if e.response.get("Error", {}).get("Code") == "InvalidAssociationVersion":
                hint = " (it was changed by someone else during this run; run the task again)"
            self._fail(e, f"Failed to update association {association_id} ({request['AssociationName']}){hint}")
        except botocore.exceptions.BotoCoreError as e:
            self._fail(e, f"Failed to update association {association_id} ({request['AssociationName']})")

    def start_once(self, current):
        association_id = current["AssociationId"]
        try:
            self.client.start_associations_once(aws_retry=True, AssociationIds=[association_id])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, f"Failed to start association {association_id} ({current.get('AssociationName')}) once more")

    def delete(self, current):
        association_id = current["AssociationId"]
        try:
            self.client.delete_association(aws_retry=True, AssociationId=association_id)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") == "AssociationDoesNotExist":
                return  # deleted by someone else meanwhile: the goal is reached
            self._fail(e, f"Failed to delete association {association_id} ({current.get('AssociationName')})")
        except botocore.exceptions.BotoCoreError as e:
            self._fail(e, f"Failed to delete association {association_id} ({current.get('AssociationName')})")


# --- result -------------------------------------------------------------------------------------


def _iso(value):
    return value.isoformat() if isinstance(value, datetime) else value


def view(assoc):
    """The association as returned: every documented key, snake_case, parameter names untouched, ISO dates."""
    if not assoc:
        return {}
    result = comparable(assoc)
    overview = assoc.get("Overview") or {}
    result.update(
        association_id=assoc.get("AssociationId"),
        association_version=assoc.get("AssociationVersion"),
        overview={
            "status": overview.get("Status"),
            "detailed_status": overview.get("DetailedStatus"),
            "association_status_aggregated_count": dict(overview.get("AssociationStatusAggregatedCount") or {}),
        },
        date=_iso(assoc.get("Date")),
        last_update_association_date=_iso(assoc.get("LastUpdateAssociationDate")),
        last_execution_date=_iso(assoc.get("LastExecutionDate")),
        last_successful_execution_date=_iso(assoc.get("LastSuccessfulExecutionDate")),
    )
    return result


def run(module):
    p = module.params
    assocs = Associations(module)
    current = assocs.find(p["name"])
    before = comparable(current)

    if p["state"] == "absent":
        if current is None:
            return dict(changed=False, association={}, diff={"before": {}, "after": {}})
        if not module.check_mode:
            assocs.delete(current)
        return dict(changed=True, association={}, diff={"before": before, "after": {}})

    request = wanted_request(p, current)
    after = comparable(request)
    if current is None:
        if module.check_mode:
            return dict(changed=True, association={}, diff={"before": {}, "after": after})
        association_id = assocs.create(request)
        return dict(
            changed=True, association=view(assocs.describe(association_id)), diff={"before": {}, "after": after}
        )

    changed_fields = differences(before, after)
    if not changed_fields:
        failed = (current.get("Overview") or {}).get("AssociationStatusAggregatedCount", {}).get("Failed", 0)
        if not (p["rerun_failed"] and failed):
            return dict(changed=False, association=view(current), diff={"before": before, "after": before})
        if module.check_mode:
            return dict(changed=True, rerun=True, association=view(current), diff={"before": before, "after": before})
        assocs.start_once(current)
        return dict(
            changed=True,
            rerun=True,
            association=view(assocs.describe(current["AssociationId"])),
            diff={"before": before, "after": before},
        )
    if module.check_mode:
        return dict(changed=True, association=view(current), diff={"before": before, "after": after})
    assocs.update(current, request)
    return dict(
        changed=True,
        association=view(assocs.describe(current["AssociationId"])),
        diff={"before": before, "after": after},
    )


def main():
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["association_name"]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        document_name=dict(type="str"),
        document_version=dict(type="str"),
        parameters=dict(type="dict"),
        targets=dict(
            type="list",
            elements="dict",
            options=dict(
                key=dict(type="str", required=True, no_log=False),
                values=dict(type="list", elements="str", required=True),
            ),
        ),
        schedule_expression=dict(type="str"),
        schedule_offset=dict(type="int"),
        apply_only_at_cron_interval=dict(type="bool", default=False),
        compliance_severity=dict(type="str", choices=["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED"]),
        max_concurrency=dict(type="str"),
        max_errors=dict(type="str"),
        sync_compliance=dict(type="str", choices=["AUTO", "MANUAL"]),
        rerun_failed=dict(type="bool", default=False),
        output_location=dict(
            type="dict",
            options=dict(
                s3_bucket_name=dict(type="str", required=True),
                s3_key_prefix=dict(type="str", no_log=False),
                s3_region=dict(type="str"),
            ),
        ),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[["state", "present", ["document_name", "targets"]]],
    )
    validate(module)
    result = run(module)
    result.setdefault("rerun", False)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
