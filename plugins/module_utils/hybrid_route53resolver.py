# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Route 53 Resolver endpoint lookups shared by route53_resolver_endpoint and route53_resolver_endpoint_info."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import paginate, snake_result, tags_from_boto3
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code


class Resolver:
    """Resolver endpoints with their addresses and tags (lookups shared by the resolver modules)."""

    def __init__(self, module, client):
        self.module = module
        self.client = client

    def call(self, msg, method, **kwargs):
        try:
            return getattr(self.client, method)(aws_retry=True, **kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=msg)

    def list(self, filters):
        try:
            return paginate(self.client, "list_resolver_endpoints", "ResolverEndpoints", Filters=filters)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Failed to list resolver endpoints")

    def find_by_name(self, name):
        matches = [e for e in self.list([{"Name": "Name", "Values": [name]}]) if e.get("Name") == name]
        if len(matches) > 1:
            self.module.fail_json(
                msg="name: %d resolver endpoints are called %s (%s); names must be unique for this module"
                % (len(matches), name, ", ".join(e["Id"] for e in matches))
            )
        return matches[0] if matches else None

    def get(self, endpoint_id):
        try:
            return self.client.get_resolver_endpoint(aws_retry=True, ResolverEndpointId=endpoint_id)["ResolverEndpoint"]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to get resolver endpoint %s" % endpoint_id)

    def ip_addresses(self, endpoint_id):
        try:
            return paginate(
                self.client,
                "list_resolver_endpoint_ip_addresses",
                "IpAddresses",
                ResolverEndpointId=endpoint_id,
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Failed to list the addresses of resolver endpoint %s" % endpoint_id)

    def tags(self, arn):
        try:
            return tags_from_boto3(paginate(self.client, "list_tags_for_resource", "Tags", ResourceArn=arn))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Failed to list the tags of %s" % arn)

    def result(self, endpoint, ips=None, tags=None):
        """snake_case endpoint with its addresses and tags; ``ips``/``tags`` are looked up when not given."""
        if ips is None:
            ips = self.ip_addresses(endpoint["Id"])
        if tags is None:
            tags = self.tags(endpoint["Arn"])
        result = snake_result(endpoint)
        result["ip_addresses"] = [
            {"ip": ip.get("Ip"), "subnet_id": ip.get("SubnetId"), "ip_id": ip.get("IpId"), "status": ip.get("Status")}
            for ip in ips
        ]
        result["tags"] = tags
        return result
