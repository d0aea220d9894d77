# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared base for hybrid-onboard's AWS modules.

Built on amazon.aws's ``AnsibleAWSModule`` and ``AWSRetry`` (not a re-implementation of either). Every module
of ours follows one shape, so check mode, diff and idempotence work the same in each:

    describe -> compute the difference -> (check mode: report) -> act -> re-describe -> exit_json

and this holds the small pieces every module needs for it: a retrying client, a field-by-field difference that
ignores parameters the user did not set, tag comparison with amazon.aws semantics, and snake-cased
results with tags as a plain dict and secrets taken out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
# Imported from here by the modules: the one base class they all share.
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: F401 pylint: disable=unused-import
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    ansible_dict_to_boto3_tag_list,
    boto3_tag_list_to_ansible_dict,
    compare_aws_tags,
)

# Throttling and transient server errors are retried with jittered backoff. botocore already retries a
# few times on its own; this outer retry is for the bursts a fleet-wide run causes.
RETRY_CODES = ["ThrottlingException", "TooManyUpdates", "OperationInProgress"]


def retry_decorator(retries=10, delay=1, max_delay=30, extra_codes=None):
    """The jittered-backoff AWSRetry decorator our modules use."""
    codes = list(RETRY_CODES) + list(extra_codes or [])
    return AWSRetry.jittered_backoff(retries=retries, delay=delay, max_delay=max_delay, catch_extra_error_codes=codes)


def aws_client(module, service, extra_codes=None):
    """A boto3 client whose calls retry on throttling when called with ``aws_retry=True``."""
    return module.client(service, retry_decorator=retry_decorator(extra_codes=extra_codes))


def paginate(client, operation, result_key, **kwargs):
    """All items of a paginated list call, retried as a whole on throttling."""

    @retry_decorator()
    def _all():
        paginator = client.get_paginator(operation)
        return paginator.paginate(**kwargs).build_full_result().get(result_key, [])

    return _all()


def _normalise(value, unordered):
    if isinstance(value, dict):
        return {k: _normalise(v, unordered) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_normalise(v, unordered) for v in value]
        if unordered:
            return sorted(items, key=repr)
        return items
    return value


def changed_fields(current, wanted, unordered_keys=()):
    """Fields of ``wanted`` whose value differs from ``current``.

    A key whose wanted value is ``None`` is a parameter the user did not set: it is never reported as a
    change (so never changed). Lists named in ``unordered_keys`` compare as sets (subnet ids, security
    groups); other lists compare in order. Returns ``{key: wanted_value}``.
    """
    current = current or {}
    changes = {}
    for key, value in wanted.items():
        if value is None:
            continue
        unordered = key in unordered_keys
        if _normalise(current.get(key), unordered) != _normalise(value, unordered):
            changes[key] = value
    return changes


def tag_changes(current_tags, wanted_tags, purge_tags=True):
    """Tags to set and keys to remove; ``wanted_tags=None`` leaves tags alone. ``aws:`` keys are kept."""
    if wanted_tags is None:
        return {}, []
    return compare_aws_tags(current_tags or {}, wanted_tags, purge_tags=purge_tags)


def tags_from_boto3(tag_list):
    """``[{'Key': k, 'Value': v}]`` -> ``{k: v}`` (None and [] give {})."""
    return boto3_tag_list_to_ansible_dict(tag_list or [])


def tags_to_boto3(tags):
    """``{k: v}`` -> ``[{'Key': k, 'Value': v}]``."""
    return ansible_dict_to_boto3_tag_list(tags or {})


def redact(data, secret_keys):
    """A deep copy of ``data`` without the keys in ``secret_keys`` (at any depth)."""
    if isinstance(data, dict):
        return {k: redact(v, secret_keys) for k, v in data.items() if k not in secret_keys}
    if isinstance(data, list):
        return [redact(v, secret_keys) for v in data]
    return copy.deepcopy(data)


def snake_result(resource, secret_keys=(), tag_key="Tags"):
    """A resource described by boto3 as Ansible returns it: snake_case keys, tags as a dict, no secrets.

    Tag keys and values are kept as they are (``ignore_list``): users match on them exactly.
    """
    if resource is None:
        return {}
    resource = redact(resource, set(secret_keys))
    tags = resource.pop(tag_key, None)
    result = camel_dict_to_snake_dict(resource)
    if tags is not None:
        result["tags"] = tags_from_boto3(tags) if isinstance(tags, list) else dict(tags)
    return result
