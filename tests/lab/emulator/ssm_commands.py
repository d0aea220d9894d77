"""Run Command that really executes, for the lab emulator.

SendCommand creates one invocation per target. Invocations on hybrid nodes stay ``Pending`` until the
node's agent fetches them through ec2messages GetMessages, become ``InProgress`` on AcknowledgeMessage
and take status and output from SendReply (tests/lab/PROTOCOL.md). Invocations on moto EC2 instances
keep moto's behaviour (instant Success): no agent runs there in the lab. Also seeds the AWS-owned
documents the product uses into moto's document store, since moto ships none.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ssm.models import Document, Documents

from . import ssm_common as c

TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}

# --- AWS-owned documents (shortened but structurally faithful copies of the real ones) ------

_ENABLED = {"type": "String", "default": "Enabled", "allowedValues": ["Enabled", "Disabled"]}
AWS_DOCUMENTS: dict[str, dict[str, Any]] = {
    "AWS-RunShellScript": {
        "schemaVersion": "1.2",
        "description": "Run a shell script or specify the commands to run.",
        "parameters": {
            "commands": {
                "type": "StringList",
                "description": "(Required) Specify a shell script or a command to run.",
                "minItems": 1,
                "displayType": "textarea",
            },
            "workingDirectory": {
                "type": "String",
                "default": "",
                "description": "(Optional) The path to the working directory on your instance.",
                "maxChars": 4096,
            },
            "executionTimeout": {
                "type": "String",
                "default": "3600",
                "description": "(Optional) The time in seconds for a command to complete.",
                "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|"
                "(172[0-7][0-9]{2})|(172800)",
            },
        },
        "runtimeConfig": {
            "aws:runShellScript": {
                "properties": [
                    {
                        "id": "0.aws:runShellScript",
                        "runCommand": "{{ commands }}",
                        "workingDirectory": "{{ workingDirectory }}",
                        "timeoutSeconds": "{{ executionTimeout }}",
                    }
                ]
            }
        },
    },
    "AWS-ConfigureAWSPackage": {
        "schemaVersion": "2.2",
        "description": "Install or uninstall a Distributor package.",
        "parameters": {
            "action": {"type": "String", "allowedValues": ["Install", "Uninstall"]},
            "installationType": {
                "type": "String",
                "default": "Uninstall and reinstall",
                "allowedValues": ["Uninstall and reinstall", "In-place update"],
            },
            "name": {"type": "String", "default": "", "allowedPattern": "^[a-zA-Z0-9_\\-.:/]{0,128}$"},
            "version": {"type": "String", "default": ""},
            "additionalArguments": {"type": "StringMap", "default": {}},
        },
        "mainSteps": [
            {
                "action": "aws:configurePackage",
                "name": "configurePackage",
                "inputs": {
                    "name": "{{ name }}",
                    "action": "{{ action }}",
                    "installationType": "{{installationType}}",
                    "version": "{{ version }}",
                    "additionalArguments": "{{ additionalArguments }}",
                },
            }
        ],
    },
    "AWS-UpdateSSMAgent": {
        "schemaVersion": "1.2",
        "description": "Updates the Amazon SSM Agent to the specified version or the latest version.",
        "parameters": {
            "version": {"type": "String", "default": "", "allowedPattern": "^$|^\\d+\\.\\d+\\.\\d+\\.\\d+$"},
            "allowDowngrade": {"type": "String", "default": "false", "allowedValues": ["true", "false"]},
        },
        "runtimeConfig": {
            "aws:updateSsmAgent": {
                "properties": [
                    {
                        "agentName": "amazon-ssm-agent",
                        "source": "https://s3.{Region}.amazonaws.com/amazon-ssm-{Region}/ssm-agent-manifest.json",
                        "allowDowngrade": "{{ allowDowngrade }}",
                        "targetVersion": "{{ version }}",
                    }
                ]
            }
        },
    },
    "AWS-GatherSoftwareInventory": {
        "schemaVersion": "2.0",
        "description": "Software Inventory Policy Document.",
        "parameters": {
            "applications": _ENABLED,
            "awsComponents": _ENABLED,
            "files": {"type": "String", "default": ""},
            "networkConfig": _ENABLED,
            "billingInfo": _ENABLED,
            "windowsUpdates": _ENABLED,
            "instanceDetailedInformation": _ENABLED,
            "services": _ENABLED,
            "windowsRegistry": {"type": "String", "default": ""},
            "windowsRoles": _ENABLED,
            "customInventory": _ENABLED,
        },
        "mainSteps": [
            {
                "action": "aws:softwareInventory",
                "name": "collectSoftwareInventoryItems",
                "inputs": {
                    k: "{{ " + k + " }}"
                    for k in (
                        "applications",
                        "awsComponents",
                        "networkConfig",
                        "files",
                        "services",
                        "windowsRoles",
                        "windowsRegistry",
                        "windowsUpdates",
                        "instanceDetailedInformation",
                        "billingInfo",
                        "customInventory",
                    )
                },
            }
        ],
    },
}


def seed_documents(backend: Any) -> None:
    """Put the AWS-owned documents into a moto SSM backend (owner ``Amazon``), if not there yet."""
    for name, content in AWS_DOCUMENTS.items():
        if name in backend._documents:
            continue
        doc = Document(
            account_id=backend.account_id,
            name=name,
            version_name=None,
            content=json.dumps(content),
            document_type="Command",
            document_format="JSON",
            requires=None,
            attachments=None,
            target_type="/AWS::EC2::Instance",
        )
        doc.owner = "Amazon"
        doc.platform_types = (
            ["Linux", "MacOS"] if name == "AWS-RunShellScript" else ["Windows", "Linux", "MacOS"]
        )
        backend._documents[name] = Documents(doc)


def get_document(st: c.SsmState, name: Any, version: Any = None) -> Document:
    if not isinstance(name, str) or not name:
        raise c.SsmError("InvalidDocument", "The document name is missing.")
    name = name.split("document/", 1)[1] if name.startswith("arn:") and "document/" in name else name
    docs = c.moto_backend(st.account_id, st.region)._documents.get(name)
    if docs is None:
        raise c.SsmError("InvalidDocument", f"Document with name {name} does not exist.")
    if version in (None, "", "$DEFAULT"):
        return docs.get_default_version()
    if version == "$LATEST":
        return docs.get_latest_version()
    doc = docs.find_by_version(str(version))
    if doc is None:
        raise c.SsmError("InvalidDocumentVersion", f"Document {name} has no version {version}.")
    return doc


def plugin_names(doc: Document) -> list[str]:
    body = doc.content_json
    if str(body.get("schemaVersion")) == "1.2":
        return list((body.get("runtimeConfig") or {}).keys())
    return [step.get("name", step.get("action", "step")) for step in body.get("mainSteps") or []]


def resolve_parameters(
    doc: Document, given: Any, error_code: str = "InvalidParameters"
) -> dict[str, list[str]]:
    """Check ``given`` against the document's parameters; return them merged with defaults."""
    declared = doc.content_json.get("parameters") or {}
    given = given or {}
    if not isinstance(given, dict):
        raise c.SsmError(error_code, "Parameters must be a map of name to list of values.")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise c.SsmError(
            error_code, f"Parameter(s) {', '.join(unknown)} are not defined in document {doc.name}."
        )
    merged: dict[str, list[str]] = {}
    for pname, spec in declared.items():
        if pname in given:
            values = given[pname]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise c.SsmError(error_code, f"Parameter {pname} must be a list of strings.")
        elif "default" in spec:
            default = spec["default"]
            if isinstance(default, list):
                values = [str(v) for v in default]
            elif isinstance(default, dict):
                values = [json.dumps(default)]
            else:
                values = [str(default)]
        else:
            raise c.SsmError(error_code, f"Parameter {pname} is required by document {doc.name}.")
        allowed = spec.get("allowedValues")
        if pname in given and allowed and any(v not in allowed for v in values):
            raise c.SsmError(error_code, f"Parameter {pname} value(s) {values} not in {allowed}.")
        pattern = spec.get("allowedPattern")
        if pname in given and pattern and any(not re.fullmatch(pattern, v) for v in values):
            raise c.SsmError(error_code, f"Parameter {pname} value(s) {values} do not match {pattern}.")
        if spec.get("type") == "String" and len(values) > 1:
            raise c.SsmError(error_code, f"Parameter {pname} is a String and takes one value.")
        merged[pname] = values
    return merged


# --- commands -------------------------------------------------------------------------------


@dataclass
class Invocation:
    instance_id: str
    instance_name: str
    status: str = "Pending"
    status_details: str = "Pending"
    delivered_at: datetime | None = None
    visible_after: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    replies: set[str] = field(default_factory=set)


@dataclass
class Command:
    command_id: str
    document_name: str
    document_version: str
    document_content: str
    plugins: list[str]
    comment: str
    parameters: dict[str, list[str]]
    given_parameters: dict[str, list[str]]
    instance_ids: list[str]
    targets: list[dict[str, Any]]
    requested: datetime
    timeout_seconds: int
    max_concurrency: str
    max_errors: str
    output_bucket: str
    output_prefix: str
    output_region: str
    service_role: str
    notification_config: dict[str, Any]
    cloudwatch_output: dict[str, Any]
    region: str
    invocations: dict[str, Invocation] = field(default_factory=dict)
    association_id: str | None = None  # set for State Manager runs: not listed by ListCommands

    @property
    def expires_after(self) -> datetime:
        return self.requested + timedelta(seconds=self.timeout_seconds)


def _refresh(cmd: Command) -> None:
    """Apply the delivery timeout lazily: undelivered invocations past ExpiresAfter time out."""
    current = c.now()
    for inv in cmd.invocations.values():
        if inv.status == "Pending" and inv.delivered_at is None and current > cmd.expires_after:
            inv.status, inv.status_details = "TimedOut", "DeliveryTimedOut"
            inv.ended = current


def _counts(cmd: Command) -> tuple[int, int, int]:
    done = sum(1 for i in cmd.invocations.values() if i.status in TERMINAL)
    errors = sum(
        1
        for i in cmd.invocations.values()
        if i.status == "Failed" or (i.status == "TimedOut" and i.status_details != "DeliveryTimedOut")
    )
    delivery_timeouts = sum(1 for i in cmd.invocations.values() if i.status_details == "DeliveryTimedOut")
    return done, errors, delivery_timeouts


def command_status(cmd: Command) -> tuple[str, str]:
    statuses = [i.status for i in cmd.invocations.values()]
    if not statuses:
        return "Success", "Success"
    if not all(s in TERMINAL for s in statuses):
        if all(s == "Pending" for s in statuses):
            return "Pending", "Pending"
        return "InProgress", "InProgress"
    if all(s == "Success" for s in statuses):
        return "Success", "Success"
    if any(s == "Failed" for s in statuses):
        return "Failed", "Failed"
    if any(s == "TimedOut" for s in statuses):
        return "TimedOut", "DeliveryTimedOut" if all(
            i.status_details == "DeliveryTimedOut" for i in cmd.invocations.values() if i.status == "TimedOut"
        ) else "TimedOut"
    return "Cancelled", "Cancelled"


def command_view(cmd: Command) -> dict[str, Any]:
    _refresh(cmd)
    done, errors, delivery_timeouts = _counts(cmd)
    status, details = command_status(cmd)
    view = {
        "CommandId": cmd.command_id,
        "DocumentName": cmd.document_name,
        "DocumentVersion": cmd.document_version,
        "Comment": cmd.comment,
        "ExpiresAfter": cmd.expires_after,
        "Parameters": cmd.given_parameters,
        "InstanceIds": cmd.instance_ids,
        "Targets": cmd.targets,
        "RequestedDateTime": cmd.requested,
        "Status": status,
        "StatusDetails": details,
        "OutputS3Region": cmd.output_region,
        "OutputS3BucketName": cmd.output_bucket,
        "OutputS3KeyPrefix": cmd.output_prefix,
        "MaxConcurrency": cmd.max_concurrency,
        "MaxErrors": cmd.max_errors,
        "TargetCount": len(cmd.invocations),
        "CompletedCount": done,
        "ErrorCount": errors,
        "DeliveryTimedOutCount": delivery_timeouts,
        "ServiceRole": cmd.service_role,
        "NotificationConfig": cmd.notification_config,
        "CloudWatchOutputConfig": cmd.cloudwatch_output,
        "TimeoutSeconds": cmd.timeout_seconds,
    }
    return view


def _resolve_targets(st: c.SsmState, targets: list[dict[str, Any]]) -> list[str]:
    """Instance ids matched by Run Command / State Manager targets (managed nodes and moto EC2)."""
    ids: list[str] = []
    ec2 = ec2_backends[st.account_id][st.region]
    for target in targets:
        key, values = target.get("Key"), target.get("Values") or []
        if key == "InstanceIds":
            ids += [v for v in values if v != "*"]
            if "*" in values:  # State Manager's "all managed nodes"
                ids += list(st.instances)
                ids += [i.id for r in ec2.all_reservations() for i in r.instances]
        elif isinstance(key, str) and key.startswith("tag:"):
            tag = key[4:]
            ids += [i.instance_id for i in st.instances.values() if i.tags.get(tag) in values]
            ids += [i.id for r in ec2.all_reservations(filters={key: values}) for i in r.instances]
        elif key == "tag-key":
            ids += [i.instance_id for i in st.instances.values() if any(v in i.tags for v in values)]
            ids += [i.id for r in ec2.all_reservations(filters={"tag-key": values}) for i in r.instances]
        else:
            raise c.SsmError("InvalidTarget", f"Target key {key} is not supported here.")
    return list(dict.fromkeys(ids))


def _check_instance(st: c.SsmState, instance_id: str) -> str:
    """Known target → its display name; unknown → InvalidInstanceId."""
    if instance_id in st.instances:
        inst = st.instances[instance_id]
        return inst.computer_name or inst.name or ""
    if instance_id.startswith("i-"):
        try:
            ec2_backends[st.account_id][st.region].get_instance(instance_id)
            return ""
        except Exception as exc:  # noqa: BLE001 - moto raises its own EC2 error type
            raise c.SsmError("InvalidInstanceId", f"Instance {instance_id} is not valid.") from exc
    raise c.SsmError("InvalidInstanceId", f"Instance {instance_id} is not valid.")


def new_command(
    st: c.SsmState, p: dict[str, Any], instance_ids: list[str], *, association_id: str | None = None
) -> Command:
    doc = get_document(st, p.get("DocumentName") or p.get("Name"), p.get("DocumentVersion"))
    if doc.document_type != "Command":
        raise c.SsmError(
            "InvalidDocument", f"Document {doc.name} is of type {doc.document_type}, not Command."
        )
    given = p.get("Parameters") or {}
    merged = resolve_parameters(doc, given)
    timeout = p.get("TimeoutSeconds", 3600)
    if not isinstance(timeout, int) or not 30 <= timeout <= 2592000:
        raise c.validation_error(timeout, "timeoutSeconds", "have value between 30 and 2592000")
    comment = p.get("Comment", "")
    if len(comment) > 100:
        raise c.validation_error(comment, "comment", "have length less than or equal to 100")
    c.check_rate_controls(p)
    names = {iid: _check_instance(st, iid) for iid in instance_ids}
    cmd = Command(
        command_id=str(uuid.uuid4()),
        document_name=doc.name,
        document_version=doc.document_version,
        document_content=doc.content,
        plugins=plugin_names(doc) or ["aws:runShellScript"],
        comment=comment,
        parameters=merged,
        given_parameters=given,
        instance_ids=list(p.get("InstanceIds") or []),
        targets=list(p.get("Targets") or []),
        requested=c.now(),
        timeout_seconds=timeout,
        max_concurrency=p.get("MaxConcurrency", "50"),
        max_errors=p.get("MaxErrors", "0"),
        output_bucket=p.get("OutputS3BucketName", ""),
        output_prefix=p.get("OutputS3KeyPrefix", ""),
        output_region=p.get("OutputS3Region", st.region if p.get("OutputS3BucketName") else ""),
        service_role=p.get("ServiceRoleArn", ""),
        notification_config=p.get("NotificationConfig")
        or {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""},
        cloudwatch_output=p.get("CloudWatchOutputConfig")
        or {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        region=st.region,
        association_id=association_id,
    )
    for iid, name in names.items():
        inv = Invocation(instance_id=iid, instance_name=name)
        if iid.startswith("i-"):
            # moto's EC2 behaviour: nothing runs there in the lab; report an empty success.
            inv.status = inv.status_details = "Success"
            inv.started = inv.ended = cmd.requested
            inv.response_code = 0
        cmd.invocations[iid] = inv
    with c.LOCK:
        st.commands[cmd.command_id] = cmd
    return cmd


def send_command(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    instance_ids, targets = p.get("InstanceIds") or [], p.get("Targets") or []
    if bool(instance_ids) == bool(targets):
        raise c.SsmError(
            "ValidationException", "Specify either InstanceIds or Targets, not both and not neither."
        )
    if len(instance_ids) > 50:
        raise c.validation_error(instance_ids, "instanceIds", "have length less than or equal to 50")
    if len(set(instance_ids)) != len(instance_ids):
        raise c.SsmError(
            "DuplicateInstanceId", "You cannot specify an instance ID in more than one association."
        )
    ids = list(instance_ids) if instance_ids else _resolve_targets(st, targets)
    cmd = new_command(st, p, ids)
    c.LOG.info("SendCommand %s %s to %d target(s)", cmd.command_id, cmd.document_name, len(ids))
    return {"Command": command_view(cmd)}


def _get_command(st: c.SsmState, command_id: Any) -> Command:
    cmd = st.commands.get(command_id) if isinstance(command_id, str) else None
    if cmd is None or cmd.association_id is not None:
        raise c.SsmError("InvalidCommandId", f"Command {command_id} was not found.")
    return cmd


def _filter_commands(cmds: list[Command], filters: list[dict[str, Any]]) -> list[Command]:
    for flt in filters:
        key, value = flt.get("key"), flt.get("value")
        if key == "Status":
            cmds = [x for x in cmds if command_status(x)[0] == value]
        elif key == "DocumentName":
            cmds = [x for x in cmds if x.document_name == value]
        elif key in ("InvokedAfter", "InvokedBefore"):
            when = c.to_datetime(value, "filters.member.value")
            cmds = [
                x for x in cmds if (x.requested >= when if key == "InvokedAfter" else x.requested <= when)
            ]
        elif key == "ExecutionStage":
            wanted = {"Executing": False, "Complete": True}.get(value)
            if wanted is None:
                raise c.SsmError(
                    "InvalidFilterValue", f"ExecutionStage must be Executing or Complete, not {value}."
                )
            cmds = [x for x in cmds if (command_status(x)[0] in TERMINAL) == wanted]
        else:
            raise c.SsmError("InvalidFilterKey", f"The filter key {key} is not valid.")
    return cmds


def list_commands(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 1, 50, 50)
    if p.get("CommandId"):
        cmds = [_get_command(st, p["CommandId"])]
    else:
        cmds = [x for x in st.commands.values() if x.association_id is None]
    if p.get("InstanceId"):
        cmds = [x for x in cmds if p["InstanceId"] in x.invocations]
    for x in cmds:
        _refresh(x)
    cmds = _filter_commands(sorted(cmds, key=lambda x: x.requested, reverse=True), p.get("Filters") or [])
    page, token = c.paginate(cmds, max_results, p.get("NextToken"))
    out: dict[str, Any] = {"Commands": [command_view(x) for x in page]}
    if token:
        out["NextToken"] = token
    return out


def _output_url(cmd: Command, inv: Invocation, plugin: str, stream: str) -> str:
    if not cmd.output_bucket:
        return ""
    prefix = f"{cmd.output_prefix.rstrip('/')}/" if cmd.output_prefix else ""
    plugin_dir = plugin.replace(":", "")
    return (
        f"https://s3.{cmd.output_region or cmd.region}.amazonaws.com/{cmd.output_bucket}/{prefix}"
        f"{cmd.command_id}/{inv.instance_id}/{plugin_dir}/{stream}"
    )


def _plugin_status(inv: Invocation) -> str:
    return (
        inv.status
        if inv.status in {"Pending", "InProgress", "Success", "TimedOut", "Cancelled", "Failed"}
        else "Pending"
    )


def _invocation_view(cmd: Command, inv: Invocation, details: bool) -> dict[str, Any]:
    plugin = cmd.plugins[0]
    view: dict[str, Any] = {
        "CommandId": cmd.command_id,
        "InstanceId": inv.instance_id,
        "InstanceName": inv.instance_name,
        "Comment": cmd.comment,
        "DocumentName": cmd.document_name,
        "DocumentVersion": cmd.document_version,
        "RequestedDateTime": cmd.requested,
        "Status": inv.status,
        "StatusDetails": inv.status_details,
        "TraceOutput": "",
        "StandardOutputUrl": _output_url(cmd, inv, plugin, "stdout"),
        "StandardErrorUrl": _output_url(cmd, inv, plugin, "stderr"),
        "ServiceRole": cmd.service_role,
        "NotificationConfig": cmd.notification_config,
        "CloudWatchOutputConfig": cmd.cloudwatch_output,
        "CommandPlugins": [],
    }
    if details:
        for name in cmd.plugins:
            plug: dict[str, Any] = {
                "Name": name,
                "Status": _plugin_status(inv),
                "StatusDetails": inv.status_details,
                "ResponseCode": inv.response_code,
                # AWS truncates plugin output to 2,500 characters here (full output goes to S3).
                "Output": (inv.stdout + (f"\n----------ERROR-------\n{inv.stderr}" if inv.stderr else ""))[
                    :2500
                ],
                "StandardOutputUrl": _output_url(cmd, inv, name, "stdout"),
                "StandardErrorUrl": _output_url(cmd, inv, name, "stderr"),
                "OutputS3Region": cmd.output_region or cmd.region,
                "OutputS3BucketName": cmd.output_bucket,
                "OutputS3KeyPrefix": cmd.output_prefix,
            }
            if inv.started:
                plug["ResponseStartDateTime"] = inv.started
            if inv.ended:
                plug["ResponseFinishDateTime"] = inv.ended
            view["CommandPlugins"].append(plug)
    return view


def list_command_invocations(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 1, 50, 50)
    if p.get("CommandId"):
        cmds = [_get_command(st, p["CommandId"])]
    else:
        cmds = sorted(
            (x for x in st.commands.values() if x.association_id is None),
            key=lambda x: x.requested,
            reverse=True,
        )
    rows = []
    for cmd in _filter_commands(cmds, [f for f in p.get("Filters") or [] if f.get("key") != "Status"]):
        _refresh(cmd)
        for inv in cmd.invocations.values():
            if p.get("InstanceId") and inv.instance_id != p["InstanceId"]:
                continue
            if any(f.get("key") == "Status" and inv.status != f.get("value") for f in p.get("Filters") or []):
                continue
            rows.append((cmd, inv))
    page, token = c.paginate(rows, max_results, p.get("NextToken"))
    out: dict[str, Any] = {
        "CommandInvocations": [_invocation_view(x, i, bool(p.get("Details"))) for x, i in page]
    }
    if token:
        out["NextToken"] = token
    return out


def _elapsed(inv: Invocation) -> str:
    if not inv.started:
        return ""
    seconds = ((inv.ended or c.now()) - inv.started).total_seconds()
    return f"PT{seconds:.3f}S"


def get_command_invocation(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    cmd = _get_command(st, p.get("CommandId"))
    instance_id = p.get("InstanceId")
    _refresh(cmd)
    inv = cmd.invocations.get(instance_id or "")
    if inv is None:
        raise c.SsmError(
            "InvocationDoesNotExist", "An invocation for this command and instance does not exist."
        )
    plugin = cmd.plugins[0]
    wanted = p.get("PluginName")
    if wanted is not None:
        match = next((x for x in cmd.plugins if wanted in (x, x.split(":")[-1])), None)
        if match is None:
            raise c.SsmError("InvalidPluginName", f"The plugin name {wanted} is not valid.")
        plugin = match
    return {
        "CommandId": cmd.command_id,
        "InstanceId": inv.instance_id,
        "Comment": cmd.comment,
        "DocumentName": cmd.document_name,
        "DocumentVersion": cmd.document_version,
        "PluginName": plugin,
        "ResponseCode": inv.response_code,
        "ExecutionStartDateTime": c.iso(inv.started) if inv.started else "",
        "ExecutionElapsedTime": _elapsed(inv),
        "ExecutionEndDateTime": c.iso(inv.ended) if inv.ended else "",
        "Status": inv.status,
        "StatusDetails": inv.status_details,
        "StandardOutputContent": inv.stdout[:24000],
        "StandardOutputUrl": _output_url(cmd, inv, plugin, "stdout"),
        "StandardErrorContent": inv.stderr[:8000],
        "StandardErrorUrl": _output_url(cmd, inv, plugin, "stderr"),
        "CloudWatchOutputConfig": cmd.cloudwatch_output,
    }


# --- ec2messages (the agent's side) ---------------------------------------------------------


def _message_id(cmd: Command, instance_id: str) -> str:
    return f"aws.ssm.{cmd.command_id}.{instance_id}"


def _parse_message_id(st: c.SsmState, message_id: Any) -> tuple[Command, Invocation]:
    match = re.fullmatch(r"aws\.ssm\.([0-9a-f-]{36})\.(mi-[0-9a-f]{17}|i-\w+)", str(message_id or ""))
    cmd = st.commands.get(match[1]) if match else None
    inv = cmd.invocations.get(match[2]) if cmd and match else None
    if cmd is None or inv is None:
        raise c.SsmError("InvalidMessageId", f"Message {message_id} is not valid.")
    return cmd, inv


def _in_flight(cmd: Command) -> int:
    return sum(1 for i in cmd.invocations.values() if i.status not in TERMINAL and i.delivered_at is not None)


def get_messages(st: c.SsmState, inst: c.ManagedInstance, p: dict[str, Any]) -> dict[str, Any]:
    from . import ssm_statemgr  # late: State Manager runs are dispatched as messages too

    ssm_statemgr.dispatch_for_instance(st, inst.instance_id)
    visibility = p.get("VisibilityTimeoutInSeconds", 10)
    current = c.now()
    messages = []
    with c.LOCK:
        for cmd in sorted(st.commands.values(), key=lambda x: x.requested):
            _refresh(cmd)
            inv = cmd.invocations.get(inst.instance_id)
            if inv is None or inv.status != "Pending":
                continue
            if inv.visible_after is not None and current < inv.visible_after:
                continue
            # MaxConcurrency is honoured for real: a node waits while the command is busy elsewhere.
            if inv.delivered_at is None and _in_flight(cmd) >= max(
                1, c.rate_limit(cmd.max_concurrency, len(cmd.invocations))
            ):
                continue
            inv.delivered_at = current
            inv.visible_after = current + timedelta(seconds=float(visibility))
            payload: dict[str, Any] = {
                "CommandId": cmd.command_id,
                "DocumentName": cmd.document_name,
                "DocumentContent": json.loads(cmd.document_content),
                "Parameters": cmd.parameters,
            }
            if cmd.output_bucket:
                payload["OutputS3BucketName"] = cmd.output_bucket
                payload["OutputS3KeyPrefix"] = cmd.output_prefix
            if cmd.association_id:
                payload["AssociationId"] = cmd.association_id
            messages.append(
                {
                    "MessageId": _message_id(cmd, inst.instance_id),
                    "CreatedDate": c.iso(cmd.requested),
                    "Destination": inst.instance_id,
                    "Topic": f"aws.ssm.sendCommand.{st.region}.{cmd.document_name}",
                    "Payload": json.dumps(payload),
                }
            )
    return {
        "Destination": inst.instance_id,
        "MessagesRequestId": p.get("MessagesRequestId", ""),
        "Messages": messages,
    }


def acknowledge_message(st: c.SsmState, inst: c.ManagedInstance, p: dict[str, Any]) -> dict[str, Any]:
    cmd, inv = _parse_message_id(st, p.get("MessageId"))
    if inv.instance_id != inst.instance_id:
        raise c.SsmError("AccessDeniedException", "The message is addressed to another instance.")
    with c.LOCK:
        if inv.status == "Pending":
            inv.status = inv.status_details = "InProgress"
            inv.started = c.now()
    return {}


def send_reply(st: c.SsmState, inst: c.ManagedInstance, p: dict[str, Any]) -> dict[str, Any]:
    cmd, inv = _parse_message_id(st, p.get("MessageId"))
    if inv.instance_id != inst.instance_id:
        raise c.SsmError("AccessDeniedException", "The message is addressed to another instance.")
    try:
        payload = json.loads(p.get("Payload") or "")
    except (TypeError, ValueError) as exc:
        raise c.SsmError("ValidationException", f"Reply payload is not JSON: {exc}") from exc
    status = payload.get("status")
    if status not in {"Success", "Failed", "InProgress", "TimedOut", "Cancelled"}:
        raise c.SsmError("ValidationException", f"Reply status {status!r} is not valid.")
    with c.LOCK:
        reply_id = p.get("ReplyId") or str(uuid.uuid4())
        if reply_id in inv.replies:
            return {}  # a retried reply (the agent retries on network errors)
        if inv.status in TERMINAL:
            c.LOG.warning(
                "late reply %s for %s ignored: already %s",
                reply_id,
                _message_id(cmd, inv.instance_id),
                inv.status,
            )
            return {}
        inv.replies.add(reply_id)
        inv.started = inv.started or c.now()
        inv.stdout = str(payload.get("standardOutput", inv.stdout))
        inv.stderr = str(payload.get("standardError", inv.stderr))
        if payload.get("responseCode") is not None:
            inv.response_code = int(payload["responseCode"])
        inv.status = status
        inv.status_details = "ExecutionTimedOut" if status == "TimedOut" else status
        if status in TERMINAL:
            inv.ended = c.now()
    if status in TERMINAL and cmd.association_id:
        from . import ssm_statemgr

        ssm_statemgr.record_execution(st, cmd, inv)
    return {}
