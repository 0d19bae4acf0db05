"""Helpers for the alert tests: fixture loading and Lambda/SNS event builders shaped like real deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"

TOPIC_ARN = "arn:aws:sns:us-east-1:111122223333:killswitch-kill"
BUDGET_SUBJECT = "AWS Budgets: {name} has exceeded your alert threshold"


def letter(name: str) -> str:
    """A fixture file's text, byte for byte (CRLF kept: no newline translation)."""
    return (FIXTURES / name).read_bytes().decode("utf-8")


def fixture_json(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def sns_record(
    message: Any,
    *,
    subject: str | None = None,
    message_id: str = "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
    timestamp: str = "2026-11-20T10:04:33.123Z",
) -> dict[str, Any]:
    """One `Records[]` entry as Lambda receives it from SNS."""
    sns: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC_ARN,
        "Subject": subject,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000.pem",
        "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {},
    }
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{TOPIC_ARN}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        "Sns": sns,
    }


def sns_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def budget_record(fixture: str, *, subject_name: str | None = None, **kwargs: Any) -> dict[str, Any]:
    subject = BUDGET_SUBJECT.format(name=subject_name) if subject_name else None
    return sns_record(letter(fixture), subject=subject, **kwargs)
