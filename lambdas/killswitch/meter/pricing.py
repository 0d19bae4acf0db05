"""A record's dollar cost from the guard's price table (`killswitch.guard.prices`).

Model ids as Bedrock logs them: a model id (`anthropic.claude-...-v1:0`), a cross-region or global inference
profile (`us.anthropic...`, `global.anthropic...`): both resolved by `PriceTable.resolve`; or an application
inference profile ARN (`arn:aws:bedrock:<region>:<account>:application-inference-profile/<id>`), which names no
model: `bedrock:GetInferenceProfile` says which model it routes to (cached for the container's life: a profile's
model does not change). Anything the table does not know is `UnknownModel`: counted and reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError

from killswitch import aws
from killswitch.arns import region_of
from killswitch.guard.errors import UnknownModel
from killswitch.guard.prices import ModelPrice, PriceTable
from killswitch.meter.records import InvocationRecord

APP_PROFILE_MARKER = ":application-inference-profile/"
# Errors that say the profile is gone or not ours to read: the record is unpriceable, not a retry.
PERMANENT_PROFILE_ERRORS = {"ResourceNotFoundException", "AccessDeniedException", "ValidationException"}


class ProfileResolver(Protocol):
    def model_of(self, profile_arn: str) -> str | None:
        """The model id an application inference profile routes to, or None when unknown."""
        ...


class BedrockProfileResolver:
    """`bedrock:GetInferenceProfile` per profile ARN, cached (hits and misses)."""

    def __init__(self, client_for_region: Callable[[str], Any]):
        self._client = client_for_region
        self._cache: dict[str, str | None] = {}

    def model_of(self, profile_arn: str) -> str | None:
        if profile_arn in self._cache:
            return self._cache[profile_arn]
        region = region_of(profile_arn) or ""
        try:
            resp = self._client(region).get_inference_profile(inferenceProfileIdentifier=profile_arn)
        except ClientError as exc:
            if aws.error_code(exc) not in PERMANENT_PROFILE_ERRORS:
                raise  # throttling after retries: the Lambda raises and Logs redelivers the batch
            self._cache[profile_arn] = None
            return None
        models = resp.get("models") or []
        model: str | None = None
        if models and isinstance(models[0].get("modelArn"), str):
            # arn:aws:bedrock:<region>::foundation-model/<model id>
            model = models[0]["modelArn"].rsplit("/", 1)[-1] or None
        self._cache[profile_arn] = model
        return model


class StaticProfileResolver:
    """A fixed profile → model map (tests, the demo, offline runs)."""

    def __init__(self, profiles: dict[str, str] | None = None):
        self.profiles = dict(profiles or {})

    def model_of(self, profile_arn: str) -> str | None:
        return self.profiles.get(profile_arn)


class RecordPricer:
    """Prices records; caches model id → `ModelPrice` (a busy log has few distinct ids, so the cache is tiny)."""

    def __init__(self, table: PriceTable, profiles: ProfileResolver | None = None):
        self.table = table
        self.profiles = profiles or StaticProfileResolver()
        self._prices: dict[str, ModelPrice | None] = {}

    def price_of(self, model_id: str) -> ModelPrice:
        if model_id not in self._prices:
            target: str | None = model_id
            if APP_PROFILE_MARKER in model_id:
                target = self.profiles.model_of(model_id)
            try:
                self._prices[model_id] = self.table.price(target) if target else None
            except UnknownModel:
                self._prices[model_id] = None
        price = self._prices[model_id]
        if price is None:
            raise UnknownModel(model_id)
        return price

    def cost(self, record: InvocationRecord) -> Decimal:
        """USD of one call. Bedrock counts `inputTokenCount` without the cached tokens, so the four add up."""
        return self.price_of(record.model_id).cost(
            record.input_tokens, record.output_tokens, record.cache_read_tokens, record.cache_write_tokens
        )
