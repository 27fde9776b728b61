"""Who is choosing: an advisor profile (weights per dimension and hard constraints), read
from YAML with errors that name the file, the line and the field.

(Moved from ``crossroads.decide.advisor``, which still exports these names.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError
from .dimensions import DIMENSIONS

__all__ = ["Constraints", "Profile", "Weights", "load_profile", "with_overrides"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Weights(_Strict):
    """How much each dimension matters (non-negative, any scale; at least one positive)."""

    cost: float = Field(1.0, ge=0)
    customization: float = Field(1.0, ge=0)
    transparency: float = Field(1.0, ge=0)
    performance: float = Field(1.0, ge=0)
    ease_of_use: float = Field(1.0, ge=0)
    scalability: float = Field(1.0, ge=0)
    support: float = Field(1.0, ge=0)
    ecosystem: float = Field(1.0, ge=0)
    control: float = Field(1.0, ge=0)
    ethics_bias: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _some_positive(self) -> Weights:
        if not any(v > 0 for v in self.as_dict().values()):
            raise ValueError("at least one weight must be positive")
        return self

    def as_dict(self) -> dict[str, float]:
        return {key: float(getattr(self, key)) for key in DIMENSIONS}


class Constraints(_Strict):
    """Hard constraints (see the module docstring for exactly what each one excludes)."""

    on_premises: bool = False
    monthly_budget_usd: float | None = Field(None, ge=0)
    no_ml_engineers: bool = False
    regulated: bool = False
    languages: list[str] = Field(default_factory=list)
    languages_strict: bool = False
    p95_latency_s: float | None = Field(None, gt=0)
    volume_tokens_per_month: float = Field(10_000_000, gt=0)


class Profile(_Strict):
    """Who is choosing: weights per dimension and hard constraints."""

    name: str = Field(min_length=1)
    description: str = ""
    weights: Weights = Field(default_factory=Weights)
    constraints: Constraints = Field(default_factory=Constraints)


def load_profile(path: str | Path) -> Profile:
    """Read a profile YAML; errors name the file, the line and the field."""
    from ..config.yamlfile import read_yaml  # deferred: only needed when a file is read

    document = read_yaml(Path(path), "profile")
    if not isinstance(document.data, dict):
        raise ConfigError(f"{path}:1: a profile is a mapping (name, weights, constraints).")
    return document.validate(Profile, "Invalid profile", field_format="field '{}'")


def with_overrides(profile: Profile, **overrides: Any) -> Profile:
    """A copy with weights (``cost=3`` or ``weights={...}``) or constraints replaced."""
    data = profile.model_dump()
    for key, value in overrides.items():
        if key == "weights":
            data["weights"].update(value)
        elif key in DIMENSIONS:
            data["weights"][key] = value
        elif key in Constraints.model_fields:
            data["constraints"][key] = value
        else:
            raise ValueError(f"unknown override {key!r}: a dimension or a constraint")
    return Profile.model_validate(data)
