"""What is new in a Sentinel-2 STAC API since the trigger last looked.

Three kinds of news start a retraining: a collection not seen before, items of a processing
baseline not seen before, and a reference year that became complete (data exists past its end).
The trigger keeps what it has seen per collection in the object store (`trigger/state.json`):
the latest item datetime, the processing baselines and the complete years. Each look searches
only items newer than the latest seen, so a daily run reads a day of items, not the archive.
`detect` never commits what it saw: it writes a pending state that the submission commits once
a training run was really submitted, so a failed submission is retried on the next run.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from dataclasses import dataclass, field
from typing import Any

from landstack.pipelines.errors import BadInputError, PipelineError
from landstack.storage import ObjectStore, StoreError
from landstack.storage.layout import TRIGGER

log = logging.getLogger(__name__)
STATE_KEY = f"{TRIGGER}/state.json"
PENDING_KEY = f"{TRIGGER}/state.pending.json"
_EPOCH = "1970-01-01T00:00:00Z"


@dataclass
class Detection:
    """The outcome of one look: what changed, and the state to commit once training is submitted."""

    changes: list[str] = field(default_factory=list)
    collection: str | None = None
    year: int | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def new(self) -> bool:
        return bool(self.changes)


def load_state(store: ObjectStore, key: str = STATE_KEY) -> dict[str, Any]:
    """The committed state (empty on the first run)."""
    if not store.exists(key):
        return {"collections": {}}
    return dict(store.read_json(key))


def _open(source: str) -> Any:
    import pystac_client
    from pystac_client.exceptions import APIError

    try:
        return pystac_client.Client.open(source)
    except (APIError, OSError, ValueError) as e:
        raise PipelineError(
            f"cannot open the Sentinel-2 STAC API {source}: {e}; check the URL and that it runs"
        ) from e


def _year_complete(year: int, latest: dt.datetime) -> bool:
    return latest >= dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)


def detect(store: ObjectStore, source: str, patterns: list[str], *, max_items: int = 100_000) -> Detection:
    """Compare the API with the committed state; the pending state goes to the store when news was found."""
    if not patterns:
        raise BadInputError('no collection patterns: give e.g. ["sentinel-2*"]')
    client = _open(source)
    state = load_state(store)
    seen: dict[str, Any] = state.setdefault("collections", {})
    det = Detection(state=state)
    ids = sorted(c.id for c in client.get_collections() if any(fnmatch.fnmatch(c.id, p) for p in patterns))
    for cid in ids:
        before = seen.get(cid)
        entry = (
            dict(before) if before else {"latest": _EPOCH, "baselines": [], "complete_years": [], "years": []}
        )
        if before is None:
            det.changes.append(f"new collection {cid}")
        search = client.search(collections=[cid], datetime=f"{entry['latest']}/..", max_items=max_items)
        baselines, years = set(entry["baselines"]), set(entry["years"])
        latest = dt.datetime.fromisoformat(str(entry["latest"]).replace("Z", "+00:00"))
        count = 0
        for item in search.items_as_dicts():
            count += 1
            props = item.get("properties", {})
            when = dt.datetime.fromisoformat(
                str(props.get("datetime") or props.get("start_datetime")).replace("Z", "+00:00")
            )
            latest = max(latest, when)
            years.add(when.year)
            if props.get("s2:processing_baseline"):
                baselines.add(str(props["s2:processing_baseline"]))
        if count >= max_items:
            log.warning(
                "collection %s: stopped after %d new items; the rest is read on the next run", cid, count
            )
        new_baselines = sorted(baselines - set(entry["baselines"]))
        if before is not None and new_baselines:
            det.changes.append(f"{cid}: new processing baseline(s) {', '.join(new_baselines)}")
        complete = sorted(y for y in years if _year_complete(y, latest))
        new_years = sorted(set(complete) - set(entry["complete_years"]))
        if new_years:
            det.changes.append(f"{cid}: reference year(s) {', '.join(map(str, new_years))} complete")
        entry.update(
            latest=latest.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            baselines=sorted(baselines),
            years=sorted(years),
            complete_years=complete,
        )
        seen[cid] = entry
        if (before is None or new_baselines or new_years) and det.collection is None:
            det.collection = cid
            det.year = max(complete) if complete else (max(years) if years else None)
    if det.new:
        store.put_json(PENDING_KEY, state)
    log.info("trigger: %s", "; ".join(det.changes) or "nothing new")
    return det


def commit(store: ObjectStore, pending_key: str = PENDING_KEY) -> None:
    """Make the pending state the committed one (after a successful submission)."""
    try:
        state = store.read_json(pending_key)
    except StoreError as e:
        raise PipelineError(
            f"no pending trigger state at {store.href(pending_key)}: run detect-new first"
        ) from e
    store.put_json(STATE_KEY, state)
    store.delete(pending_key)
