"""The Lambdas' config file: the JSON that `cdk synth` validated, read back WITHOUT validating it again.

Why: validating needs pydantic's core schemas, and building them for the config models costs more than the rest
of the kill handler's own cold start (issue 14 item 8). The config was validated at synth with the same models, so
the Lambda rebuilds the model instances with `model_construct` (`construct_validated`), and the config models
(`defer_build=True`) never build a schema in Lambda. There is one schema: the models of `killswitch.config`.

Trust comes from the file itself: synth writes an envelope (`runtime_json`) with a fingerprint of the schema's
source and a SHA-256 of the config JSON. `read_runtime_json` refuses a file whose fingerprint or checksum does not
match (a config validated by other models, or edited after synth) with `RuntimeConfigMismatch`; a plain config JSON
(no envelope: local runs, older layers) is validated as before.
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from pydantic.fields import FieldInfo

import killswitch.config as config_module
import killswitch.periods as periods_module
from killswitch.config import KillSwitchConfig

M = TypeVar("M", bound=BaseModel)

ENVELOPE_KEY = "killswitch_runtime_config"  # format version of the envelope
ENVELOPE_VERSION = 1
# The modules whose source defines the config schema (the models and the enums they use).
SCHEMA_MODULES = (config_module, periods_module)


class RuntimeConfigMismatch(ValueError):
    """The envelope was written by another schema or its config was changed after synth."""


@cache
def schema_fingerprint() -> str:
    """SHA-256 of the schema's source files: the models that validated at synth must be the ones reading here."""
    digest = hashlib.sha256()
    for module in SCHEMA_MODULES:
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


def _checksum(config_json: str) -> str:
    return hashlib.sha256(config_json.encode("utf-8")).hexdigest()


def runtime_json(config: KillSwitchConfig) -> str:
    """The config file the stack ships to the Lambdas (synth side: `config` is validated)."""
    text = config.to_json()
    envelope = {
        ENVELOPE_KEY: ENVELOPE_VERSION,
        "schema": schema_fingerprint(),
        "sha256": _checksum(text),
        "config": json.loads(text),
    }
    return json.dumps(envelope, separators=(",", ":"))


def read_runtime_json(text: str) -> KillSwitchConfig:
    """The config of `runtime_json` without validation; a plain config JSON is validated (`from_json`).

    Raises `RuntimeConfigMismatch` (or `ValueError` for text that is not JSON / not a valid config)."""
    data = json.loads(text)
    if not isinstance(data, dict) or ENVELOPE_KEY not in data:
        return KillSwitchConfig.from_json(text)
    if data[ENVELOPE_KEY] != ENVELOPE_VERSION:
        raise RuntimeConfigMismatch(
            f"envelope version {data[ENVELOPE_KEY]!r}, this code reads version {ENVELOPE_VERSION}: redeploy the stack"
        )
    if data.get("schema") != schema_fingerprint():
        raise RuntimeConfigMismatch(
            "the config was validated by another version of killswitch/config.py (schema fingerprint "
            f"{str(data.get('schema'))[:12]}, this code {schema_fingerprint()[:12]}): synth and deploy the stack again"
        )
    config = data.get("config")
    # The same serialisation as `to_json` (json keeps the key order): the bytes synth validated and hashed.
    if not isinstance(config, dict) or _checksum(json.dumps(config, separators=(",", ":"))) != data.get("sha256"):
        raise RuntimeConfigMismatch("the config does not match its sha256: the file was changed after synth")
    return construct_validated(KillSwitchConfig, config)


def construct_validated(model: type[M], data: dict[str, Any]) -> M:
    """`model.model_validate(data)` for data that model already validated (its JSON dump), without validating.

    Walks the fields' annotations: nested models, list/tuple/set/dict/Optional of them, enums, float and Decimal
    conversions; missing fields get their defaults (model factories constructed the same way, so no model is ever
    validated). An annotation it does not know raises TypeError naming the field: a new field type must be taught
    here, and the round-trip test covers every field of the shipped schema."""
    values: dict[str, Any] = {}
    fields_set: set[str] = set()
    for name, key, convert, default in _plan(model):
        if key in data:
            values[name] = convert(data[key])
            fields_set.add(name)
        elif default is not None:
            values[name] = default()
    return model.model_construct(fields_set, **values)


Converter = Callable[[Any], Any]
FieldPlan = tuple[str, str, Converter, Callable[[], Any] | None]  # name, key in the data, converter, default


@cache
def _plan(model: type[BaseModel]) -> tuple[FieldPlan, ...]:
    """Per model, once: how to convert each field and make its default (pydantic's `get_default` inspects the
    factory's signature on every call, which costs more than the whole construction)."""
    plan = []
    for name, field in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        if field.validation_alias is not None and field.validation_alias != field.alias:
            raise TypeError(f"{where}: construct_validated does not read validation aliases")
        plan.append((name, field.alias or name, _converter(field.annotation, where), _default(field, where)))
    return tuple(plan)


def _default(field: FieldInfo, where: str) -> Callable[[], Any] | None:
    if field.is_required():
        return None  # synth's validation saw it, so the data has it
    factory = field.default_factory
    if factory is None:
        value = field.default
        return (lambda: value) if isinstance(value, _IMMUTABLE) else (lambda: copy.deepcopy(value))
    if isinstance(factory, type) and issubclass(factory, BaseModel):
        model = factory
        return lambda: construct_validated(model, {})
    # Types and argument-less functions take no data: asking pydantic would run `inspect.signature` (cold: ms each).
    takes_no_data = isinstance(factory, type) or getattr(getattr(factory, "__code__", None), "co_argcount", 1) == 0
    if not takes_no_data and field.default_factory_takes_validated_data:
        raise TypeError(f"{where}: construct_validated does not call default factories that take the data")
    return cast("Callable[[], Any]", factory)


_IMMUTABLE = (type(None), bool, int, float, str, bytes, Decimal, enum.Enum, tuple, frozenset)


def _identity(value: Any) -> Any:
    return value


def _converter(annotation: Any, where: str) -> Converter:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _converter(args[0], where)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"{where}: construct_validated reads Optional unions only, not {annotation!r}")
        inner = _converter(options[0], where)
        return lambda v: None if v is None else inner(v)
    if origin is typing.Literal or annotation is Any:
        return _identity
    if origin is tuple and len(args) > 1 and args[-1] is not Ellipsis:
        items = [_converter(a, where) for a in args]
        return lambda v: tuple(c(x) for c, x in zip(items, v, strict=True))
    if origin in (list, tuple, set, frozenset):
        item = _converter(args[0], where) if args else _identity
        container = origin
        return lambda v: container(item(x) for x in v)
    if origin is dict:
        value_of = _converter(args[1], where)
        return lambda v: {k: value_of(x) for k, x in v.items()}
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            model = annotation
            return lambda v: construct_validated(model, v)
        if issubclass(annotation, enum.Enum):
            return annotation
        if annotation is float:
            return float
        if annotation is Decimal:
            return lambda v: Decimal(str(v))
        if annotation in (str, int, bool):
            return _identity
    raise TypeError(f"{where}: construct_validated does not know the annotation {annotation!r}")
