# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``aws_region`` Jinja test: is a value an AWS region code?

One definition for every role's input check (``that: my_region is hybrid.onboard.aws_region``) instead of a regex
per role. Pure function, no AWS call: it checks the form of the code, not that the region exists or is enabled.
What it accepts is documented in aws_region.yml beside this file, where ansible-doc reads a test plugin's
documentation (``ansible-doc -t test hybrid.onboard.aws_region``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# fullmatch + [0-9]: `$` would also accept a trailing newline, `\d` non-ASCII digits.
_REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+")


def aws_region(value):
    """True if ``value`` is a string that is an AWS region code (see aws_region.yml), else False."""
    if not isinstance(value, str):
        return False
    return _REGION_RE.fullmatch(value) is not None


class TestModule(object):
    """Ansible test plugin: ``value is aws_region``."""

    def tests(self):
        return {"aws_region": aws_region}
