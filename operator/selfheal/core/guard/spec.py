"""`spec.guard` of a SelfHealPatch: per-patch overrides of the operator's guard settings (pure logic).

The CRD schema bounds the same fields; this model repeats the bounds so that an old CRD or
an offline check gives the same answers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfheal.core.guard.rules import FAILURE_RULE, ROLLBACK_RULE, VOLUME_RULE, GuardSettings

_MODEL = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RateRuleSpec(BaseModel):
    model_config = _MODEL

    threshold: float | None = Field(default=None, gt=0, le=1)
    window_seconds: int | None = Field(default=None, alias="windowSeconds", ge=120, le=3600, multiple_of=60)
    for_seconds: int | None = Field(default=None, alias="forSeconds", ge=0, le=86400)


class VolumeRuleSpec(BaseModel):
    model_config = _MODEL

    per_minute: float | None = Field(default=None, alias="perMinute", gt=0, le=10_000_000)
    window_seconds: int | None = Field(default=None, alias="windowSeconds", ge=120, le=3600, multiple_of=60)
    for_seconds: int | None = Field(default=None, alias="forSeconds", ge=0, le=86400)
    deactivate: bool | None = None


class RegressionSpec(BaseModel):
    """The Regression rule (failure rate well above the patch's own 24 h baseline)."""

    model_config = _MODEL

    enabled: bool | None = None
    factor: float | None = Field(default=None, ge=1.5, le=20)
    deactivate: bool | None = None


class GuardSpec(BaseModel):
    model_config = _MODEL

    enabled: bool | None = None
    min_samples: int | None = Field(default=None, alias="minSamples", ge=5, le=100_000)
    early_cutoff: bool | None = Field(default=None, alias="earlyCutoff")
    rollback_rate: RateRuleSpec | None = Field(default=None, alias="rollbackRate")
    failure_rate: RateRuleSpec | None = Field(default=None, alias="failureRate")
    volume: VolumeRuleSpec | None = None
    regression: RegressionSpec | None = None


def settings_for(*, base: GuardSettings, spec: GuardSpec | dict[str, Any] | None) -> GuardSettings:
    """The operator's settings with one patch's overrides applied."""
    if spec is None:
        return base
    if isinstance(spec, dict):
        spec = GuardSpec.model_validate(spec)
    settings = replace(
        base,
        **_changes(enabled=spec.enabled, min_samples=spec.min_samples, early_cutoff=spec.early_cutoff),
    )
    for name, rule in ((ROLLBACK_RULE, spec.rollback_rate), (FAILURE_RULE, spec.failure_rate)):
        if rule is not None:
            settings = settings.with_rule(
                name,
                **_changes(threshold=rule.threshold, window_seconds=rule.window_seconds, for_seconds=rule.for_seconds),
            )
    if spec.volume is not None:
        action = None if spec.volume.deactivate is None else ("deactivate" if spec.volume.deactivate else "warn")
        settings = settings.with_rule(
            VOLUME_RULE,
            **_changes(
                threshold=spec.volume.per_minute,
                window_seconds=spec.volume.window_seconds,
                for_seconds=spec.volume.for_seconds,
                action=action,
            ),
        )
    if spec.regression is not None:
        settings = replace(
            settings,
            regression=replace(
                settings.regression,
                **_changes(
                    enabled=spec.regression.enabled,
                    factor=spec.regression.factor,
                    deactivate=spec.regression.deactivate,
                ),
            ),
        )
    return settings


def _changes(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
