"""State Manager, resource data sync and inventory for the lab emulator (what moto 5.2.5 lacks).

Associations are stored with their version history and really run: when a targeted hybrid node polls
ec2messages, each association it has not run yet (or whose ``rate(...)`` interval has passed) is handed
to it as a Run Command message; the node's reply sets the association's per-node status, Overview and
execution dates. Resource data syncs write the inventory to their S3 bucket in moto, in the
``<prefix>/<TypeName>/accountid=…/region=…/resourcetype=ManagedInstanceInventory/<id>.json`` layout AWS uses.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.s3.models import s3_backends

from . import ssm_commands as cmds
from . import ssm_common as c

_ASSOCIATION_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ASSOCIATION_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#\-]+$")
_SEVERITIES = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED"}
_TARGET_KEYS = {
    "InstanceIds",
    "tag-key",
    "resource-groups:Name",
    "resource-groups:ResourceTypeFilters",
    "ParameterValues",
}

# Fields UpdateAssociation resets when omitted: AWS documents that an update "removes all optional
# parameters from the request and overwrites the association with null values for those parameters".
_RESET_ON_UPDATE = (
    "Parameters",
    "DocumentVersion",
    "ScheduleExpression",
    "OutputLocation",
    "AssociationName",
    "MaxErrors",
    "MaxConcurrency",
    "ComplianceSeverity",
    "SyncCompliance",
    "ApplyOnlyAtCronInterval",
    "CalendarNames",
    "ScheduleOffset",
    "Duration",
    "AutomationTargetParameterName",
    "TargetMaps",
)


def validate_schedule(expr: Any) -> timedelta | None:
    """Check a State Manager schedule; return the interval of a rate expression, else None."""
    if expr is None:
        return None
    if not isinstance(expr, str) or not 1 <= len(expr) <= 256:
        raise c.SsmError("InvalidSchedule", f"Schedule expression {expr!r} is not valid.")
    rate = _RATE.match(expr)
    if rate:
        n, unit = int(rate[1]), rate[2]
        if n < 1 or (n == 1) != (not unit.endswith("s")):
            raise c.SsmError(
                "InvalidSchedule",
                f"Schedule expression {expr} is not valid: use 'rate(1 day)', 'rate(2 days)', ...",
            )
        delta = {"minute": timedelta(minutes=n), "hour": timedelta(hours=n), "day": timedelta(days=n)}[
            unit.rstrip("s")
        ]
        if delta < timedelta(minutes=30):
            raise c.SsmError(
                "InvalidSchedule", f"Schedule expression {expr} is not valid: the minimum rate is 30 minutes."
            )
        return delta
    cron = re.fullmatch(r"cron\((.+)\)", expr)
    if cron:
        fields = cron[1].split()
        if len(fields) not in (6, 7) or not all(_CRON_FIELD.match(f) for f in fields):
            raise c.SsmError("InvalidSchedule", f"Schedule expression {expr} is not a valid cron expression.")
        return None
    if re.fullmatch(r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)", expr):
        return None
    raise c.SsmError("InvalidSchedule", f"Schedule expression {expr} is not valid.")


def _validate_targets(targets: Any) -> list[dict[str, Any]]:
    if targets is None:
        return []
    if not isinstance(targets, list) or len(targets) > 5:
        raise c.validation_error(targets, "targets", "have length less than or equal to 5")
    for target in targets:
        key, values = target.get("Key"), target.get("Values")
        if not isinstance(key, str) or not (key in _TARGET_KEYS or key.startswith("tag:")):
            raise c.SsmError("InvalidTarget", f"Target key {key} is not valid.")
        if not isinstance(values, list) or not values or len(values) > 50:
            raise c.SsmError("InvalidTarget", f"Target {key} needs 1 to 50 values.")
    return targets


@dataclass
class Association:
    association_id: str
    spec: dict[str, Any]  # the request fields that make the association (Name, Targets, Parameters, ...)
    version: int
    date: datetime
    last_update: datetime
    tags: dict[str, str] = field(default_factory=dict)
    history: dict[int, dict[str, Any]] = field(default_factory=dict)  # version -> spec snapshot
    node_status: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance -> {status, date}
    dispatched: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # instance -> (version, when)
    run_once: set[str] = field(default_factory=set)  # instances StartAssociationsOnce asked to run it now
    last_execution: datetime | None = None
    last_success: datetime | None = None


def _check_spec(st: c.SsmState, spec: dict[str, Any]) -> None:
    doc = cmds.get_document(st, spec.get("Name"), spec.get("DocumentVersion"))
    cmds.resolve_parameters(doc, spec.get("Parameters"))
    validate_schedule(spec.get("ScheduleExpression"))
    name = spec.get("AssociationName")
    if name is not None and not (isinstance(name, str) and _ASSOCIATION_NAME.match(name)):
        raise c.validation_error(
            name, "associationName", "satisfy regular expression pattern: " + _ASSOCIATION_NAME.pattern
        )
    sev = spec.get("ComplianceSeverity")
    if sev is not None and sev not in _SEVERITIES:
        raise c.validation_error(sev, "complianceSeverity", f"satisfy enum value set: {sorted(_SEVERITIES)}")
    c.check_rate_controls(spec)
    s3 = (spec.get("OutputLocation") or {}).get("S3Location")
    if spec.get("OutputLocation") is not None and (not s3 or not s3.get("OutputS3BucketName")):
        raise c.SsmError("InvalidOutputLocation", "OutputLocation needs S3Location.OutputS3BucketName.")
    _validate_targets(spec.get("Targets"))


def _description(
    st: c.SsmState, assoc: Association, spec: dict[str, Any] | None = None, version: int | None = None
) -> dict[str, Any]:
    spec = spec if spec is not None else assoc.spec
    view: dict[str, Any] = {k: copy.deepcopy(v) for k, v in spec.items() if v is not None and k != "Tags"}
    view.setdefault("DocumentVersion", "$DEFAULT")
    view.setdefault("Parameters", {})
    view.setdefault("Targets", [])
    view.setdefault("ApplyOnlyAtCronInterval", False)
    view.update(
        {
            "AssociationId": assoc.association_id,
            "AssociationVersion": str(version or assoc.version),
            "Date": assoc.date,
            "LastUpdateAssociationDate": assoc.last_update,
            "Overview": _overview(st, assoc),
        }
    )
    if assoc.last_execution:
        view["LastExecutionDate"] = assoc.last_execution
    if assoc.last_success:
        view["LastSuccessfulExecutionDate"] = assoc.last_success
    if spec.get("InstanceId"):
        node = assoc.node_status.get(spec["InstanceId"], {"status": "Pending", "date": assoc.date})
        view["Status"] = {
            "Date": node["date"],
            "Name": node["status"],
            "Message": f"Association {node['status']}",
        }
    return view


def targeted_instances(st: c.SsmState, assoc: Association) -> list[str]:
    if assoc.spec.get("InstanceId"):
        return [assoc.spec["InstanceId"]]
    ids: list[str] = []
    for target in assoc.spec.get("Targets") or []:
        try:
            ids += cmds._resolve_targets(st, [target])
        except c.SsmError:
            continue  # resource groups etc. match nothing in the lab
    return list(dict.fromkeys(ids))


def _overview(st: c.SsmState, assoc: Association) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for iid in targeted_instances(st, assoc):
        status = assoc.node_status.get(iid, {}).get("status", "Pending")
        counts[status] = counts.get(status, 0) + 1
    if counts.get("Failed"):
        status = "Failed"
    elif counts.get("Pending") or not counts:
        status = "Pending"
    else:
        status = "Success"
    return {"Status": status, "DetailedStatus": status, "AssociationStatusAggregatedCount": counts}


def create_association(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in p.items() if k not in ("Tags",)}
    if bool(spec.get("InstanceId")) == bool(spec.get("Targets")):
        raise c.SsmError(
            "InvalidTarget" if spec.get("Targets") else "InvalidInstanceId",
            "Specify either InstanceId or Targets.",
        )
    if spec.get("InstanceId") and spec["InstanceId"] not in st.instances:
        cmds._check_instance(st, spec["InstanceId"])
    _check_spec(st, spec)
    tags = c.tags_to_dict(p.get("Tags"))
    with c.LOCK:
        for other in st.associations.values():
            if spec.get("AssociationName") and other.spec.get("AssociationName") == spec["AssociationName"]:
                raise c.SsmError(
                    "AssociationAlreadyExists",
                    f"An association named {spec['AssociationName']} already exists.",
                )
            if (
                spec.get("InstanceId")
                and other.spec.get("InstanceId") == spec["InstanceId"]
                and other.spec.get("Name") == spec["Name"]
            ):
                raise c.SsmError("AssociationAlreadyExists", "The specified association already exists.")
        current = c.now()
        assoc = Association(
            association_id=str(uuid.uuid4()),
            spec=spec,
            version=1,
            date=current,
            last_update=current,
            tags=tags,
        )
        assoc.history[1] = copy.deepcopy(spec)
        st.associations[assoc.association_id] = assoc
    c.LOG.info("created association %s (%s)", assoc.association_id, spec.get("Name"))
    return {"AssociationDescription": _description(st, assoc)}


def _find(st: c.SsmState, p: dict[str, Any]) -> Association:
    assoc_id = p.get("AssociationId")
    if assoc_id:
        if not _ASSOCIATION_ID.match(assoc_id):
            raise c.validation_error(
                assoc_id, "associationId", "satisfy regular expression pattern: " + _ASSOCIATION_ID.pattern
            )
        assoc = st.associations.get(assoc_id)
    elif p.get("Name") and p.get("InstanceId"):
        assoc = next(
            (
                a
                for a in st.associations.values()
                if a.spec.get("Name") == p["Name"] and a.spec.get("InstanceId") == p["InstanceId"]
            ),
            None,
        )
    else:
        raise c.SsmError("AssociationDoesNotExist", "Specify AssociationId, or Name and InstanceId.")
    if assoc is None:
        raise c.SsmError("AssociationDoesNotExist", "The specified association does not exist.")
    return assoc


def describe_association(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    assoc = _find(st, p)
    wanted = p.get("AssociationVersion")
    if wanted in (None, "$LATEST"):
        return {"AssociationDescription": _description(st, assoc)}
    if not str(wanted).isdigit() or int(wanted) not in assoc.history:
        raise c.SsmError("InvalidAssociationVersion", f"Association version {wanted} does not exist.")
    return {"AssociationDescription": _description(st, assoc, assoc.history[int(wanted)], int(wanted))}


def update_association(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    if not p.get("AssociationId"):
        raise c.validation_error(None, "associationId", "not be null")
    assoc = _find(st, p)
    wanted = p.get("AssociationVersion")
    if wanted not in (None, "$LATEST") and str(wanted) != str(assoc.version):
        raise c.SsmError(
            "InvalidAssociationVersion",
            f"Association version {wanted} is not the latest version ({assoc.version}).",
        )
    spec = copy.deepcopy(assoc.spec)
    for key in _RESET_ON_UPDATE:
        spec.pop(key, None)
    spec.update({k: v for k, v in p.items() if k not in ("AssociationId", "AssociationVersion")})
    if "Targets" in p:
        _validate_targets(p["Targets"])
    _check_spec(st, spec)
    with c.LOCK:
        name = spec.get("AssociationName")
        if name and any(
            o is not assoc and o.spec.get("AssociationName") == name for o in st.associations.values()
        ):
            raise c.SsmError("AssociationAlreadyExists", f"An association named {name} already exists.")
        assoc.spec = spec
        assoc.version += 1
        assoc.last_update = c.now()
        assoc.history[assoc.version] = copy.deepcopy(spec)
    return {"AssociationDescription": _description(st, assoc)}


def delete_association(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    assoc = _find(st, p)
    with c.LOCK:
        st.associations.pop(assoc.association_id, None)
    return {}


def start_associations_once(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    """Run each association on its targets at their next poll, once, whatever its schedule says."""
    ids = p.get("AssociationIds")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 10:
        raise c.validation_error(ids, "associationIds", "have length between 1 and 10")
    found = [_find(st, {"AssociationId": association_id}) for association_id in ids]
    with c.LOCK:
        for assoc in found:
            for instance_id in targeted_instances(st, assoc):
                assoc.dispatched.pop(instance_id, None)
                # The node's last result stays what it was (Failed, say) until its agent picks the run up.
                assoc.run_once.add(instance_id)
    c.LOG.info("associations %s started once", ", ".join(a.association_id for a in found))
    return {}


def _list_view(st: c.SsmState, assoc: Association) -> dict[str, Any]:
    full = _description(st, assoc)
    keys = (
        "Name",
        "InstanceId",
        "AssociationId",
        "AssociationVersion",
        "DocumentVersion",
        "Targets",
        "LastExecutionDate",
        "Overview",
        "ScheduleExpression",
        "AssociationName",
        "ScheduleOffset",
        "Duration",
        "TargetMaps",
    )
    return {k: full[k] for k in keys if k in full}


def list_associations(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 1, 50, 50)
    rows = sorted(st.associations.values(), key=lambda a: a.date)
    for flt in p.get("AssociationFilterList") or []:
        key, value = flt.get("key"), flt.get("value")
        if key == "InstanceId":
            rows = [a for a in rows if value in targeted_instances(st, a)]
        elif key == "Name":
            rows = [a for a in rows if a.spec.get("Name") == value]
        elif key == "AssociationId":
            rows = [a for a in rows if a.association_id == value]
        elif key == "AssociationName":
            rows = [a for a in rows if a.spec.get("AssociationName") == value]
        elif key == "AssociationStatusName":
            rows = [a for a in rows if _overview(st, a)["Status"] == value]
        elif key in ("LastExecutedBefore", "LastExecutedAfter"):
            when = c.to_datetime(value, "associationFilterList.member.value")
            rows = [
                a
                for a in rows
                if a.last_execution
                and (a.last_execution < when if key == "LastExecutedBefore" else a.last_execution > when)
            ]
        elif key in ("ResourceGroupName", "CloudConnectorId"):
            rows = []  # the lab has no resource groups / cloud connectors
        else:
            raise c.validation_error(key, "associationFilterList.member.key", "satisfy enum value set")
    page, token = c.paginate(rows, max_results, p.get("NextToken"))
    out: dict[str, Any] = {"Associations": [_list_view(st, a) for a in page]}
    if token:
        out["NextToken"] = token
    return out


# --- running associations on nodes ----------------------------------------------------------


def dispatch_for_instance(st: c.SsmState, instance_id: str) -> None:
    """Queue a run of every association due on ``instance_id`` (called when the node polls)."""
    current = c.now()
    for assoc in list(st.associations.values()):
        if instance_id not in targeted_instances(st, assoc):
            continue
        rate = validate_schedule(assoc.spec.get("ScheduleExpression"))
        last = assoc.dispatched.get(instance_id)
        if last is None:
            # A new association runs at once unless it should wait for its schedule.
            due = not assoc.spec.get("ApplyOnlyAtCronInterval") or (
                rate is not None and current - assoc.date >= rate
            )
        else:
            version, when = last
            due = version != assoc.version or (rate is not None and current - when >= rate)
        due = due or instance_id in assoc.run_once
        if not due:
            continue
        with c.LOCK:
            assoc.run_once.discard(instance_id)
            # The agent has the run: the node shows Pending for it until its result comes back.
            assoc.node_status.pop(instance_id, None)
        spec = {
            "Name": assoc.spec["Name"],
            "DocumentVersion": assoc.spec.get("DocumentVersion"),
            "Parameters": assoc.spec.get("Parameters") or {},
        }
        s3 = (assoc.spec.get("OutputLocation") or {}).get("S3Location") or {}
        if s3:
            spec.update(
                OutputS3BucketName=s3.get("OutputS3BucketName"),
                OutputS3KeyPrefix=s3.get("OutputS3KeyPrefix", ""),
                OutputS3Region=s3.get("OutputS3Region", st.region),
            )
        try:
            cmds.new_command(st, spec, [instance_id], association_id=assoc.association_id)
        except c.SsmError as exc:  # e.g. the document was deleted since: the run fails, visibly
            c.LOG.warning(
                "association %s cannot run on %s: %s", assoc.association_id, instance_id, exc.message
            )
            assoc.node_status[instance_id] = {"status": "Failed", "date": current}
        with c.LOCK:
            assoc.dispatched[instance_id] = (assoc.version, current)


def record_execution(st: c.SsmState, command: Any, inv: Any) -> None:
    assoc = st.associations.get(command.association_id)
    if assoc is None:
        return
    current = c.now()
    status = "Success" if inv.status == "Success" else "Failed"
    with c.LOCK:
        assoc.node_status[inv.instance_id] = {"status": status, "date": current}
        assoc.last_execution = current
        if status == "Success":
            assoc.last_success = current


def instance_association_view(st: c.SsmState, instance_id: str) -> dict[str, Any]:
    mine = [a for a in st.associations.values() if instance_id in targeted_instances(st, a)]
    if not mine:
        return {}
    counts: dict[str, int] = {}
    for assoc in mine:
        status = assoc.node_status.get(instance_id, {}).get("status", "Pending")
        counts[status] = counts.get(status, 0) + 1
    status = "Failed" if counts.get("Failed") else "Pending" if counts.get("Pending") else "Success"
    view: dict[str, Any] = {
        "AssociationStatus": status,
        "AssociationOverview": {"DetailedStatus": status, "InstanceAssociationStatusAggregatedCount": counts},
    }
    dates = [a.node_status[instance_id]["date"] for a in mine if instance_id in a.node_status]
    if dates:
        view["LastAssociationExecutionDate"] = max(dates)
    ok = [
        a.node_status[instance_id]["date"]
        for a in mine
        if a.node_status.get(instance_id, {}).get("status") == "Success"
    ]
    if ok:
        view["LastSuccessfulAssociationExecutionDate"] = max(ok)
    return view


# --- resource data sync ---------------------------------------------------------------------


def create_resource_data_sync(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("SyncName")
    if not isinstance(name, str) or not 1 <= len(name) <= 64:
        raise c.validation_error(name, "syncName", "have length between 1 and 64")
    sync_type = p.get("SyncType") or "SyncToDestination"
    if sync_type not in ("SyncToDestination", "SyncFromSource"):
        raise c.SsmError(
            "ResourceDataSyncInvalidConfigurationException", f"SyncType {sync_type} is not valid."
        )
    dest = p.get("S3Destination")
    if sync_type == "SyncToDestination":
        if not dest:
            raise c.SsmError(
                "ResourceDataSyncInvalidConfigurationException",
                "S3Destination is required for SyncToDestination.",
            )
        for required in ("BucketName", "SyncFormat", "Region"):
            if not dest.get(required):
                raise c.SsmError(
                    "ResourceDataSyncInvalidConfigurationException", f"S3Destination.{required} is required."
                )
        if dest["SyncFormat"] != "JsonSerDe":
            raise c.SsmError(
                "ResourceDataSyncInvalidConfigurationException",
                f"SyncFormat {dest['SyncFormat']} is not valid; use JsonSerDe.",
            )
    elif not p.get("SyncSource"):
        raise c.SsmError(
            "ResourceDataSyncInvalidConfigurationException", "SyncSource is required for SyncFromSource."
        )
    with c.LOCK:
        if name in st.data_syncs:
            raise c.SsmError("ResourceDataSyncAlreadyExistsException", f"Sync {name} already exists.")
        if sum(1 for s in st.data_syncs.values() if s["SyncType"] == sync_type) >= 5:
            raise c.SsmError(
                "ResourceDataSyncCountExceededException",
                f"You can have at most 5 resource data syncs of type {sync_type}.",
            )
        current = c.now()
        sync: dict[str, Any] = {
            "SyncName": name,
            "SyncType": sync_type,
            "SyncCreatedTime": current,
            "SyncLastModifiedTime": current,
        }
        if dest:
            sync["S3Destination"] = dest
        if p.get("SyncSource"):
            sync["SyncSource"] = dict(p["SyncSource"], State="Active")
        st.data_syncs[name] = sync
    if sync_type == "SyncToDestination":
        run_data_syncs(st)
    return {}


def list_resource_data_sync(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 1, 50, 50)
    sync_type = p.get("SyncType") or "SyncToDestination"
    rows = [s for s in st.data_syncs.values() if s["SyncType"] == sync_type]
    page, token = c.paginate(rows, max_results, p.get("NextToken"))
    out: dict[str, Any] = {"ResourceDataSyncItems": page}
    if token:
        out["NextToken"] = token
    return out


def delete_resource_data_sync(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("SyncName")
    with c.LOCK:
        sync = st.data_syncs.get(name)
        if sync is None or (p.get("SyncType") and sync["SyncType"] != p["SyncType"]):
            raise c.SsmError("ResourceDataSyncNotFoundException", f"Sync {name} not found.")
        del st.data_syncs[name]
    return {}


def run_data_syncs(st: c.SsmState) -> None:
    """Write every node's inventory to each SyncToDestination bucket (moto S3); record the outcome."""
    for sync in list(st.data_syncs.values()):
        if sync["SyncType"] != "SyncToDestination":
            continue
        dest = sync["S3Destination"]
        current = c.now()
        sync["LastSyncTime"] = current
        try:
            s3 = s3_backends[st.account_id]["aws"]
            s3.get_bucket(dest["BucketName"])
            prefix = f"{dest['Prefix'].strip('/')}/" if dest.get("Prefix") else ""
            for iid in list(st.instances):
                for type_name, item in _inventory_of(st, iid).items():
                    key = (
                        f"{prefix}{type_name}/accountid={st.account_id}/region={st.region}/"
                        f"resourcetype=ManagedInstanceInventory/{iid}.json"
                    )
                    lines = [
                        json.dumps(
                            dict(
                                row,
                                resourceId=iid,
                                captureTime=item["CaptureTime"],
                                schemaVersion=item["SchemaVersion"],
                            )
                        )
                        for row in item["Content"]
                    ]
                    s3.put_object(dest["BucketName"], key, "\n".join(lines).encode())
        except Exception as exc:  # noqa: BLE001 - surfaces as the sync's LastStatus, like AWS does
            sync.update(
                LastStatus="Failed", LastSyncStatusMessage=f"Sync to {dest['BucketName']} failed: {exc}"
            )
            continue
        sync.update(LastStatus="Successful", LastSuccessfulSyncTime=current, LastSyncStatusMessage="")


# --- inventory ------------------------------------------------------------------------------

_AWS_TYPES = {
    "AWS:Application",
    "AWS:AWSComponent",
    "AWS:File",
    "AWS:Network",
    "AWS:WindowsUpdate",
    "AWS:InstanceInformation",
    "AWS:Service",
    "AWS:WindowsRole",
    "AWS:InstanceDetailedInformation",
    "AWS:Tag",
    "AWS:BillingInfo",
    "AWS:ComplianceItem",
    "AWS:PatchSummary",
    "AWS:ResourceGroup",
    "AWS:WindowsRegistry",
}
_SCHEMA_VERSION = re.compile(r"^([0-9]{1,6})(\.[0-9]{1,6})$")
_CAPTURE_TIME = re.compile(
    r"^(20)[0-9][0-9]-(0[1-9]|1[012])-([12][0-9]|3[01]|0[1-9])T(2[0-3]|[0-1][0-9])"
    r"(:[0-5][0-9])(:[0-5][0-9])Z$"
)


def _check_type_name(type_name: Any) -> None:
    if (
        not isinstance(type_name, str)
        or not re.match(r"^(AWS|Custom):.+$", type_name)
        or (type_name.startswith("AWS:") and type_name not in _AWS_TYPES)
    ):
        raise c.SsmError("InvalidTypeNameException", f"The type name {type_name} is not valid.")


def _instance_information_item(inst: c.ManagedInstance) -> dict[str, Any]:
    row = {
        "AgentType": inst.agent_name or "amazon-ssm-agent",
        "AgentVersion": inst.agent_version or "",
        "ComputerName": inst.computer_name or "",
        "InstanceId": inst.instance_id,
        "InstanceStatus": "Active",
        "IpAddress": inst.ip_address or "",
        "PlatformName": inst.platform_name or "",
        "PlatformType": inst.platform_type or "",
        "PlatformVersion": inst.platform_version or "",
        "ResourceType": "ManagedInstance",
    }
    when = inst.last_ping or inst.registration_date
    return {
        "TypeName": "AWS:InstanceInformation",
        "SchemaVersion": "1.0",
        "CaptureTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Content": [row],
    }


def _inventory_of(st: c.SsmState, instance_id: str) -> dict[str, dict[str, Any]]:
    items = dict(st.inventory.get(instance_id, {}))
    if instance_id in st.instances:
        items["AWS:InstanceInformation"] = _instance_information_item(st.instances[instance_id])
    return items


def put_inventory(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    instance_id = p.get("InstanceId")
    if instance_id not in st.instances:
        cmds._check_instance(st, str(instance_id))
    items = p.get("Items")
    if not isinstance(items, list) or not 1 <= len(items) <= 30:
        raise c.validation_error(items, "items", "have length between 1 and 30")
    changed = False
    with c.LOCK:
        store = st.inventory.setdefault(instance_id, {})
        for item in items:
            type_name = item.get("TypeName")
            _check_type_name(type_name)
            if type_name == "AWS:InstanceInformation":
                continue  # AWS derives this one from the agent's heartbeat
            if not _SCHEMA_VERSION.match(str(item.get("SchemaVersion", ""))):
                raise c.SsmError(
                    "UnsupportedInventorySchemaVersionException",
                    f"Schema version {item.get('SchemaVersion')} is not valid.",
                )
            if not _CAPTURE_TIME.match(str(item.get("CaptureTime", ""))):
                raise c.validation_error(
                    item.get("CaptureTime"),
                    "items.member.captureTime",
                    "satisfy regular expression pattern: " + _CAPTURE_TIME.pattern,
                )
            content = item.get("Content") or []
            if not isinstance(content, list) or len(content) > 10000:
                raise c.SsmError("InvalidItemContentException", f"Content of {type_name} is not valid.")
            old = store.get(type_name)
            # An unchanged ContentHash means "nothing new": AWS keeps the stored item.
            if old and item.get("ContentHash") and old.get("ContentHash") == item.get("ContentHash"):
                continue
            store[type_name] = {
                k: item[k]
                for k in ("TypeName", "SchemaVersion", "CaptureTime", "ContentHash", "Content", "Context")
                if k in item
            }
            store[type_name].setdefault("Content", content)
            changed = True
    if changed:
        run_data_syncs(st)
    return {"Message": ""}


def _row_matches(rows: list[dict[str, str]], attr: str, flt: dict[str, Any]) -> bool:
    op, values = flt.get("Type") or "Equal", flt.get("Values") or []
    for row in rows:
        have = row.get(attr)
        if op == "Exists":
            if have is not None:
                return True
            continue
        if have is None:
            continue
        if op == "Equal" and have in values:
            return True
        if op == "NotEqual" and have not in values:
            return True
        if op == "BeginWith" and any(have.startswith(v) for v in values):
            return True
        if op in ("LessThan", "GreaterThan"):
            try:
                if any(
                    (float(have) < float(v)) if op == "LessThan" else (float(have) > float(v)) for v in values
                ):
                    return True
            except ValueError:
                continue
    return False


def get_inventory(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 1, 50, 50)
    if p.get("Aggregators"):
        raise c.SsmError("InvalidAggregatorException", "Aggregators are not supported by the lab emulator.")
    wanted_types = [r.get("TypeName") for r in p.get("ResultAttributes") or []]
    for t in wanted_types:
        _check_type_name(t)
    filters = p.get("Filters") or []
    ids = sorted(set(st.instances) | set(st.inventory))
    entities = []
    for iid in ids:
        data = _inventory_of(st, iid)
        ok = True
        for flt in filters:
            key = flt.get("Key", "")
            type_name, _dot, attr = key.rpartition(".")
            if not type_name:
                raise c.SsmError("InvalidFilter", f"Filter key {key} must be TypeName.Attribute.")
            _check_type_name(type_name)
            if not _row_matches(data.get(type_name, {}).get("Content", []), attr, flt):
                ok = False
                break
        if not ok:
            continue
        if wanted_types:
            data = {t: v for t, v in data.items() if t in wanted_types}
            if not data:
                continue
        entities.append(
            {
                "Id": iid,
                "Data": {t: {k: v for k, v in item.items() if k != "Context"} for t, item in data.items()},
            }
        )
    page, token = c.paginate(entities, max_results, p.get("NextToken"))
    out: dict[str, Any] = {"Entities": page}
    if token:
        out["NextToken"] = token
    return out


def list_inventory_entries(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 1, 50, 50)
    instance_id = p.get("InstanceId")
    if instance_id not in st.instances and instance_id not in st.inventory:
        cmds._check_instance(st, str(instance_id))
    type_name = p.get("TypeName")
    _check_type_name(type_name)
    item = _inventory_of(st, instance_id).get(type_name)
    rows = list(item["Content"]) if item else []
    for flt in p.get("Filters") or []:
        attr = flt.get("Key", "").rpartition(".")[2]
        rows = [r for r in rows if _row_matches([r], attr, flt)]
    page, token = c.paginate(rows, max_results, p.get("NextToken"))
    out: dict[str, Any] = {"TypeName": type_name, "InstanceId": instance_id, "Entries": page}
    if item:
        out.update(SchemaVersion=item["SchemaVersion"], CaptureTime=item["CaptureTime"])
    if token:
        out["NextToken"] = token
    return out
