# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``aws_region`` Jinja test: is a value an AWS region code?

One definition for every role's input check (``that: my_region is aws_region``) instead of a regex per role.
Pure function, no AWS call: it checks the form of the code, not that the region exists or is enabled.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# DOCUMENTATION (what the test accepts):
#   name: aws_region
#   short_description: the value is an AWS region code
#   description:
#     - True for a string of the form  <2 lower-case letters>[-gov|-iso|-iso<letter>]-<lower-case word>-<number>,
#       i.e. ^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$ matched against the whole string (ASCII digits only,
#       no trailing newline or space): the region codes of the aws, aws-cn, aws-us-gov and aws-iso* partitions,
#       e.g. eu-west-1, ap-southeast-5, cn-north-1, us-gov-west-1, us-iso-east-1, us-isob-east-1.
#     - False for anything else: '', 'eu-west', 'mars-1', 'EU-WEST-1', 'eu-west-1 ', and non-strings (None, numbers,
#       lists, mappings); it never raises.
#   examples: |
#     - ansible.builtin.assert:
#         that: my_role_region is aws_region
#         fail_msg: "my_role_region must look like 'eu-west-1'; got '{{ my_role_region }}'"

import re

# fullmatch + [0-9]: `$` would also accept a trailing newline, `\d` non-ASCII digits.
_REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+")


def aws_region(value):
    """True if ``value`` is a string that is an AWS region code (see DOCUMENTATION above), else False."""
    if not isinstance(value, str):
        return False
    return _REGION_RE.fullmatch(value) is not None


class TestModule(object):
    """Ansible test plugin: ``value is aws_region``."""

    def tests(self):
        return {"aws_region": aws_region}
