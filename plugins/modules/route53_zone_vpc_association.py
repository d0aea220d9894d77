#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: route53_zone_vpc_association
short_description: Associate a VPC with a Route 53 private hosted zone, also across accounts
description:
  - Makes sure one VPC is (or is not) associated with an existing private hosted zone.
  - The module's own credentials are those of the account that owns the hosted zone.
  - When the VPC belongs to another account, give that account's credentials in the C(vpc_owner_*) options.
    The module then creates a VPC association authorization in the zone's account
    (C(CreateVPCAssociationAuthorization)), associates the VPC with the VPC owner's credentials
    (C(AssociateVPCWithHostedZone)) and deletes the authorization again, as AWS recommends once it is used.
  - Without C(vpc_owner_*) options the association is made with the zone owner's credentials (same account).
  - With I(state=absent) the zone owner disassociates the VPC (Route 53 allows the zone's account to do
    that for any VPC) and any authorization left for the VPC is deleted.
  - A zone always keeps one VPC; removing its last association fails with a message saying so
    (delete the zone instead).
  - Describe, compare, act; check mode and diff are supported. A no-op run makes one C(GetHostedZone) call
    (two with I(state=absent)).
version_added: "0.1.0"
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  hosted_zone_id:
    description:
      - Id of the private hosted zone (with or without the C(/hostedzone/) prefix).
    type: str
    required: true
  vpc_id:
    description:
      - Id of the VPC to associate.
    type: str
    required: true
  vpc_region:
    description:
      - Region of the VPC. Defaults to the module's region.
    type: str
  vpc_owner_profile:
    description:
      - Named profile of the account that owns the VPC, when it is not the zone's account.
      - Mutually exclusive with I(vpc_owner_access_key).
    type: str
  vpc_owner_access_key:
    description:
      - Access key id of the account that owns the VPC (for example from M(amazon.aws.sts_assume_role)).
    type: str
  vpc_owner_secret_key:
    description:
      - Secret access key that goes with I(vpc_owner_access_key).
    type: str
  vpc_owner_session_token:
    description:
      - Session token that goes with I(vpc_owner_access_key) for temporary credentials.
    type: str
  state:
    description:
      - Whether the VPC should be associated with the zone.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Associate a VPC of account B with the S3 zone of account A
  hybrid.onboard.route53_zone_vpc_association:
    hosted_zone_id: Z0123456789ABCDEFGHIJ
    vpc_id: vpc-0b0b0b0b0b0b0b0b0
    vpc_region: eu-west-1
    profile: network-account-a
    vpc_owner_profile: workload-account-b

- name: Associate with temporary credentials of the VPC owner
  hybrid.onboard.route53_zone_vpc_association:
    hosted_zone_id: "{{ zone_id }}"
    vpc_id: "{{ spoke_vpc_id }}"
    vpc_owner_access_key: "{{ assumed.sts_creds.access_key }}"
    vpc_owner_secret_key: "{{ assumed.sts_creds.secret_key }}"
    vpc_owner_session_token: "{{ assumed.sts_creds.session_token }}"

- name: Take the VPC out of the zone again
  hybrid.onboard.route53_zone_vpc_association:
    hosted_zone_id: Z0123456789ABCDEFGHIJ
    vpc_id: vpc-0b0b0b0b0b0b0b0b0
    state: absent
"""

RETURN = r"""
hosted_zone_id:
  description: Id of the hosted zone, without the C(/hostedzone/) prefix.
  returned: always
  type: str
  sample: Z0123456789ABCDEFGHIJ
vpc_id:
  description: The VPC the module was asked about.
  returned: always
  type: str
  sample: vpc-0b0b0b0b0b0b0b0b0
vpc_region:
  description: Region of that VPC.
  returned: always
  type: str
  sample: eu-west-1
associated:
  description: Whether the VPC is associated with the zone after the run (in check mode, would be).
  returned: always
  type: bool
  sample: true
cross_account:
  description: Whether the association is made with the VPC owner's credentials (C(vpc_owner_*) given).
  returned: always
  type: bool
  sample: true
vpcs:
  description: All VPC associations of the zone after the run, as the zone's account sees them.
  returned: always
  type: list
  elements: dict
  contains:
    vpc_id:
      description: VPC id.
      type: str
      sample: vpc-0a0a0a0a0a0a0a0a0
    vpc_region:
      description: VPC region.
      type: str
      sample: eu-west-1
"""

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import (
    AnsibleAWSModule,
    aws_client,
    retry_decorator,
)

OWNER_OPTIONS = ("vpc_owner_profile", "vpc_owner_access_key", "vpc_owner_secret_key", "vpc_owner_session_token")


def bare_zone_id(zone_id):
    return zone_id.rsplit("/", 1)[-1]


def zone_vpcs(client, module, zone_id):
    """The zone's VPC associations as ``[{'VPCId', 'VPCRegion'}]``; fails when it is not a private zone."""
    try:
        result = client.get_hosted_zone(aws_retry=True, Id=zone_id)
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") == "NoSuchHostedZone":
            module.fail_json(msg=f"hosted_zone_id {zone_id} does not exist in the zone owner's account")
        module.fail_json_aws(e, msg=f"Failed to describe hosted zone {zone_id}")
    except botocore.exceptions.BotoCoreError as e:
        module.fail_json_aws(e, msg=f"Failed to describe hosted zone {zone_id}")
    if not result["HostedZone"].get("Config", {}).get("PrivateZone"):
        module.fail_json(msg=f"hosted_zone_id {zone_id} is a public zone; only private zones have VPCs")
    return [{"VPCId": v["VPCId"], "VPCRegion": v["VPCRegion"]} for v in result.get("VPCs", [])]


def authorizations(client, module, zone_id):
    try:
        result = client.list_vpc_association_authorizations(aws_retry=True, HostedZoneId=zone_id)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to list VPC association authorizations of {zone_id}")
    return result.get("VPCs", [])


def owner_client(module):
    """A Route 53 client with the VPC owner's credentials (the module's endpoint, CA bundle and config)."""
    params = module.params
    if params["vpc_owner_profile"]:
        extra = dict(profile_name=params["vpc_owner_profile"], aws_access_key_id=None,
                     aws_secret_access_key=None, aws_session_token=None)
    else:
        extra = dict(profile_name=None, aws_access_key_id=params["vpc_owner_access_key"],
                     aws_secret_access_key=params["vpc_owner_secret_key"],
                     aws_session_token=params["vpc_owner_session_token"] or None)
    return module.client("route53", retry_decorator=retry_decorator(), **extra)


def associate(module, zone_client, zone_id, vpc, cross_account):
    if not cross_account:
        try:
            zone_client.associate_vpc_with_hosted_zone(aws_retry=True, HostedZoneId=zone_id, VPC=vpc)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            module.fail_json_aws(e, msg=f"Failed to associate {vpc['VPCId']} with hosted zone {zone_id}")
        return
    try:
        zone_client.create_vpc_association_authorization(aws_retry=True, HostedZoneId=zone_id, VPC=vpc)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to authorize {vpc['VPCId']} to associate with hosted zone {zone_id}")
    try:
        owner_client(module).associate_vpc_with_hosted_zone(aws_retry=True, HostedZoneId=zone_id, VPC=vpc)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(
            e, msg=f"Failed to associate {vpc['VPCId']} with hosted zone {zone_id} as the VPC's owner"
        )
    delete_authorization(module, zone_client, zone_id, vpc)


def delete_authorization(module, zone_client, zone_id, vpc):
    try:
        zone_client.delete_vpc_association_authorization(aws_retry=True, HostedZoneId=zone_id, VPC=vpc)
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") == "VPCAssociationAuthorizationNotFound":
            return
        module.fail_json_aws(e, msg=f"Failed to delete the association authorization of {vpc['VPCId']}")
    except botocore.exceptions.BotoCoreError as e:
        module.fail_json_aws(e, msg=f"Failed to delete the association authorization of {vpc['VPCId']}")


def disassociate(module, zone_client, zone_id, vpc):
    try:
        zone_client.disassociate_vpc_from_hosted_zone(aws_retry=True, HostedZoneId=zone_id, VPC=vpc)
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") == "LastVPCAssociation":
            module.fail_json(
                msg=f"{vpc['VPCId']} is the last VPC of hosted zone {zone_id}; a private zone keeps one VPC "
                "(delete the zone instead)"
            )
        module.fail_json_aws(e, msg=f"Failed to disassociate {vpc['VPCId']} from hosted zone {zone_id}")
    except botocore.exceptions.BotoCoreError as e:
        module.fail_json_aws(e, msg=f"Failed to disassociate {vpc['VPCId']} from hosted zone {zone_id}")


def snake_vpcs(vpcs):
    return sorted(({"vpc_id": v["VPCId"], "vpc_region": v["VPCRegion"]} for v in vpcs), key=lambda v: v["vpc_id"])


def main():
    argument_spec = dict(
        hosted_zone_id=dict(type="str", required=True),
        vpc_id=dict(type="str", required=True),
        vpc_region=dict(type="str"),
        vpc_owner_profile=dict(type="str"),
        vpc_owner_access_key=dict(type="str", no_log=False),
        vpc_owner_secret_key=dict(type="str", no_log=True),
        vpc_owner_session_token=dict(type="str", no_log=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[["vpc_owner_profile", "vpc_owner_access_key"]],
        required_together=[["vpc_owner_access_key", "vpc_owner_secret_key"]],
    )
    params = module.params
    zone_id = bare_zone_id(params["hosted_zone_id"])
    vpc_region = params["vpc_region"] or module.region
    if not vpc_region:
        module.fail_json(msg="vpc_region is required when the module has no region")
    vpc = {"VPCId": params["vpc_id"], "VPCRegion": vpc_region}
    cross_account = any(params[o] for o in OWNER_OPTIONS)
    state = params["state"]

    client = aws_client(module, "route53")
    before = zone_vpcs(client, module, zone_id)
    is_associated = any(v["VPCId"] == vpc["VPCId"] for v in before)
    changed = False
    leftover = []

    if state == "present" and not is_associated:
        changed = True
        if not module.check_mode:
            associate(module, client, zone_id, vpc, cross_account)
    elif state == "absent":
        if is_associated:
            changed = True
            if not module.check_mode:
                disassociate(module, client, zone_id, vpc)
        leftover = [a for a in authorizations(client, module, zone_id) if a.get("VPCId") == vpc["VPCId"]]
        if leftover:
            changed = True
            if not module.check_mode:
                delete_authorization(module, client, zone_id, vpc)

    if changed and not module.check_mode:
        after = zone_vpcs(client, module, zone_id)
    elif changed:
        after = before + [vpc] if state == "present" else [v for v in before if v["VPCId"] != vpc["VPCId"]]
    else:
        after = before
    now_associated = any(v["VPCId"] == vpc["VPCId"] for v in after)
    diff = {
        "before": {"associated": is_associated, "authorization": bool(leftover)},
        "after": {"associated": now_associated, "authorization": False},
    }
    module.exit_json(
        changed=changed,
        hosted_zone_id=zone_id,
        vpc_id=vpc["VPCId"],
        vpc_region=vpc_region,
        associated=now_associated,
        cross_account=cross_account,
        vpcs=snake_vpcs(after),
        diff=diff,
    )


if __name__ == "__main__":
    main()
