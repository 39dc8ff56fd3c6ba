"""The product families a production step works on, and the input field every such step shares."""

from __future__ import annotations

from pydantic import Field, field_validator

from landstack.pipelines.steps.registry import StepInput

FAMILIES = ("clcplus-backbone", "hrl-imperviousness", "emc-built", "cisc")


class FamiliesInput(StepInput):
    """A step input with `families`: known product families, at least one, each once."""

    families: list[str] = Field(default_factory=lambda: list(FAMILIES), description="product families")

    @field_validator("families")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown product families {unknown}; choose from {list(FAMILIES)}")
        if not v:
            raise ValueError(f"no product family given; choose from {list(FAMILIES)}")
        return list(dict.fromkeys(v))
