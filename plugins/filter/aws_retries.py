# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``hybrid_aws_retry_mode | aws_retry_env(hybrid_aws_max_attempts)``: the environment every play sets for
botocore's retries (AWS_RETRY_MODE, AWS_MAX_ATTEMPTS), with both inputs checked.

A wrong value fails the play's first task, before any change, naming the variable; without the check botocore
would only complain from inside the first AWS module, in its own words.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

RETRY_MODES = ("legacy", "standard", "adaptive")
MAX_ATTEMPTS = 50  # a run that must ride out more than 50 attempts of one call is better stopped and looked at


def aws_retry_env(mode, attempts):
    """{AWS_RETRY_MODE, AWS_MAX_ATTEMPTS} for ``mode`` (legacy, standard, adaptive) and ``attempts`` (1..50)."""
    if mode not in RETRY_MODES:
        raise AnsibleFilterError(f"hybrid_aws_retry_mode must be one of {', '.join(RETRY_MODES)}; got {mode!r}")
    text = str(attempts).strip()
    if isinstance(attempts, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_ATTEMPTS:
        raise AnsibleFilterError(
            f"hybrid_aws_max_attempts must be an integer from 1 to {MAX_ATTEMPTS} (attempts per AWS call, the first "
            f"included); got {attempts!r}"
        )
    return {"AWS_RETRY_MODE": mode, "AWS_MAX_ATTEMPTS": str(int(text))}


class FilterModule(object):
    def filters(self):
        return {"aws_retry_env": aws_retry_env}
