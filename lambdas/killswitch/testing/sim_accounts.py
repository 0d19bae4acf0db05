"""Simulated organization accounts on moto (tests, benchmarks): moto keeps one backend per account and picks it
from the credentials of the call, so clients on `sts:AssumeRole` credentials into an account id create and read
that account's resources."""

from __future__ import annotations

import boto3

from killswitch.kill.common import Clients

SETUP_ROLE = "fleet-setup"


def account_clients(account: str, *, region: str = "us-east-1") -> Clients:
    """A client factory acting in `account` (moto: no role needs to exist in it)."""
    creds = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{SETUP_ROLE}", RoleSessionName="fleet-setup"
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )
    return Clients(session)
