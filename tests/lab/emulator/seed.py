"""Seed the emulator with what the account "already has" before onboarding. Idempotent.

- In ``labconst.REGION``: VPC ``labconst.VPC_ID`` (``VPC_CIDR``, tag Name=hybrid-lab, DNS support and
  DNS hostnames on) and the subnets of ``labconst.SUBNETS`` with exactly those ids, AZs and CIDRs.
  moto draws ids at random, so its id generators are pinned while each resource is created; the
  resources are then ordinary moto objects (filters, tags, describe-* all work).
- The agent download buckets ``SSM_AGENT_BUCKET`` and ``CW_AGENT_BUCKET`` (empty here; the lab's
  package builder uploads into them).
"""

from __future__ import annotations

import logging
import threading
from unittest import mock

import labconst
from moto.ec2.models import ec2_backends
from moto.ec2.models import subnets as moto_subnets
from moto.ec2.models import vpcs as moto_vpcs
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends

log = logging.getLogger(__name__)

VPC_NAME = "hybrid-lab"
_lock = threading.Lock()


def _seed_network(account_id: str, region: str) -> None:
    ec2 = ec2_backends[account_id][region]
    vpc = ec2.vpcs.get(labconst.VPC_ID)
    if vpc is None:
        with mock.patch.object(moto_vpcs, "random_vpc_id", return_value=labconst.VPC_ID):
            vpc = ec2.create_vpc(labconst.VPC_CIDR)
        log.info("seeded VPC %s (%s) in %s", vpc.id, labconst.VPC_CIDR, region)
    elif vpc.cidr_block != labconst.VPC_CIDR:
        raise RuntimeError(
            f"seeded VPC {labconst.VPC_ID} has CIDR {vpc.cidr_block}, expected {labconst.VPC_CIDR}"
        )
    vpc.enable_dns_support = True
    vpc.enable_dns_hostnames = True
    ec2.create_tags([vpc.id], {"Name": VPC_NAME})

    existing = {s.id: s for per_az in ec2.subnets.values() for s in per_az.values()}
    for subnet_id, zone, cidr in labconst.SUBNETS:
        subnet = existing.get(subnet_id)
        if subnet is None:
            with mock.patch.object(moto_subnets, "random_subnet_id", return_value=subnet_id):
                subnet = ec2.create_subnet(vpc_id=vpc.id, cidr_block=cidr, availability_zone=zone)
            log.info("seeded subnet %s %s %s", subnet_id, zone, cidr)
        elif (subnet.availability_zone, subnet.cidr_block, subnet.vpc_id) != (zone, cidr, vpc.id):
            raise RuntimeError(
                f"seeded subnet {subnet_id} is {subnet.availability_zone}/{subnet.cidr_block} in "
                f"{subnet.vpc_id}, expected {zone}/{cidr} in {vpc.id}"
            )
        ec2.create_tags([subnet_id], {"Name": f"{VPC_NAME}-{zone[-1]}"})


def _seed_buckets(account_id: str, region: str) -> None:
    s3 = s3_backends[account_id]["aws"]
    for bucket in (labconst.SSM_AGENT_BUCKET, labconst.CW_AGENT_BUCKET):
        try:
            s3.get_bucket(bucket)
        except MissingBucket:
            s3.create_bucket(bucket, region)
            log.info("seeded bucket s3://%s in %s", bucket, region)


def seed(account_id: str = labconst.ACCOUNT_ID, region: str = labconst.REGION) -> None:
    """Create (or confirm) the seeded resources; safe to call any number of times."""
    with _lock:
        _seed_network(account_id, region)
        _seed_buckets(account_id, region)
