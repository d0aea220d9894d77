"""IAM actions moto 5.2.5 lacks that real clients call: amazon.aws.iam_user (state absent) lists a user's
service-specific credentials before deleting the user. The lab never creates such credentials (they are
CodeCommit/Keyspaces passwords), so the faithful answer for any existing user is an empty list; an unknown
user gets IAM's NoSuchEntity, as AWS answers."""

from __future__ import annotations


def install() -> None:
    """Add ListServiceSpecificCredentials to moto's IAM responses (idempotent)."""
    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse

    if getattr(IamResponse, "_hybrid_lab_iam_ext", False):
        return

    def list_service_specific_credentials(self) -> ActionResult:
        user_name = self._get_param("UserName")
        if user_name:
            self.backend.get_user(user_name)  # raises NoSuchEntity for an unknown user
        return ActionResult({"ServiceSpecificCredentials": []})

    IamResponse.list_service_specific_credentials = list_service_specific_credentials
    IamResponse._hybrid_lab_iam_ext = True
