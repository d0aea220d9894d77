# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's plugin layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
name: ssm_nodes
short_description: Hybrid managed nodes (mi-...) of AWS Systems Manager as inventory hosts
description:
  - Lists the managed nodes of AWS Systems Manager with C(DescribeInstanceInformation), one call per page of
    50 nodes (not one per node), in every region of O(regions). By default only hybrid nodes
    (IDs C(mi-...), C(ResourceType=ManagedInstance)); EC2 instances (C(i-...)) only with O(include_ec2=true).
  - With O(tags=true) (the default) it also reads the hybrid nodes' tags with the Resource Groups Tagging API
    (C(tag:GetResources)), 100 nodes per call, after one C(sts:GetCallerIdentity) per region for the nodes' ARNs.
    That API is eventually consistent, so a tag changed moments before the inventory is read may still show its
    old value (or be missing from a node tagged moments before). When either call is denied, the plugin warns and
    reads each node's tags with C(ListTagsForResource) instead, one call per node. For a large fleet, select nodes
    by tag on the server side with O(filters) (C(tag:Key)), set O(tags=false) when no host name, group or variable
    needs the tags, and turn the cache on (O(cache=true)).
  - Every host gets these variables (V(null) when AWS did not report the value, for example the platform of a
    node that never sent a heartbeat) -
    C(ssm_instance_id), C(ssm_resource_type), C(ssm_ping_status), C(ssm_last_ping_date_time) (ISO 8601, UTC),
    C(ssm_platform_type), C(ssm_platform_name), C(ssm_platform_version), C(ssm_agent_version),
    C(ssm_is_latest_version), C(ssm_ip_address), C(ssm_computer_name), C(ssm_name) (the name given at
    registration), C(ssm_activation_id), C(ssm_iam_role), C(ssm_registration_date) (ISO 8601, UTC),
    C(ssm_association_status), C(ssm_region); and C(ssm_tags) (a dict) when O(tags=true) and the node is a hybrid
    node (the tags of EC2 instances are EC2's; use M(amazon.aws.ec2_instance_info) or the
    C(amazon.aws.aws_ec2) inventory for them).
  - Connection variables - C(ansible_host) is the node's IP address as reported by its agent; with
    O(use_ssm_connection=true) it is the node ID instead, with C(ansible_connection=amazon.aws.aws_ssm) and
    C(ansible_aws_ssm_region). O(compose) is applied after them, so it can override them.
  - No group is made besides C(all)/C(ungrouped) and what O(keyed_groups) and O(groups) make.
  - The configuration file must end in C(ssm_nodes.yml), C(ssm_nodes.yaml), C(aws_ssm.yml) or
    C(aws_ssm.yaml) and set C(plugin) to C(hybrid.onboard.ssm_nodes).
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    type: str
    required: true
    choices: [hybrid.onboard.ssm_nodes]
  regions:
    description:
      - The regions to list managed nodes in, one C(DescribeInstanceInformation) pagination each.
      - When empty, the region of O(region) (or C(AWS_REGION), or the profile's region) only. Unlike
        C(amazon.aws.aws_ec2), it does B(not) fall back to every region, because on a closed network only the
        regions with VPC endpoints are reachable.
    type: list
    elements: str
    default: []
  filters:
    description:
      - Filters of C(DescribeInstanceInformation), applied by AWS. Each key maps to a value or a list of values
        (at most 100), for example C(tag:Datacenter), C(tag-key), C(ActivationIds), C(PlatformTypes),
        C(AgentVersion), C(AssociationStatus), C(IamRole), C(InstanceIds).
      - See U(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformationStringFilter.html).
      - Put ping statuses in O(ping_status), not under C(PingStatus) here.
    type: dict
    default: {}
  ping_status:
    description:
      - Only nodes with one of these ping statuses (a C(PingStatus) filter applied by AWS). Empty means all.
      - C(Inactive) is deprecated by AWS; nodes that stopped reporting are C(ConnectionLost).
    type: list
    elements: str
    choices: [Online, ConnectionLost, Inactive]
    default: []
  include_ec2:
    description:
      - Also list EC2 instances (C(i-...)) that SSM manages. By default only hybrid nodes (C(mi-...)) are listed.
    type: bool
    default: false
  hostnames:
    description:
      - Where a host's inventory name comes from, in order of preference; the first one the node has a value
        for is used.
      - V(computer_name) is the full host name the agent reports (for example C(app01.fra1.example.net), not
        shortened at the first dot), V(ip_address) the address it reports, V(instance_id) the node ID,
        V(tag:<Key>) the value of that tag (needs O(tags=true); the C(ssm_agent) role tags every node it registers
        with C(Hostname) = its inventory name, so V(tag:Hostname) gives back the static inventory's names).
      - A node that has no value for any of them is left out, with a warning. A node that never sent a heartbeat
        has no computer name and no IP address yet, so keep V(instance_id) last to list it anyway.
      - When two nodes get the same name (typically a host that was registered again, leaving its old C(mi-)
        ID behind as C(ConnectionLost)), the C(Online) one wins, then the one that pinged last; the other is
        left out with a warning that names its ID.
    type: list
    elements: str
    default: [computer_name, instance_id]
  tags:
    description:
      - Read every hybrid node's tags into C(ssm_tags), with one C(tag:GetResources) call per 100 nodes (see the
        description).
      - Turn off for large fleets when nothing needs the tags (see the description).
    type: bool
    default: true
  use_ssm_connection:
    description:
      - Set C(ansible_connection=amazon.aws.aws_ssm), C(ansible_host) to the node ID and C(ansible_aws_ssm_region)
        for every host, for hosts that can only be reached through Session Manager.
      - The connection plugin also needs C(ansible_aws_ssm_bucket_name) (set it in group_vars), the Session
        Manager plugin on the controller, and, for hybrid nodes, the C(advanced) activation tier.
      - When false, C(ansible_host) is the node's IP address.
    type: bool
    default: false
notes:
  - Read-only; it only calls C(ssm:DescribeInstanceInformation) and, with O(tags=true), C(sts:GetCallerIdentity)
    and C(tag:GetResources) (or, where those are denied, C(ssm:ListTagsForResource)), plus C(sts:AssumeRole) with
    O(assume_role_arn).
  - Throttling is retried with jittered backoff, per page and per call.
  - With O(cache=true) a second run within O(cache_timeout) makes no AWS call at all. The cache key includes the
    options that change the query (O(regions), O(filters), O(ping_status), O(include_ec2), O(tags), the
    profile, endpoint and role), so editing them does not serve a stale answer; C(--flush-cache) forces a query.
  - The credentials come from the environment, a profile or the options below; keep them out of the file.
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
"""

EXAMPLES = r"""
# Every hybrid node of the region in AWS_REGION, named by the host name its agent reports.
plugin: hybrid.onboard.ssm_nodes

---
# Only the Online nodes of this site, named like the static inventory (tag Hostname, set by the ssm_agent role),
# grouped by ping status, OS and datacenter tag: ssm_ping_Online, os_Ubuntu, dc_fra1, ...
plugin: hybrid.onboard.ssm_nodes
regions:
  - eu-central-1
filters:
  tag:HybridName: dc-onboard
ping_status:
  - Online
hostnames:
  - tag:Hostname
  - computer_name
  - instance_id
keyed_groups:
  - key: ssm_ping_status
    prefix: ssm_ping
  - key: ssm_platform_name
    prefix: os
  - key: ssm_tags.Datacenter
    prefix: dc
groups:
  agent_outdated: not (ssm_is_latest_version | default(true))

---
# Hosts reachable only through Session Manager; no tag calls; cached for 10 minutes.
plugin: hybrid.onboard.ssm_nodes
regions:
  - eu-central-1
  - eu-west-1
tags: false
hostnames:
  - instance_id
use_ssm_connection: true
compose:
  ansible_aws_ssm_bucket_name: "'dc-onboard-ssm-transfer'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/hybrid-onboard/inventory
cache_timeout: 600
"""

import hashlib
import json
from datetime import datetime, timezone

try:
    import botocore
except ImportError:
    pass  # Handled by require_aws_sdk() in parse()

import yaml
from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

# Hostname sources besides tag:<Key>, and the node field each one reads.
HOSTNAME_SOURCES = ("computer_name", "ip_address", "instance_id")

# DescribeInstanceInformation field -> our name (host variable ssm_<name>).
FIELDS = (
    ("InstanceId", "instance_id"),
    ("ResourceType", "resource_type"),
    ("PingStatus", "ping_status"),
    ("LastPingDateTime", "last_ping_date_time"),
    ("PlatformType", "platform_type"),
    ("PlatformName", "platform_name"),
    ("PlatformVersion", "platform_version"),
    ("AgentVersion", "agent_version"),
    ("IsLatestVersion", "is_latest_version"),
    ("IPAddress", "ip_address"),
    ("ComputerName", "computer_name"),
    ("Name", "name"),
    ("ActivationId", "activation_id"),
    ("IamRole", "iam_role"),
    ("RegistrationDate", "registration_date"),
    ("AssociationStatus", "association_status"),
)

# The largest page DescribeInstanceInformation serves.
PAGE_SIZE = 50
# tag:GetResources takes at most 100 ARNs per call.
TAG_BATCH = 100

# Same retry policy as module_utils/hybrid_aws.py (controller-side plugins cannot import our module_utils):
# throttling and transient errors, jittered backoff, per call.
RETRY = AWSRetry.jittered_backoff(
    retries=10, delay=1, max_delay=30, catch_extra_error_codes=["ThrottlingException", "TooManyUpdates"]
)

# The options that change what AWS is asked (part of the cache key).
QUERY_OPTIONS = (
    "regions",
    "filters",
    "ping_status",
    "include_ec2",
    "tags",
    "profile",
    "endpoint_url",
    "assume_role_arn",
)

# Error codes with which AWS rejects the filters (the user's to fix, not a transient failure).
FILTER_ERRORS = ("InvalidFilterKey", "InvalidInstanceInformationFilterValue", "InvalidFilter", "InvalidInstanceId")


def api_filters(filters, ping_status, include_ec2):
    """The DescribeInstanceInformation ``Filters`` for the options; ValueError names the option that is wrong."""
    result = []
    for key, values in (filters or {}).items():
        if not isinstance(values, list):
            values = [values]
        if not values or any(v is None or isinstance(v, (dict, list)) for v in values):
            raise ValueError(f"filters: {key} must be a value or a non-empty list of values, got {values!r}")
        result.append({"Key": to_text(key), "Values": [to_text(v) for v in values]})
    keys = {f["Key"] for f in result}
    if "PingStatus" in keys:
        raise ValueError(
            "filters: put ping statuses in the ping_status option (e.g. ping_status: [Online]), "
            "not under filters.PingStatus"
        )
    if ping_status:
        result.append({"Key": "PingStatus", "Values": list(ping_status)})
    if not include_ec2:
        resource_types = next((f["Values"] for f in result if f["Key"] == "ResourceType"), None)
        if resource_types is None:
            result.append({"Key": "ResourceType", "Values": ["ManagedInstance"]})
        elif "EC2Instance" in resource_types:
            raise ValueError("filters: ResourceType EC2Instance lists EC2 instances; set include_ec2: true for them")
    return result


def check_hostnames(hostnames, tags):
    """ValueError naming the option when a hostname source is unknown (or needs tags that are not read)."""
    if not hostnames:
        raise ValueError(f"hostnames must name at least one source: {', '.join(HOSTNAME_SOURCES)} or tag:<Key>")
    for source in hostnames:
        if source in HOSTNAME_SOURCES:
            continue
        if isinstance(source, str) and source.startswith("tag:") and len(source) > 4:
            if not tags:
                raise ValueError(f"hostnames: {source} needs the tags; set tags: true or drop {source}")
            continue
        raise ValueError(
            f"hostnames: {source!r} is not allowed; use {', '.join(HOSTNAME_SOURCES)} or tag:<Key> (e.g. tag:Name)"
        )


def _iso(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return value


def node_record(row, region):
    """One DescribeInstanceInformation row as a JSON-safe dict (what the cache holds)."""
    node = {name: _iso(row.get(field)) for field, name in FIELDS}
    node["region"] = region
    return node


def is_hybrid(node):
    return to_text(node.get("instance_id") or "").startswith("mi-")


def hostname_for(node, hostnames):
    for source in hostnames:
        value = (node.get("tags") or {}).get(source[4:]) if source.startswith("tag:") else node.get(source)
        if value not in (None, ""):
            return to_text(value)
    return None


def preference(node):
    """Sort key among nodes that got the same name: Online first, then latest ping, then latest registration."""
    return (
        node.get("ping_status") == "Online",
        node.get("last_ping_date_time") or "",
        node.get("registration_date") or "",
    )


def host_vars(node, use_ssm_connection):
    variables = {f"ssm_{name}": node.get(name) for _field, name in FIELDS}
    variables["ssm_region"] = node["region"]
    if "tags" in node:
        variables["ssm_tags"] = node["tags"]
    if use_ssm_connection:
        variables["ansible_connection"] = "amazon.aws.aws_ssm"
        variables["ansible_host"] = node["instance_id"]
        variables["ansible_aws_ssm_region"] = node["region"]
    elif node.get("ip_address"):
        variables["ansible_host"] = node["ip_address"]
    return variables


class InventoryModule(AWSInventoryBase):
    NAME = "hybrid.onboard.ssm_nodes"
    INVENTORY_FILE_SUFFIXES = ("ssm_nodes.yml", "ssm_nodes.yaml", "aws_ssm.yml", "aws_ssm.yaml")

    def verify_file(self, path):
        if not super().verify_file(path):
            self.display.vvv(
                f"ssm_nodes: skipping {path}: the file name must end in {', '.join(self.INVENTORY_FILE_SUFFIXES)}"
            )
            return False
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            return True  # parse() reports what is wrong with the file
        if not isinstance(data, dict):
            return True
        names = {self.NAME, *(getattr(self, "_redirected_names", None) or [])}
        return data.get("plugin") in names

    def _do_fail(self, message):
        raise AnsibleParserError(message)

    def get_option(self, option, hostvars=None):
        # AWSInventoryBase templates list and dict options with a deprecated templar argument (a deprecation
        # warning on every run); template ours the plain way.
        if option not in ("regions", "filters"):
            return super().get_option(option, hostvars)
        value = super(AWSInventoryBase, self).get_option(option, hostvars)
        if not value or not self.templar:
            return value
        if isinstance(value, dict):
            return {k: self.templar.template(v) for k, v in value.items()}
        return [self.templar.template(v) for v in value]

    def get_cache_key(self, path):
        # The options that change the answer are part of the key: editing them must not serve the old answer.
        query = {option: self.get_option(option) for option in QUERY_OPTIONS}
        query["region"] = self.region
        digest = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:12]
        return f"{super().get_cache_key(path)}_{digest}"

    def _regions(self, path):
        regions = list(dict.fromkeys(self.get_option("regions") or []))
        if not regions and self.region:
            regions = [self.region]
        if not regions:
            self.fail_aws(
                f"no region to list managed nodes in: set regions (e.g. [eu-central-1]) in {path}, "
                "or region, AWS_REGION or the profile's region"
            )
        return regions

    def _describe(self, client, region, filters):
        nodes = []
        kwargs = {"Filters": filters, "MaxResults": PAGE_SIZE}
        try:
            while True:
                page = client.describe_instance_information(aws_retry=True, **kwargs)
                nodes.extend(node_record(row, region) for row in page.get("InstanceInformationList", []))
                if not page.get("NextToken"):
                    return nodes
                kwargs["NextToken"] = page["NextToken"]
        except is_boto3_error_code(list(FILTER_ERRORS)) as e:
            self.fail_aws(
                f"filters: AWS rejected the filters {filters} in {region} (allowed keys: InstanceIds, "
                "AgentVersion, PlatformTypes, ActivationIds, IamRole, ResourceType, AssociationStatus, "
                "tag-key, tag:<Key>)",
                exception=e,
            )
        except is_boto3_error_code(["AccessDeniedException", "UnauthorizedOperation"]) as e:
            self.fail_aws(
                f"not allowed to list managed nodes in {region}: the credentials need ssm:DescribeInstanceInformation",
                exception=e,
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(f"Failed to describe managed nodes (DescribeInstanceInformation) in {region}", exception=e)

    def _listed_tags(self, region, ids):
        """``{instance_id: tags}`` of the nodes among ``ids`` that tag:GetResources lists (tagged ones), 100 nodes a
        call; None when the credentials may not make these calls (a warning says so)."""
        if not ids:
            return {}
        denied = ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"]
        try:
            caller = self.client("sts", region=region, retry_decorator=RETRY).get_caller_identity(aws_retry=True)
            prefix = f"arn:{caller['Arn'].split(':')[1]}:ssm:{region}:{caller['Account']}:managed-instance/"
            tagging = self.client("resourcegroupstaggingapi", region=region, retry_decorator=RETRY)
            listed = {}
            for start in range(0, len(ids), TAG_BATCH):
                answer = tagging.get_resources(
                    aws_retry=True, ResourceARNList=[prefix + i for i in ids[start : start + TAG_BATCH]]
                )
                for mapping in answer.get("ResourceTagMappingList", []):
                    listed[mapping["ResourceARN"].rsplit("/", 1)[-1]] = boto3_tag_list_to_ansible_dict(
                        mapping.get("Tags", [])
                    )
            return listed
        except is_boto3_error_code(denied):
            self.display.warning(
                f"ssm_nodes: sts:GetCallerIdentity or tag:GetResources is denied in {region}: reading each node's "
                "tags with ssm:ListTagsForResource, one call per node"
            )
            return None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self.fail_aws(f"Failed to read the managed nodes' tags (tag:GetResources) in {region}", exception=e)

    def _add_tags(self, client, region, nodes):
        """Tags of each hybrid node: in batches (tag:GetResources), else one ListTagsForResource each, dropping the
        nodes deregistered meanwhile."""
        listed = self._listed_tags(region, [n["instance_id"] for n in nodes if is_hybrid(n)])
        if listed is not None:
            for node in nodes:
                if is_hybrid(node):
                    node["tags"] = listed.get(node["instance_id"], {})
            return nodes
        kept = []
        for node in nodes:
            if not is_hybrid(node):
                kept.append(node)
                continue
            try:
                answer = client.list_tags_for_resource(
                    aws_retry=True, ResourceType="ManagedInstance", ResourceId=node["instance_id"]
                )
            except is_boto3_error_code("InvalidResourceId"):
                self.display.vvv(f"ssm_nodes: {node['instance_id']} was deregistered while being listed")
                continue
            except is_boto3_error_code(["AccessDeniedException", "UnauthorizedOperation"]) as e:
                self.fail_aws(
                    f"not allowed to read the tags of {node['instance_id']} in {region}: the credentials "
                    "need ssm:ListTagsForResource, or set tags: false",
                    exception=e,
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.fail_aws(
                    f"Failed to list the tags of {node['instance_id']} (ListTagsForResource) in {region}", exception=e
                )
            node["tags"] = boto3_tag_list_to_ansible_dict(answer.get("TagList", []))
            kept.append(node)
        return kept

    def _query(self, regions, filters, tags):
        nodes = []
        for region in regions:
            client = self.client("ssm", region=region, retry_decorator=RETRY)
            found = self._describe(client, region, filters)  # EC2 instances only if include_ec2 (api_filters)
            nodes.extend(self._add_tags(client, region, found) if tags else found)
        return nodes

    def _populate(self, nodes, hostnames, use_ssm_connection):
        chosen = {}
        for node in nodes:
            name = hostname_for(node, hostnames)
            if name is None:
                self.warn(
                    f"ssm_nodes: {node['instance_id']} ({node['region']}) is left out: it has no value for any "
                    f"of hostnames {hostnames}; add instance_id to hostnames to list it"
                )
                continue
            other = chosen.get(name)
            if other is not None:
                keep, drop = (node, other) if preference(node) > preference(other) else (other, node)
                self.warn(
                    f"ssm_nodes: {keep['instance_id']} and {drop['instance_id']} are both named {name}; "
                    f"{drop['instance_id']} ({drop['ping_status']}) is left out. Deregister the stale node, "
                    "or put instance_id first in hostnames"
                )
                node = keep
            chosen[name] = node

        strict = self.get_option("strict")
        for name in sorted(chosen):
            self.inventory.add_host(name)
            for key, value in host_vars(chosen[name], use_ssm_connection).items():
                self.inventory.set_variable(name, key, value)
            # compose sees everything set so far (ours and other sources'), and may override ansible_host.
            self._set_composite_vars(
                self.get_option("compose"), self.inventory.get_host(name).get_vars(), name, strict=strict
            )
            variables = self.inventory.get_host(name).get_vars()
            self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        include_ec2 = self.get_option("include_ec2")
        tags = self.get_option("tags")
        hostnames = self.get_option("hostnames")
        try:
            check_hostnames(hostnames, tags)
            filters = api_filters(self.get_option("filters"), self.get_option("ping_status"), include_ec2)
        except ValueError as e:
            self.fail_aws(f"{e} (in {path})")
        regions = self._regions(path)

        cached, nodes = self.get_cached_result(path, cache)
        if not cached:
            nodes = self._query(regions, filters, tags)
        self._populate(nodes, hostnames, self.get_option("use_ssm_connection"))
        self.update_cached_result(path, cache, nodes)
