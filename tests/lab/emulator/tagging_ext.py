"""Resource Groups Tagging API ``GetResources`` for the lab's hybrid managed nodes.

moto 5.2.5 answers GetResources from its own backends, and the lab's managed nodes (``mi-...``) live in the SSM
extension's state (``ssm_common``), which moto's tagging backend does not know. AWS lists a managed node as
``arn:<partition>:ssm:<region>:<account>:managed-instance/<mi-id>`` with resource type ``ssm:managed-instance``.

Answered here, as AWS does:
- ``ResourceARNList`` (1 to 100 ARNs, no pagination parameters with it) of managed-node ARNs: the nodes among them
  that are registered and carry at least one tag (GetResources lists tagged resources only), in the order asked;
  an ARN of a node that does not exist is left out, without an error.
- ``ResourceTypeFilters`` of exactly ``["ssm:managed-instance"]`` without an ARN list: every tagged node of the
  region, ``ResourcesPerPage`` (1 to 100, default 50) at a time, with a ``PaginationToken``; ``TagFilters``
  narrow it (a filter without values: the key present).
Everything else (other resource types, mixed ARN lists) goes to moto as before.
"""

from __future__ import annotations

import re
from typing import Any

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ssm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):managed-instance/"
    r"(?P<id>mi-[0-9a-f]{17})$"
)
_TYPE = "ssm:managed-instance"


def _arn(partition: str, region: str, account: str, instance_id: str) -> str:
    return f"arn:{partition}:ssm:{region}:{account}:managed-instance/{instance_id}"


def _mapping(arn: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def _matches(tags: dict[str, str], tag_filters: list[dict[str, Any]]) -> bool:
    for flt in tag_filters:
        key, values = flt.get("Key"), flt.get("Values") or []
        if key not in tags or (values and tags[key] not in values):
            return False
    return True


def by_arns(arns: list[str]) -> list[dict[str, Any]]:
    """The tagged, registered nodes among ``arns`` (all managed-node ARNs), in the order asked."""
    from . import ssm_common as c

    out = []
    with c.LOCK:
        for arn in arns:
            m = _ARN.match(arn)
            found = c.find_instance(m["region"], m["id"]) if m else None
            if found is None or found[0].account_id != m["account"] or not found[1].tags:
                continue
            out.append(_mapping(arn, dict(found[1].tags)))
    return out


def by_type(account: str, region: str, partition: str, tag_filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tagged node of the account and region that passes ``tag_filters``, in registration order."""
    from . import ssm_common as c

    out = []
    with c.LOCK:
        for st in c.existing_states(region):
            if st.account_id != account:
                continue
            for instance_id, inst in st.instances.items():
                if inst.tags and _matches(inst.tags, tag_filters):
                    out.append(_mapping(_arn(partition, region, account, instance_id), dict(inst.tags)))
    return out


def install() -> None:
    """Wrap moto's GetResources (idempotent): managed-node requests are answered here, the rest by moto."""
    from moto.core.responses import ActionResult
    from moto.resourcegroupstaggingapi.exceptions import ResourceGroupsTaggingAPIError
    from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse

    if getattr(ResourceGroupsTaggingAPIResponse, "_hybrid_lab_tagging_ext", False):
        return
    original = ResourceGroupsTaggingAPIResponse.get_resources

    def invalid(message: str) -> ResourceGroupsTaggingAPIError:
        return ResourceGroupsTaggingAPIError("InvalidParameterException", message)

    def get_resources(self: ResourceGroupsTaggingAPIResponse) -> Any:
        arns = self._get_param("ResourceARNList", []) or []
        types = self._get_param("ResourceTypeFilters", []) or []
        token = self._get_param("PaginationToken")
        if arns and all(_ARN.match(a) for a in arns):
            if len(arns) > 100:
                raise invalid("ResourceARNList must contain at most 100 ARNs.")
            if token or self._get_param("ResourcesPerPage") is not None or self._get_param("TagsPerPage") is not None:
                raise invalid("ResourceARNList cannot be specified together with pagination parameters.")
            return ActionResult({"ResourceTagMappingList": by_arns(arns), "PaginationToken": ""})
        if not arns and types == [_TYPE]:
            per_page = self._get_int_param("ResourcesPerPage", 50)
            if per_page not in range(1, 101):
                raise invalid("ResourcesPerPage must be between 1 and 100")
            partition = (
                "aws-cn"
                if self.region.startswith("cn-")
                else ("aws-us-gov" if self.region.startswith("us-gov-") else "aws")
            )
            found = by_type(self.current_account, self.region, partition, self._get_param("TagFilters", []) or [])
            start = int(token) if token and token.isdigit() else 0
            page = found[start : start + per_page]
            following = str(start + per_page) if start + per_page < len(found) else ""
            return ActionResult({"ResourceTagMappingList": page, "PaginationToken": following})
        return original(self)

    ResourceGroupsTaggingAPIResponse.get_resources = get_resources
    ResourceGroupsTaggingAPIResponse._hybrid_lab_tagging_ext = True
