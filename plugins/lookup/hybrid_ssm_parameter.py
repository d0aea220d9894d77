# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: hybrid_ssm_parameter
short_description: Read (and decrypt) one SSM parameter with the play's AWS retry settings
version_added: 0.3.0
description:
  - Returns the value of each named SSM Parameter Store parameter, decrypted when it is a SecureString, like
    P(amazon.aws.ssm_parameter#lookup) does for a name.
  - A lookup runs in the controller's own process, where a play's C(environment) (C(hybrid_aws_environment), which
    sets C(AWS_RETRY_MODE) and C(AWS_MAX_ATTEMPTS)) does not reach. P(amazon.aws.ssm_parameter#lookup) is then left with
    botocore's default of 3 attempts, and its own retry wrapper does not know SSM's C(ThrottlingException), so a
    throttled account fails the task. This lookup gives botocore the same retry settings as the play's modules.
  - The value is returned, never logged; use it only inside a C(no_log) task's arguments when it is a secret.
options:
  _terms:
    description: The parameters' names.
    required: true
  decrypt:
    description: Decrypt a SecureString's value (C(WithDecryption)); V(false) to see only that it exists.
    type: bool
    default: true
  on_missing:
    description: What a missing parameter gives, V(error) (fail) or V(skip) (an empty string).
    type: str
    choices: [error, skip]
    default: error
  retry_mode:
    description: botocore's retry mode, V(standard), V(adaptive) or V(legacy); the play's C(hybrid_aws_retry_mode)
      when set.
    type: str
    default: standard
    vars:
      - name: hybrid_aws_retry_mode
  max_attempts:
    description: botocore's attempts per call, 1-50; the play's C(hybrid_aws_max_attempts) when set.
    type: int
    default: 10
    vars:
      - name: hybrid_aws_max_attempts
extends_documentation_fragment:
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
"""

EXAMPLES = r"""
- name: Hand the activation's id to a module without keeping the decrypted value in a variable
  hybrid.onboard.ssm_activation:
    name: lab
    known_activation_id: >-
      {{ (lookup('hybrid.onboard.hybrid_ssm_parameter', '/hybrid-onboard/lab/activation', region='eu-west-1',
                 on_missing='skip') | default('{}', true) | from_json).id | default('') }}
  no_log: true
"""

RETURN = r"""
_raw:
  description: One value per name (an empty string for a missing one with O(on_missing=skip)).
  type: list
  elements: str
"""

try:
    import botocore
    import botocore.config
except ImportError:
    pass  # amazon.aws's plugin base reports a missing SDK

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.plugin_utils.lookup import AWSLookupBase
# The one check of the retry settings (the aws_retry_env filter of this collection).
from ansible_collections.hybrid.onboard.plugins.filter.aws_retries import aws_retry_env


def retry_config(mode, attempts):
    """botocore's retry settings, checked as every play's environment is (the variable named when wrong)."""
    env = aws_retry_env(mode, attempts)
    # total_max_attempts counts the first try, as AWS_MAX_ATTEMPTS does (Config's max_attempts would not).
    return botocore.config.Config(
        retries={"mode": env["AWS_RETRY_MODE"], "total_max_attempts": int(env["AWS_MAX_ATTEMPTS"])}
    )


class LookupModule(AWSLookupBase):
    def run(self, terms, variables=None, **kwargs):
        super().run(terms, variables, **kwargs)
        on_missing, decrypt = self.get_option("on_missing"), self.get_option("decrypt")
        config = retry_config(self.get_option("retry_mode"), self.get_option("max_attempts"))
        client = self.client("ssm", config=config)
        values = []
        for name in terms:
            try:
                values.append(client.get_parameter(Name=name, WithDecryption=decrypt)["Parameter"]["Value"])
            except is_boto3_error_code("ParameterNotFound"):
                if on_missing == "error":
                    raise AnsibleLookupError("SSM parameter %s does not exist in %s" % (name, self.region)) from None
                values.append("")
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
                raise AnsibleLookupError("Failed to read SSM parameter %s: %s" % (name, to_native(e))) from e
        return values
