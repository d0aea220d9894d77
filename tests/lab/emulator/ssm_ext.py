"""The lab emulator's SSM extensions: patches moto 5.2.5 in-process with what it lacks.

``install()`` adds actions to moto's SSM response class (hybrid activations, managed nodes,
associations, resource data sync, service settings, Run Command that really executes, inventory) and
seeds the AWS-owned documents the product uses. ``wsgi_intercept(environ)`` answers the requests moto
cannot route by itself because they are not SigV4-signed for a service it knows: the agent's anonymous
RegisterManagedInstance, its RSA-signed RequestManagedInstanceRoleToken, and every ec2messages call
(tests/lab/PROTOCOL.md). The logic lives in ``ssm_fleet``, ``ssm_commands`` and ``ssm_statemgr``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from botocore.model import OperationNotFoundError
from moto.core.responses import ActionResult
from moto.core.utils import get_service_model
from moto.ssm.models import SimpleSystemManagerBackend, ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse

from . import ssm_commands, ssm_fleet, ssm_statemgr
from . import ssm_common as c

__all__ = ["install", "wsgi_intercept", "SsmError"]

SsmError = c.SsmError
_MARK = "_holab_ssm_installed"
_OWN_TAG_TYPES = {"Activation", "ManagedInstance", "Association"}

Handler = Callable[[c.SsmState, dict[str, Any], SimpleSystemManagerResponse], dict[str, Any]]

# Action name -> handler(state, body, response). Names are the API's action names.
_ACTIONS: dict[str, Handler] = {
    "CreateActivation": lambda st, p, r: ssm_fleet.create_activation(st, p),
    "DescribeActivations": lambda st, p, r: ssm_fleet.describe_activations(st, p),
    "DeleteActivation": lambda st, p, r: ssm_fleet.delete_activation(st, p),
    "UpdateInstanceInformation": lambda st, p, r: ssm_fleet.update_instance_information(
        st, p, r.get_access_key()
    ),
    "DescribeInstanceInformation": lambda st, p, r: ssm_fleet.describe_instance_information(st, p),
    "DeregisterManagedInstance": lambda st, p, r: ssm_fleet.deregister_managed_instance(st, p),
    "GetServiceSetting": lambda st, p, r: ssm_fleet.get_service_setting(st, p),
    "UpdateServiceSetting": lambda st, p, r: ssm_fleet.update_service_setting(
        st, p, ssm_fleet.caller_arn(st.account_id, r.get_access_key())
    ),
    "ResetServiceSetting": lambda st, p, r: ssm_fleet.reset_service_setting(st, p),
    "CreateAssociation": lambda st, p, r: ssm_statemgr.create_association(st, p),
    "DescribeAssociation": lambda st, p, r: ssm_statemgr.describe_association(st, p),
    "UpdateAssociation": lambda st, p, r: ssm_statemgr.update_association(st, p),
    "DeleteAssociation": lambda st, p, r: ssm_statemgr.delete_association(st, p),
    "ListAssociations": lambda st, p, r: ssm_statemgr.list_associations(st, p),
    "StartAssociationsOnce": lambda st, p, r: ssm_statemgr.start_associations_once(st, p),
    "CreateResourceDataSync": lambda st, p, r: ssm_statemgr.create_resource_data_sync(st, p),
    "ListResourceDataSync": lambda st, p, r: ssm_statemgr.list_resource_data_sync(st, p),
    "DeleteResourceDataSync": lambda st, p, r: ssm_statemgr.delete_resource_data_sync(st, p),
    "PutInventory": lambda st, p, r: ssm_statemgr.put_inventory(st, p),
    "GetInventory": lambda st, p, r: ssm_statemgr.get_inventory(st, p),
    "ListInventoryEntries": lambda st, p, r: ssm_statemgr.list_inventory_entries(st, p),
    "SendCommand": lambda st, p, r: ssm_commands.send_command(st, p),
    "ListCommands": lambda st, p, r: ssm_commands.list_commands(st, p),
    "ListCommandInvocations": lambda st, p, r: ssm_commands.list_command_invocations(st, p),
    "GetCommandInvocation": lambda st, p, r: ssm_commands.get_command_invocation(st, p),
}

_TAG_ACTIONS = {
    "AddTagsToResource": ssm_fleet.add_tags,
    "RemoveTagsFromResource": ssm_fleet.remove_tags,
    "ListTagsForResource": ssm_fleet.list_tags,
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _in_model(action: str) -> bool:
    try:
        get_service_model("ssm").operation_model(action)
        return True
    except OperationNotFoundError:
        return False


def _body(response: SimpleSystemManagerResponse) -> dict[str, Any]:
    raw = response.body or "{}"
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise c.SsmError("SerializationException", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise c.SsmError("SerializationException", "Request body must be a JSON object.")
    return body


def _make_method(action: str, handler: Handler) -> Callable[[SimpleSystemManagerResponse], Any]:
    modelled = _in_model(action)

    def method(self: SimpleSystemManagerResponse) -> Any:
        st = c.state_for(self.current_account, self.region)
        result = handler(st, _body(self), self)
        # Actions outside botocore's public model (the agent's heartbeat) cannot go through moto's
        # model-driven serializer; their answers are plain JSON.
        return ActionResult(result) if modelled else json.dumps(result)

    method.__name__ = _snake(action)
    method.__qualname__ = f"SimpleSystemManagerResponse.{method.__name__}"
    return method


def _make_tag_method(
    action: str, original: Callable[..., Any]
) -> Callable[[SimpleSystemManagerResponse], Any]:
    mine = _TAG_ACTIONS[action]

    def method(self: SimpleSystemManagerResponse) -> Any:
        body = _body(self)
        if body.get("ResourceType") in _OWN_TAG_TYPES:
            st = c.state_for(self.current_account, self.region)
            return ActionResult(mine(st, body))
        return original(self)  # Parameters, Documents, ... stay with moto

    method.__name__ = _snake(action)
    return method


def _seed(backend: SimpleSystemManagerBackend) -> None:
    ssm_commands.seed_documents(backend)
    c.state_of(backend)


def install() -> None:
    """Patch moto's SSM (idempotent; safe to call from every importer)."""
    with c.LOCK:
        if getattr(SimpleSystemManagerResponse, _MARK, False):
            return
        for action, handler in _ACTIONS.items():
            setattr(SimpleSystemManagerResponse, _snake(action), _make_method(action, handler))
        for action in _TAG_ACTIONS:
            original = getattr(SimpleSystemManagerResponse, _snake(action))
            setattr(SimpleSystemManagerResponse, _snake(action), _make_tag_method(action, original))

        original_init = SimpleSystemManagerBackend.__init__

        # moto's reset re-runs __init__ on a cleared object: seeding there survives resets.
        def init(self: SimpleSystemManagerBackend, region_name: str, account_id: str) -> None:
            original_init(self, region_name, account_id)
            _seed(self)

        SimpleSystemManagerBackend.__init__ = init  # type: ignore[method-assign]
        for account_backends in list(ssm_backends.values()):
            for backend in list(dict.values(account_backends)):
                _seed(backend)
        setattr(SimpleSystemManagerResponse, _MARK, True)
        c.LOG.info("SSM extensions installed (%d actions)", len(_ACTIONS) + len(_TAG_ACTIONS))


# --- requests moto cannot route -------------------------------------------------------------

_HOST_REGION = re.compile(r"(?:^|\.)(?:ssm|ec2messages)\.([a-z0-9-]+)\.(?:vpce\.)?amazonaws\.com(?::\d+)?$")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/")
_REGISTER = "AmazonSSM.RegisterManagedInstance"
_ROLE_TOKEN = "AmazonSSM.RequestManagedInstanceRoleToken"
_EC2MESSAGES = "EC2WindowsMessageDeliveryService."


def _region(environ: dict[str, Any]) -> str:
    host = environ.get("HTTP_HOST") or ""
    match = _HOST_REGION.search(host)
    if match:
        return match[1]
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION") or "")
    return scope[2] if scope else c.DEFAULT_REGION


def _access_key(environ: dict[str, Any]) -> str | None:
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION") or "")
    return scope[1] if scope else None


def _agent_instance(
    region: str, instance_id: str, access_key: str | None
) -> tuple[c.SsmState, c.ManagedInstance]:
    found = c.find_instance(region, instance_id)
    if found is None:
        raise c.SsmError("InvalidInstanceId", f"Instance {instance_id} is not registered.")
    if access_key is None or access_key not in found[1].access_keys:
        raise c.SsmError("AccessDeniedException", f"The credentials are not those of {instance_id}.")
    return found


def _ec2messages(
    operation: str, region: str, environ: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    key = _access_key(environ)
    if operation == "GetEndpoint":
        return {"Endpoint": f"ec2messages.{region}.amazonaws.com"}
    if operation == "GetMessages":
        st, inst = _agent_instance(region, str(body.get("Destination", "")), key)
        return ssm_commands.get_messages(st, inst, body)
    match = re.search(r"\.(mi-[0-9a-f]{17})$", str(body.get("MessageId", "")))
    if not match:
        raise c.SsmError("InvalidMessageId", f"Message {body.get('MessageId')} is not valid.")
    st, inst = _agent_instance(region, match[1], key)
    if operation == "AcknowledgeMessage":
        return ssm_commands.acknowledge_message(st, inst, body)
    if operation == "SendReply":
        return ssm_commands.send_reply(st, inst, body)
    if operation == "FailMessage":
        payload = json.dumps({"status": "Failed", "standardError": str(body.get("FailureType", "Failed"))})
        return ssm_commands.send_reply(st, inst, {"MessageId": body["MessageId"], "Payload": payload})
    if operation == "DeleteMessage":
        return {}
    raise c.SsmError("UnknownOperationException", f"Unknown operation {operation}.")


def _answer(status: int, payload: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    body = json.dumps(payload).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    return status, headers, body


def wsgi_intercept(environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Answer agent-side SSM / ec2messages requests; None for anything moto should handle."""
    target = environ.get("HTTP_X_AMZ_TARGET") or ""
    if target not in (_REGISTER, _ROLE_TOKEN) and not target.startswith(_EC2MESSAGES):
        return None
    install()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    region = _region(environ)
    try:
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise c.SsmError("SerializationException", f"Request body is not valid JSON: {exc}") from exc
        if target == _REGISTER:
            result = ssm_fleet.register_managed_instance(region, body)
        elif target == _ROLE_TOKEN:
            result = ssm_fleet.request_role_token(region, environ.get("HTTP_AUTHORIZATION") or "", raw)
        else:
            result = _ec2messages(target[len(_EC2MESSAGES) :], region, environ, body)
    except c.SsmError as err:
        c.LOG.info("%s -> %s: %s", target, err.code, err.message)
        return _answer(err.status, {"__type": err.code, "message": err.message})
    return _answer(200, result)
