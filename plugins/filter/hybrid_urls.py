# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Agent download URLs for closed networks (no global ``s3.amazonaws.com`` URLs, any arch).

Pure functions, used as Jinja filters by the agent roles:

- ``cw_agent_url``: ``https://s3.<region>.amazonaws.com/amazoncloudwatch-agent-<region>/<os>/<arch>/<version>/``
  ``amazon-cloudwatch-agent.<pkg>`` and its virtual-hosted, endpoint-specific (``bucket.vpce-…``) and mirror forms.
- ``s3_endpoint_host``: the ``bucket.vpce-…`` host name from an S3 interface endpoint's DNS entry.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
# The one definition of a region code (the aws_region test plugin of this collection).
from ansible_collections.hybrid.onboard.plugins.test.aws_region import aws_region


URL_MODES = ("endpoint", "regional_path", "regional_virtual", "mirror")
ARCHES = ("amd64", "arm64")
PACKAGE_TYPES = ("deb", "rpm")
CW_OS_DIRS = ("debian", "ubuntu", "redhat", "amazon_linux", "suse")
_VERSION_RE = re.compile(r"^(latest|\d+(\.\d+){2,3})$")
_VPCE_S3_RE = re.compile(r"^\*?\.?(vpce-[0-9a-z]+-[0-9a-z]+(-[a-z0-9-]+)?\.s3\.[a-z0-9-]+\.vpce\.amazonaws\.com)$")
_UNUSABLE_ENDPOINT_STATES = frozenset({"deleted", "deleting", "failed", "rejected"})


def _check(name, value, allowed):
    if value not in allowed:
        raise AnsibleFilterError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_common(region, arch, pkg, version, mode):
    if not aws_region(region):
        raise AnsibleFilterError(f"region must look like 'eu-west-1'; got {region!r}")
    _check("arch", arch, ARCHES)
    _check("pkg", pkg, PACKAGE_TYPES)
    _check("mode", mode, URL_MODES)
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise AnsibleFilterError(f"version must be 'latest' or a dotted version like '3.3.1142.0'; got {version!r}")


def s3_endpoint_host(dns_name):
    """``*.vpce-0a-1b.s3.eu-west-1.vpce.amazonaws.com`` -> ``bucket.vpce-0a-1b.s3.eu-west-1.vpce.amazonaws.com``."""
    match = _VPCE_S3_RE.match(dns_name or "")
    if not match:
        raise AnsibleFilterError(
            f"s3 endpoint DNS name must be the S3 interface endpoint's regional name "
            f"('*.vpce-….s3.<region>.vpce.amazonaws.com'); got {dns_name!r}"
        )
    return "bucket." + match.group(1)


def s3_endpoint_regional_dns(vpc_endpoints):
    """The regional DNS name (``*.vpce-….s3.<region>.vpce.amazonaws.com``) of the first usable S3 interface endpoint
    in ``amazon.aws.ec2_vpc_endpoint_info``'s ``vpc_endpoints``; ``''`` when there is none. Gateway endpoints and
    endpoints deleted, deleting, failed or rejected do not count."""
    if vpc_endpoints is None:
        return ""
    if not isinstance(vpc_endpoints, list):
        raise AnsibleFilterError(f"s3_endpoint_regional_dns needs the list of vpc_endpoints; got {vpc_endpoints!r}")
    for endpoint in vpc_endpoints:
        if endpoint.get("vpc_endpoint_type") != "Interface" or endpoint.get("state") in _UNUSABLE_ENDPOINT_STATES:
            continue
        for entry in endpoint.get("dns_entries") or []:
            # The regional name: the wildcard one with no zone after the endpoint id (group 2 is the zone).
            name = entry.get("dns_name") or ""
            match = _VPCE_S3_RE.match(name)
            if match and name.startswith("*.") and match.group(2) is None:
                return name
    return ""


def _url(mode, region, bucket, key, s3_endpoint_dns=None, mirror=None):
    if mode == "endpoint":
        if not s3_endpoint_dns:
            raise AnsibleFilterError("mode 'endpoint' needs s3_endpoint_dns (the S3 interface endpoint's DNS name)")
        return f"https://{s3_endpoint_host(s3_endpoint_dns)}/{bucket}/{key}"
    if mode == "regional_path":
        return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"
    if mode == "regional_virtual":
        return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
    if not mirror or not re.match(r"^https?://", mirror):
        raise AnsibleFilterError(f"mode 'mirror' needs mirror, an http(s) base URL; got {mirror!r}")
    return f"{mirror.rstrip('/')}/{bucket}/{key}"


def cw_agent_url(region, os_dir="debian", arch="amd64", pkg="deb", version="latest", mode="regional_path",
                 s3_endpoint_dns=None, mirror=None):
    """Download URL of the CloudWatch Agent package; there is no debian/arm64 build, ubuntu/arm64 serves it."""
    _check_common(region, arch, pkg, version, mode)
    _check("os_dir", os_dir, CW_OS_DIRS)
    if os_dir == "debian" and arch == "arm64":
        os_dir = "ubuntu"
    return _url(mode, region, f"amazoncloudwatch-agent-{region}",
                f"{os_dir}/{arch}/{version}/amazon-cloudwatch-agent.{pkg}", s3_endpoint_dns, mirror)


class FilterModule(object):
    """Agent download URL filters."""

    def filters(self):
        return {
            "cw_agent_url": cw_agent_url,
            "s3_endpoint_host": s3_endpoint_host,
            "s3_endpoint_regional_dns": s3_endpoint_regional_dns,
        }
