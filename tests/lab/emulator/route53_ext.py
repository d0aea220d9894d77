"""Route 53 VPC association authorizations, which moto 5.2.5 lacks.

Create/Delete/ListVPCAssociationAuthorization(s) follow the botocore route53 model (REST XML:
``POST|GET /2013-04-01/hostedzone/{Id}/authorizevpcassociation``, ``POST …/deauthorizevpcassociation``).
They matter for the multi-account layout: the account owning a private hosted zone authorizes a
VPC of another account, which then associates the zone. So AssociateVPCWithHostedZone is extended:
a zone the caller's account does not own is found in the owning account and associated only if an
authorization for that VPC exists (else NotAuthorizedException, as AWS answers).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.route53 import urls as route53_urls
from moto.route53.exceptions import (
    InvalidVPCId,
    NoSuchHostedZone,
    PublicZoneVPCAssociation,
    Route53ClientError,
)
from moto.route53.models import FakeZone, Route53Backend, route53_backends
from moto.route53.responses import Route53

log = logging.getLogger(__name__)

_VPC_ID_RE = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
_installed = False
_original: dict[str, Any] = {}


class VPCAssociationAuthorizationNotFound(Route53ClientError):
    def __init__(self, vpc_id: str, zone_id: str) -> None:
        super().__init__(
            "VPCAssociationAuthorizationNotFound",
            f"The VPC: {vpc_id} has not authorized to associate with your hosted zone: {zone_id}",
        )


class NotAuthorizedException(Route53ClientError):
    def __init__(self, vpc_id: str, zone_id: str) -> None:
        super().__init__(
            "NotAuthorizedException",
            f"The VPC: {vpc_id} has not been authorized to associate with hosted zone: {zone_id}",
        )


class TooManyVPCAssociationAuthorizations(Route53ClientError):
    def __init__(self) -> None:
        super().__init__(
            "TooManyVPCAssociationAuthorizations",
            "You've created the maximum number of authorizations for this hosted zone.",
        )


MAX_AUTHORIZATIONS_PER_ZONE = 100  # Route 53 quota


def _authorizations(backend: Route53Backend) -> dict[str, list[dict[str, str]]]:
    if not hasattr(backend, "lab_vpc_authorizations"):
        backend.lab_vpc_authorizations = {}
    return backend.lab_vpc_authorizations


def _validate_vpc(vpc: dict[str, Any] | None) -> tuple[str, str]:
    vpc = vpc or {}
    vpc_id, region = vpc.get("VPCId"), vpc.get("VPCRegion")
    if not vpc_id or not _VPC_ID_RE.match(vpc_id) or not region:
        raise InvalidVPCId()
    return vpc_id, region


def _key(zone: FakeZone) -> str:
    # FakeZone.id is "/hostedzone/<id>"; the backend's zone dict and the API use the bare id.
    return zone.id.replace("/hostedzone/", "")


def _private_zone(backend: Route53Backend, zone_id: str) -> FakeZone:
    zone = backend.get_hosted_zone(zone_id)
    if not zone.private_zone:
        raise PublicZoneVPCAssociation()
    return zone


def create_vpc_association_authorization(
    self: Route53Backend, zone_id: str, vpc: dict[str, Any]
) -> dict[str, Any]:
    zone = _private_zone(self, zone_id)
    vpc_id, region = _validate_vpc(vpc)
    entries = _authorizations(self).setdefault(_key(zone), [])
    if not any(e["VPCId"] == vpc_id for e in entries):
        if len(entries) >= MAX_AUTHORIZATIONS_PER_ZONE:
            raise TooManyVPCAssociationAuthorizations()
        entries.append({"VPCId": vpc_id, "VPCRegion": region})
    return {"VPCId": vpc_id, "VPCRegion": region}


def delete_vpc_association_authorization(self: Route53Backend, zone_id: str, vpc: dict[str, Any]) -> None:
    zone = _private_zone(self, zone_id)
    vpc_id, _region = _validate_vpc(vpc)
    entries = _authorizations(self).get(_key(zone), [])
    remaining = [e for e in entries if e["VPCId"] != vpc_id]
    if len(remaining) == len(entries):
        raise VPCAssociationAuthorizationNotFound(vpc_id, _key(zone))
    _authorizations(self)[_key(zone)] = remaining


def list_vpc_association_authorizations(self: Route53Backend, zone_id: str) -> list[dict[str, str]]:
    zone = self.get_hosted_zone(zone_id)
    return list(_authorizations(self).get(_key(zone), []))


def associate_vpc_with_hosted_zone(
    self: Route53Backend, zone_id: str, vpcid: str, vpcregion: str
) -> FakeZone:
    bare_id = zone_id.replace("/hostedzone/", "")
    if bare_id in self.zones:
        return _original["associate"](self, zone_id, vpcid, vpcregion)
    # Not ours: find the owner; it must have authorized this VPC.
    for account_id, per_account in route53_backends.items():
        if account_id == self.account_id:
            continue
        for owner in per_account.values():
            if bare_id not in owner.zones:
                continue
            if not any(e["VPCId"] == vpcid for e in _authorizations(owner).get(bare_id, [])):
                raise NotAuthorizedException(vpcid, bare_id)
            log.info(
                "cross-account association of %s (account %s) with zone %s of %s",
                vpcid,
                self.account_id,
                bare_id,
                account_id,
            )
            return _original["associate"](owner, zone_id, vpcid, vpcregion)
    raise NoSuchHostedZone(zone_id)


# --- responses --------------------------------------------------------------------------------


def _resp_create(self: Route53) -> ActionResult:
    zone_id = self._get_param("HostedZoneId")
    vpc = self.backend.create_vpc_association_authorization(zone_id, self._get_param("VPC"))
    return ActionResult({"HostedZoneId": zone_id.replace("/hostedzone/", ""), "VPC": vpc})


def _resp_delete(self: Route53) -> EmptyResult:
    self.backend.delete_vpc_association_authorization(self._get_param("HostedZoneId"), self._get_param("VPC"))
    return EmptyResult()


def _resp_list(self: Route53) -> ActionResult:
    zone_id = self._get_param("HostedZoneId")
    vpcs = self.backend.list_vpc_association_authorizations(zone_id)
    return ActionResult({"HostedZoneId": zone_id.replace("/hostedzone/", ""), "VPCs": vpcs})


def install() -> None:
    """Add the routes, response handlers and backend methods. Idempotent; call before serving."""
    global _installed
    if _installed:
        return
    prefix = r"{0}/(?P<api_version>[\d_-]+)/hostedzone/(?P<zone_id>[^/]+)"
    route53_urls.url_paths[prefix + r"/authorizevpcassociation/?$"] = Route53.dispatch
    route53_urls.url_paths[prefix + r"/deauthorizevpcassociation/?$"] = Route53.dispatch
    Route53Backend.create_vpc_association_authorization = create_vpc_association_authorization
    Route53Backend.delete_vpc_association_authorization = delete_vpc_association_authorization
    Route53Backend.list_vpc_association_authorizations = list_vpc_association_authorizations
    _original["associate"] = Route53Backend.associate_vpc_with_hosted_zone
    Route53Backend.associate_vpc_with_hosted_zone = associate_vpc_with_hosted_zone
    Route53.create_vpc_association_authorization = _resp_create
    Route53.delete_vpc_association_authorization = _resp_delete
    Route53.list_vpc_association_authorizations = _resp_list
    _installed = True
    log.debug("route53_ext installed")
