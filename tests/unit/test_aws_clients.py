"""`killswitch.aws`: sessions that make clients here share the botocore loader, the service model and the client
class per service (every Lambda session makes clients per region × service, the spoke accounts' shared session
too), while every client keeps its own credentials and region. Sessions that never went through `killswitch.aws`
are left to botocore as is."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from killswitch import aws


def session(key: str) -> boto3.Session:
    return boto3.Session(aws_access_key_id=key, aws_secret_access_key=f"{key}-secret", region_name="us-east-1")


def test_clients_of_two_sessions_share_class_and_model_but_not_credentials() -> None:
    first = aws.client("ec2", "us-east-1", session=session("AKIAFIRST"))
    second = aws.client("ec2", "eu-west-1", session=session("AKIASECOND"))

    assert type(first) is type(second)
    assert first.meta.service_model is second.meta.service_model
    assert first._request_signer._credentials.access_key == "AKIAFIRST"
    assert second._request_signer._credentials.access_key == "AKIASECOND"
    assert (first.meta.region_name, second.meta.region_name) == ("us-east-1", "eu-west-1")
    assert first.meta.events is not second.meta.events  # handlers registered on one client stay on that client
    s1, s2 = session("AKIA1"), session("AKIA2")
    aws.share_models(s1)
    aws.share_models(s2)
    assert s1._session.get_component("data_loader") is aws.shared_loader()
    assert s2._session.get_component("data_loader") is aws.shared_loader()


class Stop(Exception):
    pass


def test_event_handlers_stay_with_their_client_when_the_class_is_shared() -> None:
    first = aws.client("ec2", "us-east-1", session=session("AKIAONE"))
    second = aws.client("ec2", "us-east-1", session=session("AKIATWO"))
    seen: list[str] = []

    def stop(name: str) -> Callable[..., None]:
        def handler(**_: object) -> None:
            seen.append(name)
            raise Stop  # before any request is made

        return handler

    first.meta.events.register("before-parameter-build.ec2.DescribeRegions", stop("first"))
    with pytest.raises(Stop):
        first.describe_regions()
    second.meta.events.register("before-parameter-build.ec2.DescribeRegions", stop("second"))
    with pytest.raises(Stop):
        second.describe_regions()

    assert seen == ["first", "second"]  # the first client's handler never ran for the second


def test_sessions_that_never_went_through_killswitch_build_their_own_client_class() -> None:
    shared = aws.client("ec2", "us-east-1", session=session("AKIASHARED"))
    plain = session("AKIAPLAIN").client("ec2", region_name="us-east-1")

    assert type(plain) is not type(shared)
    assert plain.meta.service_model is not shared.meta.service_model


def test_sharing_is_installed_on_the_pinned_botocore() -> None:
    assert aws.SHARING is True


def test_a_botocore_with_other_private_signatures_is_left_alone() -> None:
    """The Lambda runtime brings its own botocore: if the patched private methods changed there, nothing is patched
    and clients are built as botocore builds them."""

    class OtherCreator:
        def _load_service_model(self, service_name: str) -> None: ...  # no api_version

        def _create_client_class(self, service_name: str, service_model: object) -> None: ...

    before = (OtherCreator._load_service_model, OtherCreator._create_client_class)
    assert aws.install_sharing(OtherCreator) is False
    assert (OtherCreator._load_service_model, OtherCreator._create_client_class) == before

    class Missing:
        def _create_client_class(self, service_name: str, service_model: object) -> None: ...

    assert aws.install_sharing(Missing) is False
    assert not hasattr(Missing, "_load_service_model")
