"""boto3 client factory: one place for retry mode, user agent and session handling.

`AWS_ENDPOINT_URL` is honoured by boto3 itself, so the same code talks to a moto server or real AWS.

Client creation is a large part of a Lambda's own CPU (a kill makes a client per region × service, in the hub for
its own account and once more for all spoke accounts), so every session that makes clients here shares,
process-wide, what does not depend on its credentials:

- the botocore data loader (`shared_loader`): a loader caches the models it has read, but each botocore session
  makes its own, and reading the EC2 model costs ~50 ms;
- the service model per service (`ClientCreator._load_service_model`): a `ServiceModel` is read-only and caches
  the operation models and shapes it builds; botocore makes a new one per client, and registering endpoint
  discovery alone then builds every operation model of the service (EC2: ~700) for every client;
- the client class per service (`ClientCreator._create_client_class`): botocore builds a new class with one method
  and one docstring object per operation for every client (~4 ms per EC2 client). The class holds only the
  operation methods, which call `self._make_api_call`: credentials, region, endpoint, config and event handlers
  are per client instance (`client_args`), never on the class.

Only sessions that went through `share_models` use these caches (their event emitters are marked); they all
register the same class-creation handlers (botocore's and boto3's defaults), so the class each would build is the
same: a session that needs its own `creating-client-class` handler must not go through `share_models`. Any other
botocore session in the process builds its own, as botocore does. Read-only sharing across threads is what botocore
already does with one client used by several threads.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from typing import Any

import boto3
import botocore.session
from botocore.client import ClientCreator
from botocore.config import Config
from botocore.loaders import Loader, create_loader

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    user_agent_extra="agent-kill-switch/0.1",
    connect_timeout=5,
    read_timeout=20,
)

_lock = threading.Lock()
_loader: Loader | None = None
_sharing: weakref.WeakSet[Any] = weakref.WeakSet()  # event emitters of the sessions that share models and classes
_service_models: dict[tuple[str, str | None], Any] = {}
_client_classes: dict[tuple[str, str], type] = {}
_load_service_model = ClientCreator._load_service_model
_build_client_class = ClientCreator._create_client_class


def _shared(cache: dict[Any, Any], key: Any, build: Any) -> Any:
    with _lock:
        found = cache.get(key)
    if found is None:
        found = build()  # outside the lock: two threads may both build once, the first one stored wins
        with _lock:
            found = cache.setdefault(key, found)
    return found


def _sharing_session(creator: ClientCreator) -> bool:
    with _lock:
        return creator._event_emitter in _sharing


def _shared_service_model(self: ClientCreator, service_name: str, api_version: str | None = None) -> Any:
    if not _sharing_session(self):  # a session that never went through `share_models`: botocore as is
        return _load_service_model(self, service_name, api_version)
    return _shared(
        _service_models, (service_name, api_version), lambda: _load_service_model(self, service_name, api_version)
    )


def _shared_client_class(self: ClientCreator, service_name: str, service_model: Any) -> type:
    if not _sharing_session(self):
        return _build_client_class(self, service_name, service_model)
    key = (service_name, service_model.api_version)
    return _shared(_client_classes, key, lambda: _build_client_class(self, service_name, service_model))


# The private methods patched, with the parameters this module calls them with. The Lambda runtime brings its own
# botocore, which may differ from the pinned one: if either method is missing or takes other parameters there,
# nothing is patched and clients are built as botocore builds them (slower, never broken).
EXPECTED_PARAMETERS = {
    "_load_service_model": ("self", "service_name", "api_version"),
    "_create_client_class": ("self", "service_name", "service_model"),
}


def install_sharing(creator_cls: type) -> bool:
    """Patch `creator_cls` (botocore's `ClientCreator`) to share service models and client classes, only if its
    private methods still have the parameters expected; whether it did."""
    for name, expected in EXPECTED_PARAMETERS.items():
        method = getattr(creator_cls, name, None)
        if method is None:
            return False
        try:
            parameters = tuple(inspect.signature(method).parameters)
        except (TypeError, ValueError):
            return False
        if parameters != expected:
            return False
    creator_cls._load_service_model = _shared_service_model  # type: ignore[attr-defined]
    creator_cls._create_client_class = _shared_client_class  # type: ignore[attr-defined]
    return True


SHARING = install_sharing(ClientCreator)


def shared_loader() -> Loader:
    """The process-wide botocore data loader (service models, endpoint rules, paginators), made on first use with
    the data path botocore's own sessions would use (`AWS_DATA_PATH`)."""
    global _loader
    with _lock:
        if _loader is None:
            _loader = create_loader(botocore.session.Session().get_config_variable("data_path"))
        return _loader


def share_models(session: boto3.Session) -> boto3.Session:
    """`session`, reading its models from `shared_loader()` and sharing client classes with the other sessions
    that went through here. Credentials, region and event handlers stay the session's own."""
    core = session._session  # boto3 has no public accessor for its botocore session
    loader = shared_loader()
    if core.get_component("data_loader") is not loader:
        core.register_component("data_loader", loader)
    with _lock:
        _sharing.add(core.get_component("event_emitter"))
    return session


def client(
    service: str, region: str | None = None, session: boto3.Session | None = None, config: Config | None = None
) -> Any:
    """A boto3 client with botocore `standard` retries (throttling is retried with backoff); `config` adds to
    them (e.g. a larger connection pool)."""
    sess = share_models(session or boto3.Session())
    return sess.client(
        service, region_name=region, config=RETRY_CONFIG if config is None else RETRY_CONFIG.merge(config)
    )


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or the exception class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__
