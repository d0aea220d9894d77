"""Hybrid activations and managed nodes for the lab emulator (what moto 5.2.5 lacks).

CreateActivation / DescribeActivations / DeleteActivation, the agent's anonymous
RegisterManagedInstance and RSA-signed RequestManagedInstanceRoleToken, the UpdateInstanceInformation
heartbeat, DescribeInstanceInformation, DeregisterManagedInstance, tags of activations and managed
nodes, and the activation-tier service setting. Handlers take the state and the request's JSON body
and return the response dict; ``ssm_ext`` wires them into moto.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import string
import uuid
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
from moto.sts.models import sts_backends

from . import ssm_common as c

ACTIVATION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MANAGED_INSTANCE_ID = re.compile(r"^mi-[0-9a-f]{17}$")
STANDARD_TIER_LIMIT = 1000

# --- activations ----------------------------------------------------------------------------


def _check_role(st: c.SsmState, role_name: Any) -> None:
    """IamRole must name an existing, non service-linked role that ssm.amazonaws.com may assume."""
    if not isinstance(role_name, str) or not role_name:
        raise c.validation_error(role_name, "iamRole", "not be null")
    if len(role_name) > 64:
        raise c.validation_error(role_name, "iamRole", "have length less than or equal to 64")
    arn = f"arn:aws:iam::{st.account_id}:role/{role_name}"
    role = None
    # An ARN is not a name: AWS looks it up as a name and fails the same way.
    if "/" not in role_name and ":" not in role_name:
        iam = iam_backends[st.account_id]["aws"]
        role = next((r for r in iam.get_roles() if r.name == role_name), None)
    if role is None:
        raise c.SsmError("ValidationException", f"Not existing role: {arn}")
    if (role.path or "").startswith("/aws-service-role/"):
        raise c.SsmError("ValidationException", f"Service-linked role is not allowed: {arn}")
    if "ssm.amazonaws.com" not in str(role.assume_role_policy_document):
        raise c.SsmError(
            "ValidationException", f"Nonexistent role or missing ssm service principal in trust policy: {arn}"
        )


def create_activation(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    description = p.get("Description", "")
    if len(description) > 256:
        raise c.validation_error(description, "description", "have length less than or equal to 256")
    default_name = p.get("DefaultInstanceName", "")
    if len(default_name) > 256:
        raise c.validation_error(default_name, "defaultInstanceName", "have length less than or equal to 256")
    limit = p.get("RegistrationLimit", 1)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise c.validation_error(limit, "registrationLimit", "be an integer")
    if limit < 1:
        raise c.validation_error(limit, "registrationLimit", "have value greater than or equal to 1")
    if limit > 1000:
        raise c.validation_error(limit, "registrationLimit", "have value less than or equal to 1000")
    created = c.now()
    if p.get("ExpirationDate") is None:
        expiration = created + timedelta(hours=24)
    else:
        expiration = c.to_datetime(p["ExpirationDate"], "expirationDate")
        if expiration <= created:
            raise c.SsmError("ValidationException", "ExpirationDate must be in the future.")
        if expiration > created + timedelta(days=30):
            raise c.SsmError(
                "ValidationException", "ExpirationDate cannot be more than 30 days in the future."
            )
    tags = c.tags_to_dict(p.get("Tags"))
    _check_role(st, p.get("IamRole"))
    alphabet = string.ascii_letters + string.digits
    act = c.Activation(
        activation_id=str(uuid.uuid4()),
        code="".join(secrets.choice(alphabet) for _i in range(20)),
        description=description,
        default_instance_name=default_name,
        iam_role=p["IamRole"],
        registration_limit=limit,
        expiration=expiration,
        created=created,
        tags=tags,
    )
    with c.LOCK:
        st.activations[act.activation_id] = act
    c.LOG.info("created activation %s (limit %d, role %s)", act.activation_id, limit, act.iam_role)
    return {"ActivationId": act.activation_id, "ActivationCode": act.code}


def _activation_view(act: c.Activation) -> dict[str, Any]:
    return {
        "ActivationId": act.activation_id,
        "Description": act.description,
        "DefaultInstanceName": act.default_instance_name,
        "IamRole": act.iam_role,
        "RegistrationLimit": act.registration_limit,
        "RegistrationsCount": act.registrations,
        "ExpirationDate": act.expiration,
        "Expired": act.expired(),
        "CreatedDate": act.created,
        "Tags": c.dict_to_tags(act.tags),
    }


def describe_activations(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 1, 50, 50)
    acts = sorted(st.activations.values(), key=lambda a: a.created)
    for flt in p.get("Filters") or []:
        key, values = flt.get("FilterKey"), flt.get("FilterValues") or []
        if key == "ActivationIds":
            acts = [a for a in acts if a.activation_id in values]
        elif key == "DefaultInstanceName":
            acts = [a for a in acts if a.default_instance_name in values]
        elif key == "IamRole":
            acts = [a for a in acts if a.iam_role in values]
        else:
            raise c.SsmError("InvalidFilter", f"The filter key {key} is not valid.")
    page, token = c.paginate(acts, max_results, p.get("NextToken"))
    out: dict[str, Any] = {"ActivationList": [_activation_view(a) for a in page]}
    if token:
        out["NextToken"] = token
    return out


def delete_activation(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    act_id = p.get("ActivationId")
    if not isinstance(act_id, str) or not ACTIVATION_ID.match(act_id):
        raise c.SsmError("InvalidActivationId", f"The activation ID {act_id} is not valid.")
    with c.LOCK:
        if act_id not in st.activations:
            raise c.SsmError("InvalidActivation", f"Activation ID {act_id} does not exist.")
        # Nodes registered with it stay registered, as in AWS.
        del st.activations[act_id]
    return {}


# --- registration (agent side, anonymous / RSA-signed) --------------------------------------


def register_managed_instance(region: str, p: dict[str, Any]) -> dict[str, Any]:
    act_id, code = p.get("ActivationId"), p.get("ActivationCode")
    if not act_id or not code:
        raise c.SsmError("InvalidActivation", "ActivationId and ActivationCode are required.")
    found = None
    for st in c.existing_states(region):
        if act_id in st.activations:
            found = st, st.activations[act_id]
            break
    # The same error for unknown id and wrong code: AWS does not tell which one was wrong.
    if found is None or not secrets.compare_digest(found[1].code, str(code)):
        raise c.SsmError("InvalidActivation", "Activation ID or code is not valid.")
    st, act = found
    if act.expired():
        raise c.SsmError("InvalidActivation", "Activation has expired.")
    if p.get("PublicKeyType", "Rsa") != "Rsa":
        raise c.SsmError("ValidationException", f"Unsupported PublicKeyType {p.get('PublicKeyType')}.")
    try:
        public_key = serialization.load_der_public_key(
            base64.b64decode(p.get("PublicKey") or "", validate=True)
        )
    except (ValueError, binascii.Error, TypeError) as exc:
        raise c.SsmError(
            "ValidationException", f"PublicKey is not a valid base64 DER RSA key: {exc}"
        ) from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise c.SsmError("ValidationException", "PublicKey must be an RSA public key.")
    with c.LOCK:
        if act.registrations >= act.registration_limit:
            raise c.SsmError(
                "InvalidActivation",
                f"Activation {act_id} has reached its registration limit of {act.registration_limit}.",
            )
        if tier(st) == "standard" and len(st.instances) >= STANDARD_TIER_LIMIT:
            raise c.SsmError(
                "InstanceLimitExceeded",
                f"You have reached the standard-tier limit of {STANDARD_TIER_LIMIT} managed instances in "
                f"{st.region}; change /ssm/managed-instance/activation-tier to advanced.",
            )
        act.registrations += 1
        instance_id = "mi-" + secrets.token_hex(9)[:17]
        st.instances[instance_id] = c.ManagedInstance(
            instance_id=instance_id,
            activation_id=act_id,
            iam_role=act.iam_role,
            name=act.default_instance_name,
            registration_date=c.now(),
            public_key=public_key,
            fingerprint=str(p.get("Fingerprint", "")),
        )
    c.LOG.info(
        "registered %s with activation %s (%d/%d)",
        instance_id,
        act_id,
        act.registrations,
        act.registration_limit,
    )
    return {"InstanceId": instance_id}


_SSM_RSA = re.compile(r"^SSM-RSA\s+InstanceId=(?P<id>[^,\s]+)\s*,\s*Signature=(?P<sig>\S+)\s*$")


def request_role_token(region: str, authorization: str, raw_body: bytes) -> dict[str, Any]:
    match = _SSM_RSA.match(authorization or "")
    if not match:
        raise c.SsmError("AccessDeniedException", "Missing or malformed SSM-RSA Authorization header.")
    found = c.find_instance(region, match["id"])
    if found is None:
        raise c.SsmError("InvalidInstanceId", f"Instance {match['id']} is not registered.")
    st, inst = found
    try:
        signature = base64.b64decode(match["sig"], validate=True)
        inst.public_key.verify(signature, raw_body, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise c.SsmError("AccessDeniedException", "Signature verification failed.") from exc
    role_arn = f"arn:aws:iam::{st.account_id}:role/{inst.iam_role}"
    # Credentials from moto's STS: moto then maps them to this account, and GetCallerIdentity
    # answers assumed-role/<role>/<mi-id> as for a real hybrid node.
    assumed = sts_backends[st.account_id]["aws"].assume_role(
        region_name=region,
        role_session_name=inst.instance_id,
        role_arn=role_arn,
        policy="",
        duration=3600,
        external_id="",
    )
    with c.LOCK:
        inst.access_keys.add(assumed.access_key_id)
    expires = c.now() + timedelta(hours=1)
    return {
        "AccessKeyId": assumed.access_key_id,
        "SecretAccessKey": assumed.secret_access_key,
        "SessionToken": assumed.session_token,
        "TokenExpirationDate": int(expires.timestamp()),
    }


def _caller_may_act_for(inst: c.ManagedInstance, access_key: str | None) -> bool:
    return access_key is not None and access_key in inst.access_keys


def update_instance_information(st: c.SsmState, p: dict[str, Any], access_key: str | None) -> dict[str, Any]:
    instance_id = p.get("InstanceId")
    inst = st.instances.get(instance_id or "")
    if inst is None:
        raise c.SsmError("InvalidInstanceId", f"Instance {instance_id} is not registered.")
    if not _caller_may_act_for(inst, access_key):
        raise c.SsmError("AccessDeniedException", f"The caller is not authorized to update {instance_id}.")
    with c.LOCK:
        inst.last_ping = c.now()
        inst.agent_name = p.get("AgentName", inst.agent_name)
        inst.agent_version = p.get("AgentVersion", inst.agent_version)
        inst.platform_type = p.get("PlatformType", inst.platform_type)
        inst.platform_name = p.get("PlatformName", inst.platform_name)
        inst.platform_version = p.get("PlatformVersion", inst.platform_version)
        inst.ip_address = p.get("IPAddress", inst.ip_address)
        inst.computer_name = p.get("ComputerName", inst.computer_name)
    return {}


# --- managed nodes --------------------------------------------------------------------------


def _latest_agent_version(st: c.SsmState) -> str | None:
    """Latest agent = ``latest/VERSION`` in the emulator's agent bucket, else HYBRID_LAB_SSM_AGENT_LATEST."""
    try:
        key = s3_backends[st.account_id]["aws"].get_object(f"amazon-ssm-{st.region}", "latest/VERSION")
        if key is not None:
            return key.value.decode().strip()
    except Exception as exc:  # noqa: BLE001 - a missing bucket/key just means "unknown"
        c.LOG.debug("no latest/VERSION in the agent bucket: %s", exc)
    return os.environ.get("HYBRID_LAB_SSM_AGENT_LATEST") or None


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def _instance_view(st: c.SsmState, inst: c.ManagedInstance, latest: str | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "InstanceId": inst.instance_id,
        "PingStatus": c.ping_status(inst),
        "ActivationId": inst.activation_id,
        "IamRole": inst.iam_role,
        "RegistrationDate": inst.registration_date,
        "ResourceType": "ManagedInstance",
        "SourceId": inst.instance_id,
        "SourceType": "AWS::SSM::ManagedInstance",
    }
    if inst.name:
        view["Name"] = inst.name
    if inst.last_ping is not None:
        view["LastPingDateTime"] = inst.last_ping
    optional = {
        "AgentVersion": inst.agent_version,
        "PlatformType": inst.platform_type,
        "PlatformName": inst.platform_name,
        "PlatformVersion": inst.platform_version,
        "IPAddress": inst.ip_address,
        "ComputerName": inst.computer_name,
    }
    view.update({k: v for k, v in optional.items() if v})
    if inst.agent_version:
        view["IsLatestVersion"] = latest is None or _version_tuple(inst.agent_version) >= _version_tuple(
            latest
        )
    from . import ssm_statemgr  # late: association status lives there

    view.update(ssm_statemgr.instance_association_view(st, inst.instance_id))
    return view


_PING = {"Online", "ConnectionLost", "Inactive"}
_RESOURCE_TYPES = {"ManagedInstance", "EC2Instance"}
_PLATFORMS = {"Windows", "Linux", "MacOS"}


def _matches(
    st: c.SsmState, view: dict[str, Any], inst: c.ManagedInstance, key: str, values: list[str]
) -> bool:
    if key == "InstanceIds":
        return view["InstanceId"] in values
    if key == "PingStatus":
        return view["PingStatus"] in values
    if key == "ResourceType":
        return view["ResourceType"] in values
    if key == "ActivationIds":
        return view["ActivationId"] in values
    if key == "IamRole":
        return view["IamRole"] in values
    if key == "AgentVersion":
        return view.get("AgentVersion") in values
    if key == "PlatformTypes":
        return view.get("PlatformType") in values
    if key == "AssociationStatus":
        return view.get("AssociationStatus") in values
    if key == "SourceIds":
        return view["SourceId"] in values
    if key == "SourceTypes":
        return view["SourceType"] in values
    if key == "tag-key":
        return any(v in inst.tags for v in values)
    if key.startswith("tag:"):
        return inst.tags.get(key[4:]) in values
    raise c.SsmError("InvalidFilterKey", f"The filter key {key} is not valid.")


_FILTER_KEYS = {
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
    "SourceIds",
    "SourceTypes",
    "tag-key",
}


def _normalise_filters(p: dict[str, Any]) -> list[tuple[str, list[str]]]:
    filters: list[tuple[str, list[str]]] = []
    legacy = p.get("InstanceInformationFilterList") or []
    for flt in legacy:
        key = flt.get("key")
        if key not in _FILTER_KEYS - {"SourceIds", "SourceTypes", "tag-key"}:
            raise c.SsmError("InvalidFilterKey", f"The filter key {key} is not valid.")
        filters.append((key, list(flt.get("valueSet") or [])))
    for flt in p.get("Filters") or []:
        key = flt.get("Key")
        if not isinstance(key, str) or (key not in _FILTER_KEYS and not key.startswith("tag:")):
            raise c.SsmError("InvalidFilterKey", f"The filter key {key} is not valid.")
        filters.append((key, list(flt.get("Values") or [])))
    for key, values in filters:
        if not 1 <= len(values) <= 100:
            raise c.SsmError("InvalidInstanceInformationFilterValue", f"Filter {key} needs 1 to 100 values.")
        allowed = {"PingStatus": _PING, "ResourceType": _RESOURCE_TYPES, "PlatformTypes": _PLATFORMS}.get(key)
        if allowed is not None and not set(values) <= allowed:
            bad = sorted(set(values) - allowed)
            raise c.SsmError(
                "InvalidInstanceInformationFilterValue", f"Invalid value(s) {bad} for filter {key}."
            )
    return filters


def describe_instance_information(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    max_results = c.check_max_results(p.get("MaxResults"), 5, 50, 50)
    filters = _normalise_filters(p)
    for key, values in filters:
        if key == "InstanceIds":
            unknown = [v for v in values if v not in st.instances]
            if unknown:
                raise c.SsmError(
                    "InvalidInstanceId",
                    f"Instances {unknown} not in a valid state for account {st.account_id}",
                )
    latest = _latest_agent_version(st)
    rows = []
    for inst in sorted(st.instances.values(), key=lambda i: i.registration_date):
        view = _instance_view(st, inst, latest)
        if all(_matches(st, view, inst, k, v) for k, v in filters):
            rows.append(view)
    page, token = c.paginate(rows, max_results, p.get("NextToken"))
    out: dict[str, Any] = {"InstanceInformationList": page}
    if token:
        out["NextToken"] = token
    return out


def deregister_managed_instance(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    instance_id = p.get("InstanceId")
    if not isinstance(instance_id, str) or not MANAGED_INSTANCE_ID.match(instance_id):
        raise c.validation_error(
            instance_id, "instanceId", "satisfy regular expression pattern: ^mi-[0-9a-f]{17}$"
        )
    with c.LOCK:
        if instance_id not in st.instances:
            raise c.SsmError("InvalidInstanceId", f"Instance {instance_id} is not registered.")
        del st.instances[instance_id]
        st.inventory.pop(instance_id, None)
    c.LOG.info("deregistered %s", instance_id)
    return {}


# --- tags on activations and managed nodes --------------------------------------------------


def tag_target(st: c.SsmState, resource_type: str, resource_id: str) -> dict[str, str]:
    """The live tag dict of an Activation / ManagedInstance / Association, or InvalidResourceId."""
    if resource_type == "Activation":
        obj = st.activations.get(resource_id)
    elif resource_type == "ManagedInstance":
        obj = st.instances.get(resource_id)
    else:
        obj = st.associations.get(resource_id)
    if obj is None:
        raise c.SsmError("InvalidResourceId", "The resource ID is not valid. Verify the ID and try again.")
    return obj.tags


def add_tags(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    tags = tag_target(st, p["ResourceType"], p.get("ResourceId", ""))
    new = c.tags_to_dict(p.get("Tags"))
    with c.LOCK:
        if len(set(tags) | set(new)) > 50:
            raise c.SsmError("TooManyTagsError", "The resource can have at most 50 tags.")
        tags.update(new)
    return {}


def remove_tags(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    tags = tag_target(st, p["ResourceType"], p.get("ResourceId", ""))
    with c.LOCK:
        for key in p.get("TagKeys") or []:
            tags.pop(key, None)
    return {}


def list_tags(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    return {"TagList": c.dict_to_tags(tag_target(st, p["ResourceType"], p.get("ResourceId", "")))}


# --- service settings -----------------------------------------------------------------------

# The settings the product touches; each: default value and allowed values (None = any string).
SETTINGS: dict[str, tuple[str, set[str] | None]] = {
    "/ssm/managed-instance/activation-tier": ("standard", {"standard", "advanced"}),
    "/ssm/parameter-store/default-parameter-tier": (
        "Standard",
        {"Standard", "Advanced", "Intelligent-Tiering"},
    ),
    "/ssm/parameter-store/high-throughput-enabled": ("false", {"true", "false"}),
    "/ssm/opsinsights/opscenter": ("Disabled", {"Enabled", "Disabled"}),
    "/ssm/managed-instance/default-ec2-instance-management-role": ("", None),
    "/ssm/automation/customer-script-log-destination": ("", {"", "CloudWatch"}),
    "/ssm/automation/customer-script-log-group-name": ("", None),
}


def _setting_path(st: c.SsmState, setting_id: Any) -> str:
    if not isinstance(setting_id, str) or not setting_id:
        raise c.validation_error(setting_id, "settingId", "have length greater than or equal to 1")
    prefix = f"arn:aws:ssm:{st.region}:{st.account_id}:servicesetting"
    path = setting_id[len(prefix) :] if setting_id.startswith(prefix) else setting_id
    if path not in SETTINGS:
        raise c.SsmError("ServiceSettingNotFound", f"The service setting {setting_id} was not found.")
    return path


def tier(st: c.SsmState) -> str:
    return st.settings.get("/ssm/managed-instance/activation-tier", {}).get("value", "standard")


def _setting_view(st: c.SsmState, path: str) -> dict[str, Any]:
    stored = st.settings.get(path)
    view: dict[str, Any] = {
        "SettingId": path,
        "ARN": f"arn:aws:ssm:{st.region}:{st.account_id}:servicesetting{path}",
        "SettingValue": stored["value"] if stored else SETTINGS[path][0],
        "Status": "Customized" if stored else "Default",
        "LastModifiedUser": stored["user"] if stored else "System",
    }
    if stored:
        view["LastModifiedDate"] = stored["date"]
    if not view["SettingValue"]:
        del view["SettingValue"]  # min length 1 in the model: an unset value is left out
    return view


def _check_downgrade(st: c.SsmState, path: str, value: str) -> None:
    if path == "/ssm/managed-instance/activation-tier" and value == "standard" and tier(st) == "advanced":
        count = len(st.instances)
        if count > STANDARD_TIER_LIMIT:
            raise c.SsmError(
                "ValidationException",
                f"Cannot change the activation tier to standard: {count} managed instances are registered, "
                f"the standard tier allows {STANDARD_TIER_LIMIT}. Deregister instances first.",
            )


def get_service_setting(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    return {"ServiceSetting": _setting_view(st, _setting_path(st, p.get("SettingId")))}


def update_service_setting(st: c.SsmState, p: dict[str, Any], user: str) -> dict[str, Any]:
    path = _setting_path(st, p.get("SettingId"))
    value = p.get("SettingValue")
    allowed = SETTINGS[path][1]
    if not isinstance(value, str) or not value:
        raise c.validation_error(value, "settingValue", "have length greater than or equal to 1")
    if allowed is not None and value not in allowed:
        raise c.SsmError(
            "ValidationException",
            f"Invalid value {value} for {path}; valid values: {', '.join(sorted(allowed))}.",
        )
    with c.LOCK:
        _check_downgrade(st, path, value)
        st.settings[path] = {"value": value, "date": c.now(), "user": user}
    return {}


def reset_service_setting(st: c.SsmState, p: dict[str, Any]) -> dict[str, Any]:
    path = _setting_path(st, p.get("SettingId"))
    with c.LOCK:
        _check_downgrade(st, path, SETTINGS[path][0])
        st.settings.pop(path, None)
    return {"ServiceSetting": _setting_view(st, path)}


def caller_arn(account_id: str, access_key: str | None) -> str:
    """Who LastModifiedUser names: the assumed role if the key is one, else the account root."""
    for sts in sts_backends.get(account_id, {}).values():
        role = sts.get_assumed_role_from_access_key(access_key) if access_key else None
        if role is not None:
            return role.arn
    return f"arn:aws:iam::{account_id}:root"
