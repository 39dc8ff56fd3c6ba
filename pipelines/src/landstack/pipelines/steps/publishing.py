"""Publishing step: collections and items under store prefixes into pgstac or through the STAC API."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from landstack.pipelines.errors import PipelineError
from landstack.pipelines.steps.registry import StepInput, StepOutput, current_store, step
from landstack.storage import layout

log = logging.getLogger("landstack.steps")


class PublishInput(StepInput):
    """What to publish and where."""

    collections: str = Field(layout.COLLECTIONS, description="store prefix (or key) of collection JSON")
    items: list[str] = Field(
        default_factory=lambda: [layout.PRODUCTS], description="store prefixes of item JSON / NDJSON"
    )
    target: Literal["pgstac", "api"] = Field("pgstac", description="pgstac database or STAC API")
    dsn: str | None = Field(None, description="pgstac database (default: the LANDSTACK_PG_* settings)")
    api_url: str | None = Field(None, description="STAC API (default: LANDSTACK_STAC_API_URL)")
    allow_refused: bool = Field(False, description="succeed even when some documents are refused")

    @model_validator(mode="after")
    def _target(self) -> PublishInput:
        if self.target == "pgstac" and self.api_url is not None:
            raise ValueError("'api_url' is for target 'api'; drop it or set target to 'api'")
        if self.target == "api" and self.dsn is not None:
            raise ValueError("'dsn' is for target 'pgstac'; drop it or set target to 'pgstac'")
        return self


class Refusal(BaseModel):
    """A document the target did not take, and why."""

    id: str
    source: str
    reason: str


class PublishOutput(StepOutput):
    target: str
    collections: list[str]
    items_loaded: int
    refused: list[Refusal]


# Upserts are idempotent, so this step always runs: re-publishing the same documents changes nothing.
@step("publish", PublishInput, PublishOutput, cached=False)
def publish(inp: PublishInput) -> PublishOutput:
    """Upsert collections, then every valid item whose assets exist, into pgstac or the STAC API."""
    from landstack.pipelines import publish as publishing
    from landstack.pipelines.settings import get_settings

    s = get_settings()
    target: publishing.Target
    if inp.target == "api":
        token = s.stac_api_token.get_secret_value() if s.stac_api_token else None
        target = publishing.ApiTarget(inp.api_url or s.stac_api_url, token)
    else:
        target = publishing.PgstacTarget(inp.dsn or s.pg_dsn)
    try:
        report = publishing.publish(
            current_store(), target, collections_prefix=inp.collections, items_prefixes=inp.items, settings=s
        )
    finally:
        target.close()
    refused = [Refusal(id=r.id, source=r.source, reason=r.reason) for r in report.refused]
    for r in refused:
        log.warning("refused %s (%s): %s", r.id, r.source, r.reason)
    if refused and not inp.allow_refused:
        first = refused[0]
        raise PipelineError(
            f"publishing refused {len(refused)} documents, first {first.id} ({first.source}): "
            f"{first.reason}; "
            "fix them, or set allow_refused to publish the rest"
        )
    return PublishOutput(
        target=report.target,
        collections=report.collections,
        items_loaded=report.items_loaded,
        refused=refused,
    )
