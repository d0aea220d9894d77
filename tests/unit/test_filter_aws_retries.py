"""plugins/filter/aws_retries.py: botocore's retry settings every play sets, checked."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

retries = load_plugin("filter", "aws_retries")


@pytest.mark.parametrize(
    "mode, attempts, expected",
    [
        ("standard", 10, {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "10"}),
        ("adaptive", "25", {"AWS_RETRY_MODE": "adaptive", "AWS_MAX_ATTEMPTS": "25"}),  # -e gives strings
        ("legacy", 1, {"AWS_RETRY_MODE": "legacy", "AWS_MAX_ATTEMPTS": "1"}),
        ("standard", 50, {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "50"}),
    ],
)
def test_good_values_become_the_environment(mode, attempts, expected):
    assert retries.aws_retry_env(mode, attempts) == expected


@pytest.mark.parametrize(
    "mode, attempts, variable",
    [
        ("fast", 10, "hybrid_aws_retry_mode"),
        ("Standard", 10, "hybrid_aws_retry_mode"),
        (None, 10, "hybrid_aws_retry_mode"),
        ("standard", 0, "hybrid_aws_max_attempts"),
        ("standard", 51, "hybrid_aws_max_attempts"),
        ("standard", "ten", "hybrid_aws_max_attempts"),
        ("standard", -3, "hybrid_aws_max_attempts"),
        ("standard", True, "hybrid_aws_max_attempts"),
        ("standard", 2.5, "hybrid_aws_max_attempts"),
    ],
)
def test_bad_values_name_the_variable(mode, attempts, variable):
    with pytest.raises(AnsibleFilterError, match=variable):
        retries.aws_retry_env(mode, attempts)
