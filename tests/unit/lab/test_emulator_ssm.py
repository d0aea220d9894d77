"""Tests of the lab emulator's SSM extensions (emulator/ssm_ext.py and the ssm_* modules beside it).

Everything goes over HTTP to the shared in-process emulator (fixture ``emulator`` in conftest.py):
boto3 for the public API, raw HTTP for the agent's anonymous / RSA-signed / ec2messages calls exactly
as tests/lab/PROTOCOL.md describes them, and one AWS CLI call. Tests make their own roles, activations
and nodes (the emulator is shared, never reset); time travel uses the emulator's lab clock and is
always undone.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import labconst
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PROJECT = Path(__file__).resolve().parents[3]
REGION = labconst.REGION
SSM_HOST = f"ssm.{REGION}.amazonaws.com"
EC2MESSAGES_HOST = f"ec2messages.{REGION}.amazonaws.com"
TIER = "/ssm/managed-instance/activation-tier"
# Direct opener: lab traffic is loopback only and must never go through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# One RSA key for every simulated agent keeps the tests fast; registration does not require unique keys.
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PUBLIC_DER = _KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _post(
    url: str, host: str, target: str, data: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST an SSM-family JSON call with a given Host header; returns (status, decoded body)."""
    all_headers = {"Host": host, "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    all_headers.update(headers or {})
    request = urllib.request.Request(f"{url}/", data, all_headers, method="POST")  # noqa: S310 - loopback only
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Agent:
    """A simulated SSM agent on one hybrid node: registration, role token, heartbeat, ec2messages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.instance_id = ""
        self.creds: dict[str, Any] = {}

    def register(self, activation_id: str, code: str) -> tuple[int, Any]:
        body = {
            "ActivationCode": code,
            "ActivationId": activation_id,
            "PublicKey": base64.b64encode(_PUBLIC_DER).decode(),
            "PublicKeyType": "Rsa",
            "Fingerprint": str(uuid.uuid4()),
        }
        status, answer = _post(
            self.url, SSM_HOST, "AmazonSSM.RegisterManagedInstance", json.dumps(body).encode()
        )
        if status == 200:
            self.instance_id = answer["InstanceId"]
        return status, answer

    def role_token(self, key: rsa.RSAPrivateKey = _KEY) -> tuple[int, Any]:
        data = json.dumps({"Fingerprint": "fp"}).encode()
        signature = base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()
        auth = f"SSM-RSA InstanceId={self.instance_id}, Signature={signature}"
        status, answer = _post(
            self.url, SSM_HOST, "AmazonSSM.RequestManagedInstanceRoleToken", data, {"Authorization": auth}
        )
        if status == 200:
            self.creds = answer
        return status, answer

    def signed(
        self, service: str, host: str, target: str, body: dict[str, Any], creds: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        creds = creds or self.creds
        data = json.dumps(body).encode()
        request = AWSRequest(
            method="POST",
            url=f"https://{host}/",
            data=data,
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
        )
        SigV4Auth(
            Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken")),
            service,
            REGION,
        ).add_auth(request)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("content-type", "x-amz-target")
        }
        return _post(self.url, host, target, data, headers)

    def heartbeat(self, creds: dict[str, Any] | None = None, **extra: str) -> tuple[int, Any]:
        body = {
            "InstanceId": self.instance_id,
            "AgentName": "amazon-ssm-agent",
            "AgentVersion": "3.3.1142.0",
            "AgentStatus": "Active",
            "PlatformType": "Linux",
            "PlatformName": "Debian GNU/Linux",
            "PlatformVersion": "12",
            "IPAddress": "172.16.10.101",
            "ComputerName": "host1.lab.example",
        }
        body.update(extra)
        return self.signed("ssm", SSM_HOST, "AmazonSSM.UpdateInstanceInformation", body, creds)

    def ec2messages(self, operation: str, body: dict[str, Any], creds: dict[str, Any] | None = None):
        return self.signed(
            "ec2messages", EC2MESSAGES_HOST, f"EC2WindowsMessageDeliveryService.{operation}", body, creds
        )

    def get_messages(self) -> list[dict[str, Any]]:
        status, answer = self.ec2messages(
            "GetMessages",
            {
                "Destination": self.instance_id,
                "MessagesRequestId": str(uuid.uuid4()),
                "VisibilityTimeoutInSeconds": 10,
            },
        )
        assert status == 200, answer
        assert answer["Destination"] == self.instance_id
        return answer["Messages"]

    def reply(self, message_id: str, status: str, stdout: str = "", stderr: str = "", code: int = 0):
        payload = {"status": status, "standardOutput": stdout, "standardError": stderr, "responseCode": code}
        return self.ec2messages(
            "SendReply",
            {"MessageId": message_id, "ReplyId": str(uuid.uuid4()), "Payload": json.dumps(payload)},
        )


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def ssm(emulator):
    return emulator.client("ssm")


@pytest.fixture
def role(emulator) -> str:
    """A fresh hybrid service role trusted by ssm.amazonaws.com."""
    name = f"lab-ssm-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    emulator.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return name


@pytest.fixture
def activation(ssm, role) -> dict[str, str]:
    return ssm.create_activation(
        IamRole=role,
        RegistrationLimit=5,
        DefaultInstanceName="labnode",
        Tags=[{"Key": "Project", "Value": "hybrid"}],
    )


@pytest.fixture
def clock_travel(emulator):
    """``clock_travel(seconds)`` shifts the emulator's lab clock; undone after the test."""
    yield emulator.set_clock_offset
    emulator.set_clock_offset(0)


def _online_agent(emulator, activation: dict[str, str]) -> Agent:
    agent = Agent(emulator.url)
    status, answer = agent.register(activation["ActivationId"], activation["ActivationCode"])
    assert status == 200, answer
    status, answer = agent.role_token()
    assert status == 200, answer
    status, answer = agent.heartbeat()
    assert status == 200, answer
    return agent


# --- activations ----------------------------------------------------------------------------


def test_create_activation_returns_id_and_code_once_and_describes_it(ssm, role) -> None:
    before = datetime.now(UTC)
    made = ssm.create_activation(
        IamRole=role,
        Description="lab",
        DefaultInstanceName="web",
        RegistrationLimit=10,
        Tags=[{"Key": "Env", "Value": "lab"}],
    )
    assert len(made["ActivationCode"]) == 20
    uuid.UUID(made["ActivationId"])
    listed = ssm.describe_activations(
        Filters=[{"FilterKey": "ActivationIds", "FilterValues": [made["ActivationId"]]}]
    )["ActivationList"]
    assert len(listed) == 1
    act = listed[0]
    assert "ActivationCode" not in act
    assert (act["IamRole"], act["DefaultInstanceName"], act["Description"]) == (role, "web", "lab")
    assert (act["RegistrationLimit"], act["RegistrationsCount"], act["Expired"]) == (10, 0, False)
    assert act["Tags"] == [{"Key": "Env", "Value": "lab"}]
    # Default expiry is 24 h after creation.
    assert timedelta(hours=23, minutes=59) < act["ExpirationDate"] - before < timedelta(hours=24, minutes=1)


@pytest.mark.parametrize("bad_role", ["no-such-role", "arn:aws:iam::123456789012:role/{role}"])
def test_create_activation_rejects_unknown_role_and_arn(ssm, role, bad_role) -> None:
    with pytest.raises(ClientError) as exc:
        ssm.create_activation(IamRole=bad_role.format(role=role))
    assert _code(exc) == "ValidationException"
    assert "Not existing role" in str(exc.value)


def test_create_activation_rejects_role_not_trusted_by_ssm(emulator, ssm) -> None:
    name = f"lab-ec2-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    emulator.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    with pytest.raises(ClientError) as exc:
        ssm.create_activation(IamRole=name)
    assert _code(exc) == "ValidationException"
    assert "ssm service principal" in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"RegistrationLimit": 1001}, "less than or equal to 1000"),
        ({"ExpirationDate": datetime.now(UTC) - timedelta(hours=1)}, "in the future"),
        ({"ExpirationDate": datetime.now(UTC) + timedelta(days=31)}, "30 days"),
        ({"DefaultInstanceName": "x" * 257}, "less than or equal to 256"),
    ],
)
def test_create_activation_validates_limits(ssm, role, kwargs, fragment) -> None:
    with pytest.raises(ClientError) as exc:
        ssm.create_activation(IamRole=role, **kwargs)
    assert _code(exc) == "ValidationException"
    assert fragment in str(exc.value)


def test_create_activation_accepts_the_bounds(ssm, role) -> None:
    made = ssm.create_activation(
        IamRole=role,
        RegistrationLimit=1000,
        ExpirationDate=datetime.now(UTC) + timedelta(days=29, hours=23),
    )
    act = ssm.describe_activations(
        Filters=[{"FilterKey": "ActivationIds", "FilterValues": [made["ActivationId"]]}]
    )["ActivationList"][0]
    assert act["RegistrationLimit"] == 1000


def test_describe_activations_filters_and_paginates(ssm, role) -> None:
    ids = [
        ssm.create_activation(IamRole=role, DefaultInstanceName=f"page-{role}")["ActivationId"]
        for _i in range(3)
    ]
    flt = [{"FilterKey": "DefaultInstanceName", "FilterValues": [f"page-{role}"]}]
    first = ssm.describe_activations(Filters=flt, MaxResults=2)
    assert len(first["ActivationList"]) == 2 and first["NextToken"]
    second = ssm.describe_activations(Filters=flt, MaxResults=2, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert sorted(a["ActivationId"] for a in first["ActivationList"] + second["ActivationList"]) == sorted(
        ids
    )
    by_role = ssm.describe_activations(Filters=[{"FilterKey": "IamRole", "FilterValues": [role]}])[
        "ActivationList"
    ]
    assert len(by_role) == 3
    paginated = [
        a
        for page in ssm.get_paginator("describe_activations").paginate(
            Filters=flt, PaginationConfig={"PageSize": 1}
        )
        for a in page["ActivationList"]
    ]
    assert len(paginated) == 3
    with pytest.raises(ClientError) as exc:
        ssm.describe_activations(NextToken="not-a-token")
    assert _code(exc) == "InvalidNextToken"
    with pytest.raises(ClientError) as exc:
        ssm.describe_activations(Filters=[{"FilterKey": "Bogus", "FilterValues": ["x"]}])
    assert _code(exc) == "InvalidFilter"


def test_delete_activation(ssm, activation) -> None:
    ssm.delete_activation(ActivationId=activation["ActivationId"])
    assert (
        ssm.describe_activations(
            Filters=[{"FilterKey": "ActivationIds", "FilterValues": [activation["ActivationId"]]}]
        )["ActivationList"]
        == []
    )
    with pytest.raises(ClientError) as exc:
        ssm.delete_activation(ActivationId=activation["ActivationId"])
    assert _code(exc) == "InvalidActivation"
    with pytest.raises(ClientError) as exc:
        ssm.delete_activation(ActivationId="not-an-id")
    assert _code(exc) == "InvalidActivationId"


def test_tags_on_activation_and_managed_instance_and_moto_types_still_work(emulator, ssm, activation) -> None:
    act_id = activation["ActivationId"]
    ssm.add_tags_to_resource(
        ResourceType="Activation", ResourceId=act_id, Tags=[{"Key": "Owner", "Value": "ops"}]
    )
    tags = ssm.list_tags_for_resource(ResourceType="Activation", ResourceId=act_id)["TagList"]
    assert sorted(t["Key"] for t in tags) == ["Owner", "Project"]
    ssm.remove_tags_from_resource(ResourceType="Activation", ResourceId=act_id, TagKeys=["Owner"])
    assert ssm.list_tags_for_resource(ResourceType="Activation", ResourceId=act_id)["TagList"] == [
        {"Key": "Project", "Value": "hybrid"}
    ]

    agent = _online_agent(emulator, activation)
    # AWS does not copy the activation's tags to the node.
    assert (
        ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=agent.instance_id)["TagList"]
        == []
    )
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=agent.instance_id, Tags=[{"Key": "Role", "Value": "web"}]
    )
    assert ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=agent.instance_id)[
        "TagList"
    ] == [{"Key": "Role", "Value": "web"}]
    with pytest.raises(ClientError) as exc:
        ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId="mi-00000000000000000")
    assert _code(exc) == "InvalidResourceId"

    name = f"/lab/{uuid.uuid4().hex}"
    ssm.put_parameter(Name=name, Value="v", Type="String")
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "K", "Value": "V"}])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == [
        {"Key": "K", "Value": "V"}
    ]


# --- registration, heartbeat, managed nodes -------------------------------------------------


def test_register_heartbeat_online_connection_lost_deregister(
    emulator, ssm, activation, clock_travel
) -> None:
    agent = Agent(emulator.url)
    status, answer = agent.register(activation["ActivationId"], activation["ActivationCode"])
    assert status == 200, answer
    assert answer["InstanceId"].startswith("mi-") and len(answer["InstanceId"]) == 20
    act = ssm.describe_activations(
        Filters=[{"FilterKey": "ActivationIds", "FilterValues": [activation["ActivationId"]]}]
    )["ActivationList"][0]
    assert act["RegistrationsCount"] == 1

    def info() -> dict[str, Any]:
        rows = ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [agent.instance_id]}]
        )["InstanceInformationList"]
        assert len(rows) == 1
        return rows[0]

    # Registered but never pinged: not Online ("Inactive" is deprecated by AWS).
    assert info()["PingStatus"] == "ConnectionLost"
    assert "LastPingDateTime" not in info()

    status, creds = agent.role_token()
    assert status == 200, creds
    assert set(creds) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "TokenExpirationDate"}
    assert 3500 < creds["TokenExpirationDate"] - datetime.now(UTC).timestamp() < 3700

    status, answer = agent.heartbeat()
    assert status == 200, answer
    row = info()
    assert row["PingStatus"] == "Online"
    assert row["ResourceType"] == "ManagedInstance"
    assert (row["AgentVersion"], row["PlatformType"], row["PlatformName"], row["PlatformVersion"]) == (
        "3.3.1142.0",
        "Linux",
        "Debian GNU/Linux",
        "12",
    )
    assert (row["IPAddress"], row["ComputerName"], row["Name"]) == (
        "172.16.10.101",
        "host1.lab.example",
        "labnode",
    )
    assert (row["ActivationId"], row["IamRole"]) == (activation["ActivationId"], act["IamRole"])
    assert isinstance(row["LastPingDateTime"], datetime) and isinstance(row["RegistrationDate"], datetime)
    assert isinstance(row["IsLatestVersion"], bool)

    clock_travel(int(os.environ.get("HYBRID_LAB_PING_TIMEOUT", "60")) + 5)
    assert info()["PingStatus"] == "ConnectionLost"
    clock_travel(0)
    assert agent.heartbeat()[0] == 200
    assert info()["PingStatus"] == "Online"

    ssm.deregister_managed_instance(InstanceId=agent.instance_id)
    with pytest.raises(ClientError) as exc:
        ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [agent.instance_id]}])
    assert _code(exc) == "InvalidInstanceId"
    with pytest.raises(ClientError) as exc:
        ssm.deregister_managed_instance(InstanceId=agent.instance_id)
    assert _code(exc) == "InvalidInstanceId"
    # A deregistered node can neither heartbeat nor get credentials.
    status, answer = agent.heartbeat()
    assert (status, answer["__type"]) == (400, "InvalidInstanceId")
    status, answer = agent.role_token()
    assert (status, answer["__type"]) == (400, "InvalidInstanceId")


def test_role_token_credentials_are_the_hybrid_role(emulator, activation) -> None:
    import boto3

    agent = _online_agent(emulator, activation)
    sts = boto3.client(
        "sts",
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id=agent.creds["AccessKeyId"],
        aws_secret_access_key=agent.creds["SecretAccessKey"],
        aws_session_token=agent.creds["SessionToken"],
    )
    arn = sts.get_caller_identity()["Arn"]
    assert arn.endswith(f":assumed-role/{agent_role(emulator, activation)}/{agent.instance_id}")


def agent_role(emulator, activation) -> str:
    ssm = emulator.client("ssm")
    return ssm.describe_activations(
        Filters=[{"FilterKey": "ActivationIds", "FilterValues": [activation["ActivationId"]]}]
    )["ActivationList"][0]["IamRole"]


def test_register_rejects_wrong_code_unknown_id_and_exhausted_limit(emulator, ssm, role) -> None:
    made = ssm.create_activation(IamRole=role, RegistrationLimit=1)
    status, answer = Agent(emulator.url).register(made["ActivationId"], "A" * 20)
    assert (status, answer["__type"]) == (400, "InvalidActivation")
    status, answer = Agent(emulator.url).register(str(uuid.uuid4()), made["ActivationCode"])
    assert (status, answer["__type"]) == (400, "InvalidActivation")
    assert Agent(emulator.url).register(made["ActivationId"], made["ActivationCode"])[0] == 200
    status, answer = Agent(emulator.url).register(made["ActivationId"], made["ActivationCode"])
    assert (status, answer["__type"]) == (400, "InvalidActivation")
    assert "registration limit" in answer["message"]


def test_register_rejects_expired_activation(emulator, ssm, role, clock_travel) -> None:
    made = ssm.create_activation(IamRole=role)
    clock_travel(25 * 3600)
    act = ssm.describe_activations(
        Filters=[{"FilterKey": "ActivationIds", "FilterValues": [made["ActivationId"]]}]
    )["ActivationList"][0]
    assert act["Expired"] is True
    status, answer = Agent(emulator.url).register(made["ActivationId"], made["ActivationCode"])
    assert (status, answer["__type"]) == (400, "InvalidActivation")
    assert "expired" in answer["message"]


def test_role_token_needs_the_registered_key(emulator, activation) -> None:
    agent = Agent(emulator.url)
    assert agent.register(activation["ActivationId"], activation["ActivationCode"])[0] == 200
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, answer = agent.role_token(other_key)
    assert (status, answer["__type"]) == (400, "AccessDeniedException")
    status, answer = _post(emulator.url, SSM_HOST, "AmazonSSM.RequestManagedInstanceRoleToken", b"{}")
    assert (status, answer["__type"]) == (400, "AccessDeniedException")


def test_heartbeat_needs_the_nodes_own_credentials(emulator, activation) -> None:
    agent = _online_agent(emulator, activation)
    lab_creds = {"AccessKeyId": labconst.ACCESS_KEY, "SecretAccessKey": labconst.SECRET_KEY}
    status, answer = agent.heartbeat(creds=lab_creds)
    assert (status, answer["__type"]) == (400, "AccessDeniedException")
    other = _online_agent(emulator, activation)
    status, answer = agent.heartbeat(creds=other.creds)
    assert (status, answer["__type"]) == (400, "AccessDeniedException")


def test_describe_instance_information_filters_and_pagination(emulator, ssm, role) -> None:
    made = ssm.create_activation(IamRole=role, RegistrationLimit=10)
    agents = [_online_agent(emulator, made) for _i in range(6)]
    ids = [a.instance_id for a in agents]
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=ids[0], Tags=[{"Key": "Tier", "Value": "db"}]
    )
    by_act = [{"Key": "ActivationIds", "Values": [made["ActivationId"]]}]

    first = ssm.describe_instance_information(Filters=by_act, MaxResults=5)
    assert len(first["InstanceInformationList"]) == 5 and first["NextToken"]
    rest = ssm.describe_instance_information(Filters=by_act, MaxResults=5, NextToken=first["NextToken"])
    got = [r["InstanceId"] for r in first["InstanceInformationList"] + rest["InstanceInformationList"]]
    assert sorted(got) == sorted(ids)

    def ids_for(**kwargs: Any) -> list[str]:
        return sorted(
            r["InstanceId"] for r in ssm.describe_instance_information(**kwargs)["InstanceInformationList"]
        )

    assert ids_for(Filters=[*by_act, {"Key": "tag:Tier", "Values": ["db"]}]) == [ids[0]]
    assert ids_for(Filters=[*by_act, {"Key": "tag-key", "Values": ["Tier"]}]) == [ids[0]]
    assert ids_for(Filters=[*by_act, {"Key": "PingStatus", "Values": ["Online"]}]) == sorted(ids)
    assert ids_for(Filters=[*by_act, {"Key": "PingStatus", "Values": ["ConnectionLost"]}]) == []
    assert ids_for(Filters=[*by_act, {"Key": "ResourceType", "Values": ["ManagedInstance"]}]) == sorted(ids)
    assert ids_for(Filters=[*by_act, {"Key": "ResourceType", "Values": ["EC2Instance"]}]) == []
    assert ids_for(Filters=[{"Key": "InstanceIds", "Values": ids[:2]}]) == sorted(ids[:2])
    assert ids_for(
        InstanceInformationFilterList=[
            {"key": "ActivationIds", "valueSet": [made["ActivationId"]]},
            {"key": "InstanceIds", "valueSet": [ids[3]]},
        ]
    ) == [ids[3]]

    for kwargs, code in (
        ({"Filters": [{"Key": "Bogus", "Values": ["x"]}]}, "InvalidFilterKey"),
        (
            {"Filters": [{"Key": "PingStatus", "Values": ["Sleeping"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        ({"Filters": [{"Key": "InstanceIds", "Values": ["mi-0123456789abcdef0"]}]}, "InvalidInstanceId"),
        ({"MaxResults": 51}, "ValidationException"),
        ({"NextToken": "garbage"}, "InvalidNextToken"),
    ):
        with pytest.raises(ClientError) as exc:
            ssm.describe_instance_information(**kwargs)
        assert _code(exc) == code, kwargs


def test_is_latest_version_follows_the_agent_bucket(emulator, ssm, activation, monkeypatch) -> None:
    agent = _online_agent(emulator, activation)
    try:  # the seeded agent bucket's latest/VERSION is authoritative when present
        body = emulator.client("s3").get_object(Bucket=labconst.SSM_AGENT_BUCKET, Key="latest/VERSION")[
            "Body"
        ]
        latest = body.read().decode().strip()
    except ClientError:
        latest = "3.3.9999.0"
        monkeypatch.setenv("HYBRID_LAB_SSM_AGENT_LATEST", latest)

    def is_latest() -> bool:
        rows = ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [agent.instance_id]}]
        )
        return rows["InstanceInformationList"][0]["IsLatestVersion"]

    assert agent.heartbeat(AgentVersion="1.0.0.0")[0] == 200
    assert is_latest() is False
    assert agent.heartbeat(AgentVersion=latest)[0] == 200
    assert is_latest() is True


def test_deregister_validates_the_id(ssm) -> None:
    with pytest.raises(ClientError) as exc:
        ssm.deregister_managed_instance(InstanceId="mi-0123456789abcdef0")
    assert _code(exc) == "InvalidInstanceId"


# --- service setting: activation tier -------------------------------------------------------

OTHER_ACCOUNT = "345678901234"  # tier tests register > 1,000 nodes: keep them out of the shared account


def test_service_setting_get_update_reset_and_errors(emulator) -> None:
    ssm = emulator.client("ssm", account_id="456789012345")
    arn = f"arn:aws:ssm:{REGION}:456789012345:servicesetting{TIER}"
    setting = ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]
    assert (setting["SettingValue"], setting["Status"], setting["ARN"]) == ("standard", "Default", arn)
    ssm.update_service_setting(SettingId=arn, SettingValue="advanced")
    setting = ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]
    assert (setting["SettingValue"], setting["Status"]) == ("advanced", "Customized")
    assert isinstance(setting["LastModifiedDate"], datetime)
    with pytest.raises(ClientError) as exc:
        ssm.update_service_setting(SettingId=TIER, SettingValue="premium")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ssm.get_service_setting(SettingId="/ssm/no/such/setting")
    assert _code(exc) == "ServiceSettingNotFound"
    reset = ssm.reset_service_setting(SettingId=TIER)["ServiceSetting"]
    assert (reset["SettingValue"], reset["Status"]) == ("standard", "Default")


def test_standard_tier_caps_at_1000_nodes_and_blocks_downgrade(emulator) -> None:
    ssm = emulator.client("ssm", account_id=OTHER_ACCOUNT)
    iam = emulator.client("iam", account_id=OTHER_ACCOUNT)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName="tier-role", AssumeRolePolicyDocument=json.dumps(trust))
    acts = [ssm.create_activation(IamRole="tier-role", RegistrationLimit=1000) for _i in range(2)]
    for _i in range(1000):
        assert Agent(emulator.url).register(acts[0]["ActivationId"], acts[0]["ActivationCode"])[0] == 200
    status, answer = Agent(emulator.url).register(acts[1]["ActivationId"], acts[1]["ActivationCode"])
    assert status == 400 and "standard-tier limit" in answer["message"]

    ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")
    extra = Agent(emulator.url)
    assert extra.register(acts[1]["ActivationId"], acts[1]["ActivationCode"])[0] == 200
    with pytest.raises(ClientError) as exc:
        ssm.update_service_setting(SettingId=TIER, SettingValue="standard")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ssm.reset_service_setting(SettingId=TIER)
    assert _code(exc) == "ValidationException"
    ssm.deregister_managed_instance(InstanceId=extra.instance_id)
    ssm.update_service_setting(SettingId=TIER, SettingValue="standard")
    assert ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]["SettingValue"] == "standard"


# --- documents and Run Command --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["AWS-RunShellScript", "AWS-ConfigureAWSPackage", "AWS-UpdateSSMAgent", "AWS-GatherSoftwareInventory"],
)
def test_aws_documents_exist(ssm, name) -> None:
    doc = ssm.describe_document(Name=name)["Document"]
    assert (doc["Owner"], doc["DocumentType"]) == ("Amazon", "Command")
    json.loads(ssm.get_document(Name=name)["Content"])


def test_run_command_round_trip(emulator, ssm, activation) -> None:
    agent = _online_agent(emulator, activation)
    cmd = ssm.send_command(
        InstanceIds=[agent.instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["echo hello"]},
        Comment="round trip",
        MaxConcurrency="1",
        MaxErrors="0",
    )["Command"]
    cmd_id = cmd["CommandId"]
    assert (cmd["Status"], cmd["TargetCount"], cmd["MaxConcurrency"], cmd["MaxErrors"]) == (
        "Pending",
        1,
        "1",
        "0",
    )

    def invocation() -> dict[str, Any]:
        return ssm.get_command_invocation(CommandId=cmd_id, InstanceId=agent.instance_id)

    assert invocation()["Status"] == "Pending"
    messages = [m for m in agent.get_messages() if cmd_id in m["MessageId"]]
    assert len(messages) == 1
    msg = messages[0]
    assert msg["MessageId"] == f"aws.ssm.{cmd_id}.{agent.instance_id}"
    assert msg["Topic"].startswith(f"aws.ssm.sendCommand.{REGION}")
    payload = json.loads(msg["Payload"])
    assert payload["CommandId"] == cmd_id and payload["DocumentName"] == "AWS-RunShellScript"
    assert payload["Parameters"]["commands"] == ["echo hello"]
    assert payload["Parameters"]["executionTimeout"] == ["3600"]  # defaults are filled in
    assert "aws:runShellScript" in payload["DocumentContent"]["runtimeConfig"]
    assert invocation()["Status"] == "Pending"  # fetched but not acknowledged yet
    assert [m for m in agent.get_messages() if cmd_id in m["MessageId"]] == []  # invisible while in flight

    assert agent.ec2messages("AcknowledgeMessage", {"MessageId": msg["MessageId"]})[0] == 200
    assert invocation()["Status"] == "InProgress"
    assert ssm.list_commands(CommandId=cmd_id)["Commands"][0]["Status"] == "InProgress"

    assert agent.reply(msg["MessageId"], "Success", stdout="hello\n")[0] == 200
    inv = invocation()
    assert (inv["Status"], inv["StatusDetails"], inv["ResponseCode"]) == ("Success", "Success", 0)
    assert inv["StandardOutputContent"] == "hello\n" and inv["PluginName"] == "aws:runShellScript"
    assert inv["ExecutionStartDateTime"] and inv["ExecutionEndDateTime"]
    listed = ssm.list_commands(CommandId=cmd_id)["Commands"][0]
    assert (listed["Status"], listed["CompletedCount"], listed["ErrorCount"]) == ("Success", 1, 0)
    plugins = ssm.list_command_invocations(CommandId=cmd_id, Details=True)["CommandInvocations"][0][
        "CommandPlugins"
    ]
    assert plugins[0]["Name"] == "aws:runShellScript" and plugins[0]["Output"] == "hello\n"
    assert ssm.list_command_invocations(CommandId=cmd_id)["CommandInvocations"][0]["CommandPlugins"] == []
    assert cmd_id in [c["CommandId"] for c in ssm.list_commands(InstanceId=agent.instance_id)["Commands"]]


def test_run_command_failure_and_targets_by_tag(emulator, ssm, activation) -> None:
    agents = [_online_agent(emulator, activation) for _i in range(2)]
    tag = uuid.uuid4().hex[:8]
    for agent in agents:
        ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId=agent.instance_id,
            Tags=[{"Key": "Batch", "Value": tag}],
        )
    cmd = ssm.send_command(
        Targets=[{"Key": "tag:Batch", "Values": [tag]}],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["false"]},
        MaxConcurrency="1",
    )["Command"]
    assert cmd["TargetCount"] == 2
    first = [m for m in agents[0].get_messages() if cmd["CommandId"] in m["MessageId"]]
    second = [m for m in agents[1].get_messages() if cmd["CommandId"] in m["MessageId"]]
    # MaxConcurrency 1: only one node gets the command while the other is still running it.
    assert len(first) + len(second) == 1
    busy, idle = (agents[0], agents[1]) if first else (agents[1], agents[0])
    msg = (first or second)[0]
    agents_msg_reply = busy.reply(msg["MessageId"], "Failed", stderr="boom", code=1)
    assert agents_msg_reply[0] == 200
    inv = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=busy.instance_id)
    assert (inv["Status"], inv["ResponseCode"], inv["StandardErrorContent"]) == ("Failed", 1, "boom")
    later = [m for m in idle.get_messages() if cmd["CommandId"] in m["MessageId"]]
    assert len(later) == 1
    idle.reply(later[0]["MessageId"], "Success", stdout="ok")
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    assert (listed["Status"], listed["CompletedCount"], listed["ErrorCount"]) == ("Failed", 2, 1)
    failed = ssm.list_commands(Filters=[{"key": "Status", "value": "Failed"}])["Commands"]
    assert cmd["CommandId"] in [c["CommandId"] for c in failed]


def test_run_command_delivery_timeout(emulator, ssm, activation, clock_travel) -> None:
    agent = _online_agent(emulator, activation)
    cmd = ssm.send_command(
        InstanceIds=[agent.instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["true"]},
        TimeoutSeconds=30,
    )["Command"]
    clock_travel(60)
    inv = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=agent.instance_id)
    assert (inv["Status"], inv["StatusDetails"]) == ("TimedOut", "DeliveryTimedOut")
    assert [m for m in agent.get_messages() if cmd["CommandId"] in m["MessageId"]] == []
    assert ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]["DeliveryTimedOutCount"] == 1


def test_run_command_errors(emulator, ssm, activation) -> None:
    agent = _online_agent(emulator, activation)
    cases = [
        ({"InstanceIds": [agent.instance_id], "DocumentName": "No-Such-Doc"}, "InvalidDocument"),
        (
            {
                "InstanceIds": ["mi-0123456789abcdef0"],
                "DocumentName": "AWS-RunShellScript",
                "Parameters": {"commands": ["x"]},
            },
            "InvalidInstanceId",
        ),
        (
            {
                "InstanceIds": [agent.instance_id],
                "DocumentName": "AWS-RunShellScript",
                "Parameters": {"bogus": ["x"]},
            },
            "InvalidParameters",
        ),
        ({"InstanceIds": [agent.instance_id], "DocumentName": "AWS-RunShellScript"}, "InvalidParameters"),
        (
            {
                "InstanceIds": [agent.instance_id],
                "DocumentName": "AWS-ConfigureAWSPackage",
                "Parameters": {"action": ["Explode"], "name": ["AmazonCloudWatchAgent"]},
            },
            "InvalidParameters",
        ),
        (
            {
                "InstanceIds": [agent.instance_id],
                "DocumentName": "AWS-RunShellScript",
                "Parameters": {"commands": ["x"]},
                "MaxConcurrency": "0",
            },
            "ValidationException",
        ),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as exc:
            ssm.send_command(**kwargs)
        assert _code(exc) == code, kwargs
    cmd = ssm.send_command(
        InstanceIds=[agent.instance_id], DocumentName="AWS-RunShellScript", Parameters={"commands": ["true"]}
    )["Command"]
    with pytest.raises(ClientError) as exc:
        ssm.get_command_invocation(CommandId=str(uuid.uuid4()), InstanceId=agent.instance_id)
    assert _code(exc) == "InvalidCommandId"
    with pytest.raises(ClientError) as exc:
        ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId="mi-0123456789abcdef0")
    assert _code(exc) == "InvocationDoesNotExist"
    with pytest.raises(ClientError) as exc:
        ssm.get_command_invocation(
            CommandId=cmd["CommandId"], InstanceId=agent.instance_id, PluginName="nope"
        )
    assert _code(exc) == "InvalidPluginName"


def test_ec2messages_rejects_other_nodes_credentials(emulator, activation) -> None:
    agent, other = _online_agent(emulator, activation), _online_agent(emulator, activation)
    status, answer = agent.ec2messages(
        "GetMessages", {"Destination": agent.instance_id, "MessagesRequestId": str(uuid.uuid4())}, other.creds
    )
    assert (status, answer["__type"]) == (400, "AccessDeniedException")
    status, answer = agent.ec2messages("AcknowledgeMessage", {"MessageId": "garbage"})
    assert (status, answer["__type"]) == (400, "InvalidMessageId")


# --- State Manager --------------------------------------------------------------------------


def test_association_lifecycle_and_validation(emulator, ssm, activation) -> None:
    agent = _online_agent(emulator, activation)
    name = f"lab-update-agent-{uuid.uuid4().hex[:6]}"
    created = ssm.create_association(
        Name="AWS-UpdateSSMAgent",
        AssociationName=name,
        ScheduleExpression="rate(14 days)",
        Targets=[{"Key": "InstanceIds", "Values": [agent.instance_id]}],
        Parameters={"allowDowngrade": ["false"]},
        MaxConcurrency="10%",
        MaxErrors="1",
        ComplianceSeverity="MEDIUM",
        ApplyOnlyAtCronInterval=False,
        OutputLocation={"S3Location": {"OutputS3BucketName": "lab-logs", "OutputS3KeyPrefix": "ssm"}},
    )["AssociationDescription"]
    assoc_id = created["AssociationId"]
    assert (created["AssociationVersion"], created["AssociationName"], created["MaxConcurrency"]) == (
        "1",
        name,
        "10%",
    )
    assert created["Parameters"] == {"allowDowngrade": ["false"]}

    described = ssm.describe_association(AssociationId=assoc_id)["AssociationDescription"]
    assert described["ScheduleExpression"] == "rate(14 days)" and described["ComplianceSeverity"] == "MEDIUM"
    assert described["OutputLocation"]["S3Location"]["OutputS3BucketName"] == "lab-logs"

    with pytest.raises(ClientError) as exc:
        ssm.create_association(
            Name="AWS-UpdateSSMAgent",
            AssociationName=name,
            Targets=[{"Key": "InstanceIds", "Values": [agent.instance_id]}],
        )
    assert _code(exc) == "AssociationAlreadyExists"

    updated = ssm.update_association(
        AssociationId=assoc_id,
        AssociationName=name,
        ScheduleExpression="rate(1 day)",
        Parameters={"allowDowngrade": ["true"]},
    )["AssociationDescription"]
    assert updated["AssociationVersion"] == "2"
    assert updated["ScheduleExpression"] == "rate(1 day)" and updated["Parameters"] == {
        "allowDowngrade": ["true"]
    }
    # AWS resets the optional fields an update leaves out.
    assert "ComplianceSeverity" not in updated and "MaxConcurrency" not in updated
    assert updated["Targets"] == [{"Key": "InstanceIds", "Values": [agent.instance_id]}]
    v1 = ssm.describe_association(AssociationId=assoc_id, AssociationVersion="1")["AssociationDescription"]
    assert v1["ScheduleExpression"] == "rate(14 days)" and v1["AssociationVersion"] == "1"
    with pytest.raises(ClientError) as exc:
        ssm.update_association(
            AssociationId=assoc_id, AssociationVersion="1", ScheduleExpression="rate(2 days)"
        )
    assert _code(exc) == "InvalidAssociationVersion"

    listed = ssm.list_associations(AssociationFilterList=[{"key": "AssociationName", "value": name}])[
        "Associations"
    ]
    assert [a["AssociationId"] for a in listed] == [assoc_id]
    by_node = ssm.list_associations(AssociationFilterList=[{"key": "InstanceId", "value": agent.instance_id}])
    assert assoc_id in [a["AssociationId"] for a in by_node["Associations"]]

    for kwargs, code in (
        ({"ScheduleExpression": "rate(5 minutes)"}, "InvalidSchedule"),
        ({"ScheduleExpression": "rate(1 days)"}, "InvalidSchedule"),
        ({"ScheduleExpression": "every tuesday"}, "InvalidSchedule"),
        ({"ScheduleExpression": "cron(0 2 * *)"}, "InvalidSchedule"),
        ({"Parameters": {"nope": ["x"]}}, "InvalidParameters"),
        ({"Name": "No-Such-Doc"}, "InvalidDocument"),
        ({"Targets": [{"Key": "weird", "Values": ["x"]}]}, "InvalidTarget"),
    ):
        args = {
            "Name": "AWS-UpdateSSMAgent",
            "Targets": [{"Key": "InstanceIds", "Values": [agent.instance_id]}],
        }
        args.update(kwargs)
        with pytest.raises(ClientError) as exc:
            ssm.create_association(**args)
        assert _code(exc) == code, kwargs
    ok = ssm.create_association(
        Name="AWS-UpdateSSMAgent",
        ScheduleExpression="cron(0 2 ? * SUN *)",
        Targets=[{"Key": "tag:Nothing", "Values": ["x"]}],
    )["AssociationDescription"]
    ssm.delete_association(AssociationId=ok["AssociationId"])

    ssm.delete_association(AssociationId=assoc_id)
    with pytest.raises(ClientError) as exc:
        ssm.describe_association(AssociationId=assoc_id)
    assert _code(exc) == "AssociationDoesNotExist"
    with pytest.raises(ClientError) as exc:
        ssm.delete_association(AssociationId=assoc_id)
    assert _code(exc) == "AssociationDoesNotExist"


def test_legacy_instance_association_by_name_and_instance(emulator, ssm, activation) -> None:
    agent = _online_agent(emulator, activation)
    ssm.create_association(Name="AWS-GatherSoftwareInventory", InstanceId=agent.instance_id)
    got = ssm.describe_association(Name="AWS-GatherSoftwareInventory", InstanceId=agent.instance_id)
    assert got["AssociationDescription"]["InstanceId"] == agent.instance_id
    with pytest.raises(ClientError) as exc:
        ssm.create_association(Name="AWS-GatherSoftwareInventory", InstanceId=agent.instance_id)
    assert _code(exc) == "AssociationAlreadyExists"
    ssm.delete_association(Name="AWS-GatherSoftwareInventory", InstanceId=agent.instance_id)


def test_association_runs_on_the_node_and_reports_status(emulator, ssm, activation) -> None:
    agent = _online_agent(emulator, activation)
    assoc = ssm.create_association(
        Name="AWS-ConfigureAWSPackage",
        Targets=[{"Key": "InstanceIds", "Values": [agent.instance_id]}],
        Parameters={"action": ["Install"], "name": ["AmazonCloudWatchAgent"]},
    )["AssociationDescription"]
    assert assoc["Overview"]["Status"] == "Pending"
    msgs = [
        m
        for m in agent.get_messages()
        if json.loads(m["Payload"]).get("AssociationId") == assoc["AssociationId"]
    ]
    assert len(msgs) == 1
    payload = json.loads(msgs[0]["Payload"])
    assert payload["DocumentName"] == "AWS-ConfigureAWSPackage" and payload["Parameters"]["action"] == [
        "Install"
    ]
    agent.ec2messages("AcknowledgeMessage", {"MessageId": msgs[0]["MessageId"]})
    agent.reply(msgs[0]["MessageId"], "Success", stdout="installed")
    desc = ssm.describe_association(AssociationId=assoc["AssociationId"])["AssociationDescription"]
    assert desc["Overview"]["Status"] == "Success"
    assert desc["Overview"]["AssociationStatusAggregatedCount"] == {"Success": 1}
    assert isinstance(desc["LastExecutionDate"], datetime)
    # Association runs are not Run Command commands.
    assert payload["CommandId"] not in [c["CommandId"] for c in ssm.list_commands()["Commands"]]
    row = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [agent.instance_id]}])[
        "InstanceInformationList"
    ][0]
    assert row["AssociationStatus"] == "Success"
    # Not run again before its schedule / a new version.
    assert [m for m in agent.get_messages() if assoc["AssociationId"] in m["Payload"]] == []
    ssm.delete_association(AssociationId=assoc["AssociationId"])


def test_start_associations_once_runs_a_failed_association_again(emulator, ssm, activation) -> None:
    agent = _online_agent(emulator, activation)
    assoc_id = ssm.create_association(
        Name="AWS-RunShellScript",
        Targets=[{"Key": "InstanceIds", "Values": [agent.instance_id]}],
        Parameters={"commands": ["test -e /etc/ready"]},
        ScheduleExpression="rate(14 days)",
    )["AssociationDescription"]["AssociationId"]

    def node() -> dict:
        (info,) = ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [agent.instance_id]}]
        )["InstanceInformationList"]
        return info

    def run_once(status: str) -> None:
        (msg,) = [m for m in agent.get_messages() if assoc_id in m["Payload"]]
        # The agent has picked the run up: Pending until its reply.
        assert node()["AssociationStatus"] == "Pending"
        agent.ec2messages("AcknowledgeMessage", {"MessageId": msg["MessageId"]})
        agent.reply(msg["MessageId"], status, code=0 if status == "Success" else 1)

    run_once("Failed")
    overview = ssm.describe_association(AssociationId=assoc_id)["AssociationDescription"]["Overview"]
    assert overview["Status"] == "Failed" and overview["AssociationStatusAggregatedCount"] == {"Failed": 1}
    failed_at = node()["LastAssociationExecutionDate"]
    # A failed run waits for the schedule (14 days) ...
    assert [m for m in agent.get_messages() if assoc_id in m["Payload"]] == []
    # ... unless the association is started once. The node shows its old result until its agent picks the run up.
    assert ssm.start_associations_once(AssociationIds=[assoc_id])["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert node()["AssociationStatus"] == "Failed" and node()["LastAssociationExecutionDate"] == failed_at
    run_once("Success")
    assert node()["AssociationStatus"] == "Success" and node()["LastAssociationExecutionDate"] > failed_at
    overview = ssm.describe_association(AssociationId=assoc_id)["AssociationDescription"]["Overview"]
    assert overview["AssociationStatusAggregatedCount"] == {"Success": 1}
    assert [m for m in agent.get_messages() if assoc_id in m["Payload"]] == []  # once, not again
    with pytest.raises(ClientError) as exc:
        ssm.start_associations_once(AssociationIds=["11111111-2222-3333-4444-555555555555"])
    assert _code(exc) == "AssociationDoesNotExist"
    ssm.delete_association(AssociationId=assoc_id)

# --- resource data sync and inventory -------------------------------------------------------


def test_resource_data_sync_and_inventory(emulator, ssm, activation) -> None:
    agent = _online_agent(emulator, activation)
    s3 = emulator.client("s3")
    bucket = f"lab-inventory-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    sync = f"lab-sync-{uuid.uuid4().hex[:6]}"
    dest = {"BucketName": bucket, "Prefix": "inv", "SyncFormat": "JsonSerDe", "Region": REGION}
    ssm.create_resource_data_sync(SyncName=sync, S3Destination=dest)
    with pytest.raises(ClientError) as exc:
        ssm.create_resource_data_sync(SyncName=sync, S3Destination=dest)
    assert _code(exc) == "ResourceDataSyncAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        ssm.create_resource_data_sync(SyncName=f"{sync}-x", S3Destination={**dest, "SyncFormat": "Csv"})
    assert _code(exc) == "ResourceDataSyncInvalidConfigurationException"
    items = {i["SyncName"]: i for i in ssm.list_resource_data_sync()["ResourceDataSyncItems"]}
    assert items[sync]["SyncType"] == "SyncToDestination" and items[sync]["LastStatus"] == "Successful"
    assert items[sync]["S3Destination"]["SyncFormat"] == "JsonSerDe"

    # The node reports inventory with its own credentials, as AWS-GatherSoftwareInventory does.
    import boto3

    node_ssm = boto3.client(
        "ssm",
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id=agent.creds["AccessKeyId"],
        aws_secret_access_key=agent.creds["SecretAccessKey"],
        aws_session_token=agent.creds["SessionToken"],
    )
    capture = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    node_ssm.put_inventory(
        InstanceId=agent.instance_id,
        Items=[
            {
                "TypeName": "AWS:Application",
                "SchemaVersion": "1.1",
                "CaptureTime": capture,
                "Content": [
                    {"Name": "amazon-ssm-agent", "Version": "3.3.1142.0"},
                    {"Name": "curl", "Version": "7.88"},
                ],
            }
        ],
    )
    entries = ssm.list_inventory_entries(InstanceId=agent.instance_id, TypeName="AWS:Application")
    assert sorted(e["Name"] for e in entries["Entries"]) == ["amazon-ssm-agent", "curl"]
    found = ssm.get_inventory(Filters=[{"Key": "AWS:Application.Name", "Values": ["curl"], "Type": "Equal"}])
    assert agent.instance_id in [e["Id"] for e in found["Entities"]]
    info = ssm.get_inventory(
        Filters=[{"Key": "AWS:InstanceInformation.InstanceId", "Values": [agent.instance_id]}]
    )
    assert (
        info["Entities"][0]["Data"]["AWS:InstanceInformation"]["Content"][0]["PlatformName"]
        == "Debian GNU/Linux"
    )
    with pytest.raises(ClientError) as exc:
        ssm.put_inventory(
            InstanceId=agent.instance_id,
            Items=[{"TypeName": "AWS:Bogus", "SchemaVersion": "1.0", "CaptureTime": capture, "Content": []}],
        )
    assert _code(exc) == "InvalidTypeNameException"
    key = (
        f"inv/AWS:Application/accountid={labconst.ACCOUNT_ID}/region={REGION}/"
        f"resourcetype=ManagedInstanceInventory/{agent.instance_id}.json"
    )
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    assert {json.loads(line)["Name"] for line in lines} == {"amazon-ssm-agent", "curl"}

    ssm.delete_resource_data_sync(SyncName=sync)
    with pytest.raises(ClientError) as exc:
        ssm.delete_resource_data_sync(SyncName=sync)
    assert _code(exc) == "ResourceDataSyncNotFoundException"


def test_resource_data_sync_to_missing_bucket_reports_failure(ssm) -> None:
    sync = f"lab-sync-{uuid.uuid4().hex[:6]}"
    ssm.create_resource_data_sync(
        SyncName=sync,
        S3Destination={
            "BucketName": f"missing-{uuid.uuid4().hex[:8]}",
            "SyncFormat": "JsonSerDe",
            "Region": REGION,
        },
    )
    item = {i["SyncName"]: i for i in ssm.list_resource_data_sync()["ResourceDataSyncItems"]}[sync]
    assert item["LastStatus"] == "Failed" and item["LastSyncStatusMessage"]
    ssm.delete_resource_data_sync(SyncName=sync)


# --- plumbing -------------------------------------------------------------------------------


def test_state_is_per_account_and_forgotten_on_moto_reset(emulator, role) -> None:
    from emulator import ssm_common
    from moto.ssm.models import ssm_backends

    account = "567890123456"
    other = emulator.client("ssm", account_id=account)
    iam = emulator.client("iam", account_id=account)
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))
    made = other.create_activation(IamRole="r")
    assert other.describe_activations()["ActivationList"][0]["ActivationId"] == made["ActivationId"]
    # The shared account does not see it.
    shared = emulator.client("ssm").describe_activations(
        Filters=[{"FilterKey": "ActivationIds", "FilterValues": [made["ActivationId"]]}]
    )
    assert shared["ActivationList"] == []
    ssm_backends[account][REGION].reset()  # what moto's reset does to every backend
    assert other.describe_activations()["ActivationList"] == []
    assert other.describe_document(Name="AWS-RunShellScript")["Document"]["Owner"] == "Amazon"
    assert ssm_common.state_for(account, REGION).activations == {}


def test_install_is_idempotent() -> None:
    from emulator import ssm_ext
    from moto.ssm.responses import SimpleSystemManagerResponse

    method = SimpleSystemManagerResponse.create_activation
    ssm_ext.install()
    ssm_ext.install()
    assert SimpleSystemManagerResponse.create_activation is method


def test_intercept_leaves_other_requests_to_moto() -> None:
    from emulator import ssm_ext

    assert ssm_ext.wsgi_intercept({"HTTP_X_AMZ_TARGET": "AmazonSSM.GetParameter"}) is None
    assert ssm_ext.wsgi_intercept({"HTTP_HOST": "sts.amazonaws.com"}) is None


def test_aws_cli_create_activation(emulator, role) -> None:
    aws = PROJECT / ".venv" / "bin" / "aws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=labconst.ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=labconst.SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    out = subprocess.run(
        [
            str(aws),
            "ssm",
            "create-activation",
            "--endpoint-url",
            emulator.url,
            "--iam-role",
            role,
            "--registration-limit",
            "3",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert len(made["ActivationCode"]) == 20
    out = subprocess.run(
        [
            str(aws),
            "ssm",
            "describe-activations",
            "--endpoint-url",
            emulator.url,
            "--filters",
            f"FilterKey=ActivationIds,FilterValues={made['ActivationId']}",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ActivationList"][0]["RegistrationLimit"] == 3
