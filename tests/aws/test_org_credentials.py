"""The org-kill role's credentials outlive the hour an assumed role lasts: botocore refreshes them (issue 15)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from botocore.credentials import RefreshableCredentials
from moto import mock_aws

from killswitch.kill.act import is_transient
from killswitch.sandbox.org import org_client


def test_org_client_credentials_are_assumed_again_when_they_expire() -> None:
    with mock_aws():
        boto3.client("organizations", "us-east-1").create_organization(FeatureSet="ALL")
        role = boto3.client("iam").create_role(
            RoleName="killswitch-org-kill",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        org = org_client(role)
        credentials = org._request_signer._credentials
        assert isinstance(credentials, RefreshableCredentials)  # a frozen set would expire in a warm container
        first = credentials.get_frozen_credentials().access_key
        assert org.describe_organization()["Organization"]["Id"].startswith("o-")
        credentials._expiry_time = datetime.now(UTC) - timedelta(minutes=1)  # an hour later
        assert credentials.get_frozen_credentials().access_key != first  # assumed again
        assert org.describe_organization()["Organization"]["Id"].startswith("o-")


def test_expired_token_is_transient() -> None:
    """An ExpiredToken from a call in flight during a refresh is retried (SNS redelivers), not a lost kill."""
    assert is_transient("ExpiredToken")
    assert is_transient("ExpiredTokenException")
