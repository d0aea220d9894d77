"""The stand-ins' stdlib SigV4 signer gives exactly botocore's signature (JSON and query protocols)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SRC = Path(__file__).resolve().parents[3] / "tests" / "lab" / "agents" / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

import labaws  # noqa: E402

CASES = [
    (
        "ssm",
        "https://ssm.eu-west-1.amazonaws.com/",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.UpdateInstanceInformation"},
        b'{"InstanceId": "mi-0123456789abcdef0", "AgentStatus": "Active"}',
        "sessiontoken/with+chars=",
    ),
    (
        "monitoring",
        "https://monitoring.eu-west-1.amazonaws.com/",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        b"Action=PutMetricData&Version=2010-08-01&Namespace=CWAgent&MetricData.member.1.MetricName=mem_used_percent",
        None,
    ),
    (
        "logs",
        "https://logs.eu-west-1.amazonaws.com/?b=2&a=x%20y&a=1",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"},
        b'{"logGroupName": "/lab/syslog", "logEvents": []}',
        "tok",
    ),
    ("s3", "https://s3.eu-west-1.amazonaws.com/amazon-ssm-eu-west-1/latest/VERSION", {}, b"", None),
]


@pytest.mark.parametrize(("service", "url", "headers", "body", "token"), CASES, ids=[c[0] for c in CASES])
def test_signature_matches_botocore(service, url, headers, body, token):
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), service, "eu-west-1"
    ).add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    ours = labaws.sigv4_sign(
        "POST",
        url,
        dict(headers),
        body,
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token=token,
        region="eu-west-1",
        service=service,
        amz_date=amz_date,
    )
    # botocore signs the headers it has at signing time; ours adds Host itself (urllib would send it).
    assert ours["Authorization"].split("Signature=")[1] == _botocore_with_host(
        url, headers, body, token, service, amz_date
    )
    if token:
        assert ours["X-Amz-Security-Token"] == token


def _botocore_with_host(url, headers, body, token, service, amz_date):
    from urllib.parse import urlsplit

    from botocore.compat import HTTPHeaders

    request = AWSRequest(method="POST", url=url, data=body, headers={**headers, "Host": urlsplit(url).netloc})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), service, "eu-west-1"
    )
    request.headers = HTTPHeaders()
    for k, v in {**headers, "Host": urlsplit(url).netloc, "X-Amz-Date": amz_date}.items():
        request.headers[k] = v
    if token:
        request.headers["X-Amz-Security-Token"] = token
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return signer.signature(string_to_sign, request)


def test_wrong_secret_changes_signature():
    args = dict(access_key="AK", region="eu-west-1", service="ssm", amz_date="20240101T000000Z")
    a = labaws.sigv4_sign("POST", "https://ssm.eu-west-1.amazonaws.com/", {}, b"{}", secret_key="one", **args)
    b = labaws.sigv4_sign("POST", "https://ssm.eu-west-1.amazonaws.com/", {}, b"{}", secret_key="two", **args)
    assert a["Authorization"] != b["Authorization"]
    assert "Credential=AK/20240101/eu-west-1/ssm/aws4_request" in a["Authorization"]
