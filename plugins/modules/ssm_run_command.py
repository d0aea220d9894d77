#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: ssm_run_command
short_description: Run an SSM document on a batch of managed nodes with Run Command, wait, and report per node
description:
  - Sends one Run Command (C(SendCommand)) for a whole batch of managed nodes (hybrid C(mi-...) or EC2 C(i-...)),
    optionally waits until every node has finished, and reports the outcome node by node.
  - AWS accepts at most 50 instance IDs per command; a longer O(instance_ids) is sent as one command per 50 IDs, in the
    order given. All commands are sent before the first wait.
  - With O(wait=true) the module polls C(ListCommandInvocations) (with details, paginated; one call per command still
    running per poll) until every invocation is in a terminal state (C(Success), C(Failed), C(Cancelled), C(TimedOut),
    or a terminal status detail such as C(Undeliverable), C(Terminated), C(DeliveryTimedOut)) or O(wait_timeout) runs
    out. For each node whose command ran and then failed or timed out, one C(GetCommandInvocation) reads its own
    standard output and error (the list call returns them merged and cut at 2500 characters, often before the error).
  - B(Per-node failures do not fail the task.) The module fails only for bad input or an AWS API error (for example an
    unknown document, or an instance ID that is not registered). A node whose command failed, timed out or was not
    finished at O(wait_timeout) is listed in RV(failed_instance_ids), so a play can fail just those hosts (see
    EXAMPLES).
  - Not idempotent by nature. Every real run sends the command(s) again and reports C(changed=true); the caller decides
    when it has to run (for example only for hosts that miss the package). With O(command_ids) nothing is sent; the
    module waits for and reports on commands sent before.
  - >-
    B(Progress.) With O(wait=true) the task's action plugin (same name) waits in slices of a few seconds and prints,
    at least every 15 seconds, the nodes still running, for example
    "Waiting for Run Command on 2 of 5 nodes (95 s left): mi-0123456789abcdef0 (InProgress), ...", in the normal
    output of C(ansible-playbook). It sends the command(s) once, then follows them with O(command_ids), and returns
    one result as a single run would, RV(waited) being the whole wait. AWS is asked as often as O(poll_interval)
    says; a node whose command failed is read in full (C(GetCommandInvocation)) once, at the end.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  document_name:
    description:
      - Name or ARN of the Command document to run, for example V(AWS-ConfigureAWSPackage) or V(AWS-RunShellScript).
    type: str
    required: true
  document_version:
    description:
      - Version of the document, V($DEFAULT), V($LATEST) or a version number. Not set, AWS uses the default version.
    type: str
  parameters:
    description:
      - Parameters of the document, name to value(s). AWS takes a list of strings per parameter; a single value becomes
        a one-element list.
      - Numbers become strings, booleans become V(true)/V(false), and a dictionary (for a C(StringMap) parameter such as
        C(additionalArguments)) becomes its JSON text.
      - Parameters the document does not declare are rejected by AWS (the task fails before any node runs anything).
      - The parameters are returned in RV(commands) and are visible in CloudTrail and the Run Command history; pass
        secrets as C({{ssm:parameter-name}}) references, not as values.
    type: dict
    default: {}
  instance_ids:
    description:
      - The managed nodes to run on, at least one. Hybrid nodes C(mi-) followed by 17 hexadecimal digits, EC2 instances
        C(i-) followed by 8 or 17 hexadecimal digits.
      - An ID listed twice is run once (with a warning).
      - Every node must be registered in the region; one that is not makes AWS reject the command of its batch of 50.
    type: list
    elements: str
    required: true
  comment:
    description: Comment shown in the Run Command history, at most 100 characters.
    type: str
  max_concurrency:
    description:
      - How many nodes of one command run at the same time, a number (V(50)) or a percentage of the command's nodes
        (V(10%)), as AWS's C(MaxConcurrency).
    type: str
    default: "50"
  max_errors:
    description:
      - After how many failed nodes AWS stops sending the command to further nodes of the same command, a number
        (V(0) stops after the first error) or a percentage (V(10%)), as AWS's C(MaxErrors).
      - Nodes not sent to because of it end as C(Cancelled) and are listed in RV(failed_instance_ids).
    type: str
    default: "0"
  timeout_seconds:
    description:
      - Delivery timeout in seconds (AWS's C(TimeoutSeconds), 30 to 2592000). A node that has not started the command
        by then ends as C(TimedOut) with status detail C(DeliveryTimedOut), for example a node whose agent is offline.
      - It does not limit how long the command runs once started; that is the document's own C(executionTimeout)
        parameter, where it has one.
    type: int
    default: 600
  output_s3_bucket_name:
    description:
      - S3 bucket where the agents write the full output of each node (the result here holds only the first 2000
        characters). The nodes' role must be allowed to write there.
    type: str
  output_s3_key_prefix:
    description: Key prefix for the output in O(output_s3_bucket_name).
    type: str
  wait:
    description:
      - Wait until every node has finished (or O(wait_timeout) runs out) and report per node.
      - V(false) returns as soon as the commands are sent, with RV(command_ids) only.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait with O(wait=true). Nodes still running then are reported in RV(pending_instance_ids) and
        RV(failed_instance_ids); their command goes on running in AWS.
    type: int
    default: 900
  poll_interval:
    description: Seconds between two polls while waiting.
    type: int
    default: 3
  command_ids:
    description:
      - Do not send anything; wait for (with O(wait=true)) and report on these commands, sent before for the same
        O(instance_ids) in the same order, one ID per 50 instance IDs as RV(command_ids) returned them (for example
        by a run with O(wait=false)). C(changed) is then V(false).
      - The action plugin uses it to follow its own commands between two progress lines.
    type: list
    elements: str
  read_failed_output:
    description:
      - Read the own standard output and error of each node whose command failed (one C(GetCommandInvocation) per
        such node). V(false) keeps the merged, shortened output of the list call.
      - The action plugin sets V(false) while it waits and reads them once at the end.
    type: bool
    default: true
notes:
  - Supports check mode. In check mode nothing is sent (and no AWS call is made); C(changed) is V(true) and RV(commands)
    shows what would be sent. RV(invocations) and the ID lists are then not returned; a play that reads them in check
    mode needs a C(default([])).
  - The module retries SendCommand only on throttling (a throttled call has not run), not on server errors, after which
    the command may exist already. botocore's own retries (O(aws_config), C(AWS_MAX_ATTEMPTS)) still apply. Other AWS
    calls are retried with jittered backoff on throttling.
  - Needs C(ssm:SendCommand) on the document and the nodes, and C(ssm:ListCommandInvocations) and
    C(ssm:GetCommandInvocation) to wait.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Install the CloudWatch agent on every node of the play with one command
  hybrid.onboard.ssm_run_command:
    document_name: AWS-ConfigureAWSPackage
    parameters:
      action: Install
      name: AmazonCloudWatchAgent
    instance_ids: "{{ ansible_play_hosts | map('extract', hostvars, 'hybrid_instance_id') | list }}"
    comment: hybrid-onboard cloudwatch agent
    max_concurrency: "10%"
    max_errors: "100%"
    wait_timeout: 1200
  run_once: true
  delegate_to: localhost
  register: __cw_install

- name: Fail just the hosts whose install did not succeed
  ansible.builtin.assert:
    that: hybrid_instance_id not in __cw_install.failed_instance_ids | default([])
    fail_msg: >-
      CloudWatch agent install failed on {{ hybrid_instance_id }}:
      {{ __cw_install.invocations | selectattr('instance_id', 'equalto', hybrid_instance_id)
         | map(attribute='error') | first | default('') }}

- name: Run a shell command on two nodes without waiting
  hybrid.onboard.ssm_run_command:
    document_name: AWS-RunShellScript
    parameters:
      commands:
        - systemctl restart amazon-cloudwatch-agent
    instance_ids:
      - mi-0123456789abcdef0
      - mi-0fedcba9876543210
    wait: false
  register: __restart
"""

RETURN = r"""
command_ids:
  description: IDs of the commands sent, one per 50 instance IDs, in the order of O(instance_ids). Empty in check mode.
  returned: always
  type: list
  elements: str
  sample: [d8d190fc-32c1-4d65-a0df-ff5ff3965524]
commands:
  description: What was sent (in check mode, what would be sent), one entry per command.
  returned: always
  type: list
  elements: dict
  contains:
    command_id:
      description: ID of the command; V(null) in check mode.
      type: str
      sample: d8d190fc-32c1-4d65-a0df-ff5ff3965524
    instance_ids:
      description: The nodes of this command.
      type: list
      elements: str
    document_name:
      description: The document.
      type: str
      sample: AWS-ConfigureAWSPackage
    document_version:
      description: The document version asked for; V(null) when not set.
      type: str
    parameters:
      description: The parameters as sent (each a list of strings).
      type: dict
      sample: {action: [Install], name: [AmazonCloudWatchAgent]}
    comment:
      description: The comment; empty when not set.
      type: str
    max_concurrency:
      description: MaxConcurrency sent.
      type: str
    max_errors:
      description: MaxErrors sent.
      type: str
    timeout_seconds:
      description: Delivery timeout sent.
      type: int
    output_s3_bucket_name:
      description: Output bucket; V(null) when not set.
      type: str
    output_s3_key_prefix:
      description: Output key prefix; V(null) when not set.
      type: str
invocations:
  description: One entry per node, sorted by instance ID.
  returned: when O(wait=true), not in check mode
  type: list
  elements: dict
  contains:
    instance_id:
      description: The node.
      type: str
      sample: mi-0123456789abcdef0
    command_id:
      description: The command that ran on the node.
      type: str
    status:
      description:
        - C(Success), C(Failed), C(Cancelled), C(TimedOut); C(Pending), C(InProgress) or C(Delayed) when the node had
          not finished at O(wait_timeout) (also C(Pending) for a node AWS did not list yet).
      type: str
      sample: Failed
    status_details:
      description: AWS's finer status, for example C(DeliveryTimedOut), C(ExecutionTimedOut), C(Undeliverable).
      type: str
      sample: Failed
    response_code:
      description: Exit code of the command on the node; V(-1) when it did not run (yet).
      type: int
      sample: 1
    output:
      description: Standard output, its first 2000 characters (the full output goes to O(output_s3_bucket_name)).
      type: str
    error:
      description: Standard error, its first 2000 characters.
      type: str
      sample: "failed to download manifest - failed to retrieve package document: AccessDenied"
succeeded_instance_ids:
  description: Nodes whose invocation ended in C(Success), sorted.
  returned: when O(wait=true), not in check mode
  type: list
  elements: str
failed_instance_ids:
  description:
    - Every node that did not succeed, sorted, including the nodes still running at O(wait_timeout).
    - The task does not fail because of them; fail the matching hosts (see EXAMPLES).
  returned: when O(wait=true), not in check mode
  type: list
  elements: str
pending_instance_ids:
  description: The nodes of RV(failed_instance_ids) that had not finished at O(wait_timeout), sorted.
  returned: when O(wait=true), not in check mode
  type: list
  elements: str
waited:
  description: Seconds spent waiting.
  returned: when O(wait=true), not in check mode
  type: float
  sample: 42.5
"""

import json
import random
import re
import time

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import AnsibleAWSModule, aws_client, paginate
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

# AWS's limit for InstanceIds in one SendCommand.
CHUNK = 50
OUTPUT_LIMIT = 2000
MAX_COMMENT = 100
INSTANCE_ID = re.compile(r"^(mi-[0-9a-f]{17}|i-[0-9a-f]{8}|i-[0-9a-f]{17})$")
# AWS's patterns for SendCommand's MaxConcurrency and MaxErrors.
MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
MAX_ERRORS = re.compile(r"^([1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%)$")
TIMEOUT_RANGE = (30, 2592000)
TERMINAL_STATUSES = {"Success", "Failed", "Cancelled", "TimedOut"}
# Status details AWS documents as terminal; some come with a coarse Status that is not one of the above.
TERMINAL_DETAILS = {
    "Success",
    "Failed",
    "Cancelled",
    "DeliveryTimedOut",
    "ExecutionTimedOut",
    "Undeliverable",
    "Terminated",
    "InvalidPlatform",
    "AccessDenied",
}
# CommandPlugins[].Output holds stdout, then this line and stderr when there is any.
ERROR_MARKER = "\n----------ERROR-------\n"
# Codes of a SendCommand that AWS refused before doing anything: safe to send again.
THROTTLE_CODES = ["ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"]
SEND_ATTEMPTS = 8


def _parameter_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return None


def normalise_parameters(parameters, problems):
    """``{name: value or [values]}`` -> ``{name: [str, ...]}`` as SendCommand takes it."""
    result = {}
    for name, value in (parameters or {}).items():
        values = value if isinstance(value, list) else [value]
        converted = [_parameter_value(v) for v in values]
        if not str(name):
            problems.append("parameters: a parameter name is empty")
        elif value is None or any(v is None for v in converted):
            problems.append(
                f"parameters.{name} must be a string, a number, a boolean, a dictionary (StringMap) or a list of "
                f"strings (got {value!r})"
            )
        else:
            result[str(name)] = converted
    return result


def validate(module):
    """Every rule AWS enforces on our input, checked before any call, naming the option."""
    p = module.params
    problems = []
    ids = p["instance_ids"]
    if not ids:
        problems.append("instance_ids must hold at least one managed node ID")
    bad = [i for i in ids if not isinstance(i, str) or not INSTANCE_ID.match(i)]
    if bad:
        problems.append(
            "instance_ids must be managed node IDs, mi- followed by 17 hexadecimal digits (hybrid nodes) or i- "
            f"followed by 8 or 17 (EC2); these are not: {', '.join(repr(b) for b in bad)}"
        )
    if not p["document_name"]:
        problems.append("document_name must not be empty")
    if p["document_version"] is not None and not p["document_version"]:
        problems.append("document_version must be $DEFAULT, $LATEST or a version number (or be omitted)")
    if p["comment"] is not None and len(p["comment"]) > MAX_COMMENT:
        problems.append(f"comment must be at most {MAX_COMMENT} characters (got {len(p['comment'])})")
    if not MAX_CONCURRENCY.match(p["max_concurrency"] or ""):
        problems.append(
            f"max_concurrency must be a number from 1 (such as 50) or a percentage from 1% to 100% (such as 10%), "
            f"got {p['max_concurrency']!r}"
        )
    if not MAX_ERRORS.match(p["max_errors"] or ""):
        problems.append(
            f"max_errors must be a number from 0 (such as 0 or 5) or a percentage from 0% to 100% (such as 10%), "
            f"got {p['max_errors']!r}"
        )
    if not TIMEOUT_RANGE[0] <= p["timeout_seconds"] <= TIMEOUT_RANGE[1]:
        problems.append(
            f"timeout_seconds must be between {TIMEOUT_RANGE[0]} and {TIMEOUT_RANGE[1]} (got {p['timeout_seconds']})"
        )
    if p["output_s3_key_prefix"] and not p["output_s3_bucket_name"]:
        problems.append("output_s3_key_prefix needs output_s3_bucket_name")
    if p["wait_timeout"] < 0:
        problems.append(f"wait_timeout must be 0 or more seconds (got {p['wait_timeout']})")
    if p["poll_interval"] < 1:
        problems.append(f"poll_interval must be at least 1 second (got {p['poll_interval']})")
    if p["command_ids"] is not None:
        expected = (len(ids) + CHUNK - 1) // CHUNK
        if len(p["command_ids"]) != expected or not all(p["command_ids"]):
            problems.append(
                f"command_ids must hold one command ID per {CHUNK} instance IDs, in order ({expected} for "
                f"{len(ids)} IDs; got {len(p['command_ids'])})"
            )
    parameters = normalise_parameters(p["parameters"], problems)
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems))
    unique = list(dict.fromkeys(ids))
    if len(unique) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        module.warn(f"instance_ids lists {', '.join(twice)} more than once; the command runs once per node")
    return unique, parameters


def planned_commands(p, ids, parameters):
    """The SendCommand requests, one per chunk of 50 IDs, as the result shows them."""
    return [
        dict(
            command_id=None,
            instance_ids=ids[start : start + CHUNK],
            document_name=p["document_name"],
            document_version=p["document_version"],
            parameters=parameters,
            comment=p["comment"] or "",
            max_concurrency=p["max_concurrency"],
            max_errors=p["max_errors"],
            timeout_seconds=p["timeout_seconds"],
            output_s3_bucket_name=p["output_s3_bucket_name"],
            output_s3_key_prefix=p["output_s3_key_prefix"],
        )
        for start in range(0, len(ids), CHUNK)
    ]


def _send_request(command):
    request = dict(
        InstanceIds=command["instance_ids"],
        DocumentName=command["document_name"],
        Parameters=command["parameters"],
        Comment=command["comment"],
        MaxConcurrency=command["max_concurrency"],
        MaxErrors=command["max_errors"],
        TimeoutSeconds=command["timeout_seconds"],
    )
    if command["document_version"]:
        request["DocumentVersion"] = command["document_version"]
    if command["output_s3_bucket_name"]:
        request["OutputS3BucketName"] = command["output_s3_bucket_name"]
        if command["output_s3_key_prefix"]:
            request["OutputS3KeyPrefix"] = command["output_s3_key_prefix"]
    return request


class RunCommand:
    """The AWS calls of this module, each failing through fail_json_aws with the operation named."""

    def __init__(self, module):
        self.module = module
        self.client = aws_client(module, "ssm")
        self.command_ids = []

    def _sent_so_far(self):
        if not self.command_ids:
            return " (no command was sent)"
        return f" (commands already sent: {', '.join(self.command_ids)})"

    def send(self, command, index, total):
        # Not through AWSRetry: it also retries server errors, after which the command may already exist and
        # would run twice. A throttled call has not run, so only throttling is retried here.
        where = f" to instances {index * CHUNK + 1}-{index * CHUNK + len(command['instance_ids'])}" if total > 1 else ""
        request = _send_request(command)
        for attempt in range(SEND_ATTEMPTS):
            try:
                return self.client.send_command(**request)["Command"]["CommandId"]
            except is_boto3_error_code(THROTTLE_CODES) as e:
                if attempt == SEND_ATTEMPTS - 1:
                    self._fail_send(e, where)
                time.sleep(random.uniform(0, min(30, 2**attempt)))  # noqa: S311 - jitter, not security
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
                self._fail_send(e, where)
        return None  # not reached: the last attempt fails the module

    def _fail_send(self, error, where):
        hint = ""
        if getattr(error, "response", {}).get("Error", {}).get("Code") == "InvalidInstanceId":
            hint = (
                "; every ID of instance_ids must be a node registered in this region (ssm_managed_node_info lists them)"
            )
        self.module.fail_json_aws(
            error,
            msg=f"Failed to send command {self.module.params['document_name']}{where}{self._sent_so_far()}{hint}",
            command_ids=self.command_ids,
        )

    def invocations(self, command_id):
        try:
            return paginate(
                self.client, "list_command_invocations", "CommandInvocations", CommandId=command_id, Details=True
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(
                e, msg=f"Failed to list command invocations of command {command_id}", command_ids=self.command_ids
            )

    def invocation(self, command_id, instance_id, plugin_name):
        """One node's invocation of one plugin, with its own stdout and stderr; None (and a warning) on error."""
        kwargs = dict(CommandId=command_id, InstanceId=instance_id)
        if plugin_name:
            kwargs["PluginName"] = plugin_name
        try:
            answer = self.client.get_command_invocation(aws_retry=True, **kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            # The commands ran: losing the whole report for one node's detailed output would be worse.
            self.module.warn(f"Failed to get command invocation {command_id} on {instance_id}: {e}")
            return None
        return answer


def is_terminal(invocation):
    details = str(invocation.get("StatusDetails") or "").replace(" ", "")
    return invocation.get("Status") in TERMINAL_STATUSES or details in TERMINAL_DETAILS


def _split_outputs(plugins):
    stdout, stderr = [], []
    for plugin in plugins:
        text = plugin.get("Output") or ""
        out, _marker, err = text.partition(ERROR_MARKER)
        if out:
            stdout.append(out)
        if err:
            stderr.append(err)
    return "\n".join(stdout), "\n".join(stderr)


def _failed_plugin(plugins):
    """Name of the first plugin (step) that did not succeed, or None."""
    for plugin in plugins:
        if plugin.get("Status") != "Success":
            return plugin.get("Name")
    return None


def report(runner, command_of, listed, read_failed_output=True):
    """The per-node result, sorted by instance ID, reading full output for the nodes that failed."""
    rows = []
    for instance_id in sorted(command_of):
        invocation = listed.get(instance_id)
        if invocation is None:  # sent but not listed by AWS yet
            rows.append(
                dict(
                    instance_id=instance_id,
                    command_id=command_of[instance_id],
                    status="Pending",
                    status_details="Pending",
                    response_code=-1,
                    output="",
                    error="",
                )
            )
            continue
        plugins = invocation.get("CommandPlugins") or []
        stdout, stderr = _split_outputs(plugins)
        status = invocation.get("Status") or "Pending"
        details = invocation.get("StatusDetails") or status
        failed_plugin = _failed_plugin(plugins)
        codes = [pl.get("ResponseCode") for pl in plugins if pl.get("Name") == failed_plugin]
        codes += [pl.get("ResponseCode") for pl in plugins]
        response_code = next((c for c in codes if c is not None), -1)
        failed = (status == "Failed" or details == "ExecutionTimedOut") and is_terminal(invocation)
        if failed and read_failed_output:
            # The list call merges stdout and stderr and cuts them at 2500 characters, often before stderr.
            full = runner.invocation(invocation["CommandId"], instance_id, failed_plugin)
            if full is not None:
                stdout = full.get("StandardOutputContent") or ""
                stderr = full.get("StandardErrorContent") or ""
                response_code = full.get("ResponseCode", response_code)
        rows.append(
            dict(
                instance_id=instance_id,
                command_id=invocation["CommandId"],
                status=status,
                status_details=details,
                response_code=int(response_code),
                output=stdout[:OUTPUT_LIMIT],
                error=stderr[:OUTPUT_LIMIT],
            )
        )
    return rows


def wait_for(module, runner, commands):
    """Poll until every invocation is terminal or wait_timeout; return the result keys of a wait."""
    p = module.params
    started = time.monotonic()
    deadline = started + p["wait_timeout"]
    command_of = {i: c["command_id"] for c in commands for i in c["instance_ids"]}
    running = [c["command_id"] for c in commands]
    listed = {}
    while True:
        for command in list(running):
            for invocation in runner.invocations(command):
                if invocation.get("InstanceId") in command_of:
                    listed[invocation["InstanceId"]] = invocation
            mine = [i for i, c in command_of.items() if c == command]
            if all(i in listed and is_terminal(listed[i]) for i in mine):
                running.remove(command)  # finished commands are not asked again
        now = time.monotonic()
        if not running or now >= deadline:
            break
        time.sleep(min(p["poll_interval"], max(deadline - now, 0)))
    waited = round(time.monotonic() - started, 1)
    rows = report(runner, command_of, listed, p["read_failed_output"])
    pending = [i for i in command_of if i not in listed or not is_terminal(listed[i])]
    return dict(
        invocations=rows,
        succeeded_instance_ids=sorted(r["instance_id"] for r in rows if r["status"] == "Success"),
        failed_instance_ids=sorted(r["instance_id"] for r in rows if r["status"] != "Success"),
        pending_instance_ids=sorted(pending),
        waited=waited,
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            document_name=dict(type="str", required=True),
            document_version=dict(type="str"),
            parameters=dict(type="dict", default={}),
            instance_ids=dict(type="list", elements="str", required=True),
            comment=dict(type="str"),
            max_concurrency=dict(type="str", default="50"),
            max_errors=dict(type="str", default="0"),
            timeout_seconds=dict(type="int", default=600),
            output_s3_bucket_name=dict(type="str"),
            output_s3_key_prefix=dict(type="str", no_log=False),  # an S3 object key prefix, not a secret
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=900),
            poll_interval=dict(type="int", default=3),
            command_ids=dict(type="list", elements="str"),
            read_failed_output=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    ids, parameters = validate(module)
    commands = planned_commands(module.params, ids, parameters)
    sent_before = module.params["command_ids"]
    if sent_before is not None:
        for index, command_id in enumerate(sent_before):  # as many as commands (validate)
            commands[index]["command_id"] = command_id
    if module.check_mode:
        module.exit_json(changed=sent_before is None, command_ids=list(sent_before or []), commands=commands)
    runner = RunCommand(module)
    if sent_before is not None:
        runner.command_ids = list(sent_before)
    else:
        for index, command in enumerate(commands):
            command["command_id"] = runner.send(command, index, len(commands))
            runner.command_ids.append(command["command_id"])
    result = dict(changed=sent_before is None, command_ids=runner.command_ids, commands=commands)
    if module.params["wait"]:
        result.update(wait_for(module, runner, commands))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
