"""Unit tests for the agent download URL filters (plugins/filter/hybrid_urls.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

urls = load_plugin("filter", "hybrid_urls")
VPCE = "*.vpce-0123abcd-4567efgh.s3.eu-west-1.vpce.amazonaws.com"


CW = "https://s3.eu-west-1.amazonaws.com/amazoncloudwatch-agent-eu-west-1"
KEY = "debian/amd64/latest/amazon-cloudwatch-agent.deb"


def test_cw_regional_path_default():
    assert urls.cw_agent_url("eu-west-1") == f"{CW}/{KEY}"


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"arch": "arm64", "os_dir": "ubuntu"}, f"{CW}/ubuntu/arm64/latest/amazon-cloudwatch-agent.deb"),
        ({"os_dir": "redhat", "pkg": "rpm"}, f"{CW}/redhat/amd64/latest/amazon-cloudwatch-agent.rpm"),
        ({"version": "1.300057.1"}, f"{CW}/debian/amd64/1.300057.1/amazon-cloudwatch-agent.deb"),
        ({"mode": "regional_virtual"},
         f"https://amazoncloudwatch-agent-eu-west-1.s3.eu-west-1.amazonaws.com/{KEY}"),
        ({"mode": "endpoint", "s3_endpoint_dns": VPCE},
         f"https://bucket.vpce-0123abcd-4567efgh.s3.eu-west-1.vpce.amazonaws.com/amazoncloudwatch-agent-eu-west-1/{KEY}"),
        ({"mode": "mirror", "mirror": "https://repo.dc1.example/aws/"},
         f"https://repo.dc1.example/aws/amazoncloudwatch-agent-eu-west-1/{KEY}"),
    ],
)
def test_cw_modes(kwargs, expected):
    assert urls.cw_agent_url("eu-west-1", **kwargs) == expected


def test_cw_debian_arm64_uses_ubuntu_build():
    assert urls.cw_agent_url("eu-west-1", arch="arm64") == (
        "https://s3.eu-west-1.amazonaws.com/amazoncloudwatch-agent-eu-west-1/ubuntu/arm64/latest/"
        "amazon-cloudwatch-agent.deb"
    )
    assert urls.cw_agent_url("eu-west-1", os_dir="redhat", pkg="rpm").endswith(
        "/amazoncloudwatch-agent-eu-west-1/redhat/amd64/latest/amazon-cloudwatch-agent.rpm"
    )


def test_no_global_s3_urls():
    for mode in ("regional_path", "regional_virtual"):
        assert "//s3.amazonaws.com" not in urls.cw_agent_url("us-east-1", mode=mode)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"region": "eu-west"}, "region"),
        ({"region": "eu-west-1", "arch": "386x"}, "arch"),
        ({"region": "eu-west-1", "pkg": "tgz"}, "pkg"),
        ({"region": "eu-west-1", "os_dir": "windows"}, "os_dir"),
        ({"region": "eu-west-1", "version": "newest"}, "version"),
        ({"region": "eu-west-1", "mode": "global"}, "mode"),
        ({"region": "eu-west-1", "mode": "endpoint"}, "s3_endpoint_dns"),
        ({"region": "eu-west-1", "mode": "endpoint", "s3_endpoint_dns": "s3.eu-west-1.amazonaws.com"}, "s3 endpoint"),
        ({"region": "eu-west-1", "mode": "mirror", "mirror": "ftp://x"}, "mirror"),
    ],
)
def test_bad_input_names_the_argument(kwargs, word):
    with pytest.raises(AnsibleFilterError, match=word):
        urls.cw_agent_url(**kwargs)


def test_filter_module_exports():
    assert set(urls.FilterModule().filters()) == {
        "cw_agent_url", "s3_endpoint_host", "s3_endpoint_regional_dns"}


def s3_endpoint(endpoint_id, state="available", kind="Interface", zonal_first=True):
    """An ec2_vpc_endpoint_info entry of an S3 endpoint: its zonal DNS name (as AWS lists it, often first) and its
    regional one."""
    regional = {"dns_name": f"*.{endpoint_id}.s3.eu-west-1.vpce.amazonaws.com"}
    zonal = {"dns_name": f"*.{endpoint_id}-eu-west-1a.s3.eu-west-1.vpce.amazonaws.com"}
    entries = [zonal, regional] if zonal_first else [regional, zonal]
    return {"vpc_endpoint_type": kind, "state": state, "dns_entries": entries if kind == "Interface" else []}


def test_s3_endpoint_regional_dns_picks_the_regional_name_of_a_usable_interface_endpoint():
    pick = urls.s3_endpoint_regional_dns
    assert pick([s3_endpoint("vpce-0a-1b")]) == "*.vpce-0a-1b.s3.eu-west-1.vpce.amazonaws.com"
    assert pick([s3_endpoint("vpce-0a-1b", zonal_first=False)]) == "*.vpce-0a-1b.s3.eu-west-1.vpce.amazonaws.com"
    # A gateway endpoint, or an interface endpoint on its way out, is passed over for the next usable one.
    for unusable in (s3_endpoint("vpce-9a-9b", kind="Gateway"), s3_endpoint("vpce-9a-9b", state="deleting"),
                     s3_endpoint("vpce-9a-9b", state="rejected")):
        assert pick([unusable, s3_endpoint("vpce-0c-1d")]) == "*.vpce-0c-1d.s3.eu-west-1.vpce.amazonaws.com"
        assert pick([unusable]) == ""
    # Nothing looked up (the lookup task skipped) or nothing found: no name, and the role's own check says why.
    assert pick([]) == "" and pick(None) == ""
    with pytest.raises(AnsibleFilterError, match="list of vpc_endpoints"):
        pick({"vpc_endpoints": []})


def test_region_is_checked_by_the_one_aws_region_definition():
    # plugins/test/aws_region.py: two-digit suffixes are regions, a trailing newline is not.
    assert urls.cw_agent_url("ap-southeast-12").startswith("https://s3.ap-southeast-12.amazonaws.com/")
    with pytest.raises(AnsibleFilterError, match="region must look like"):
        urls.cw_agent_url("eu-west-1\n")
