"""The run record: what each node of a run did, kept on disk so an interrupted run resumes.

One JSON file per run, rewritten atomically after every node; a node that succeeded is never
run again by a resumed run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any


def run_id(workflow: str, parameters: dict[str, str], context: str = "") -> str:
    """The same workflow with the same parameters (in the same context, e.g. object store) is the
    same run, and resumes."""
    doc = {"parameters": parameters, "context": context}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]
    return f"{workflow}-{digest}"


class RunRecord:
    """Node states of one run under `<runs_dir>/<run id>/record.json`."""

    def __init__(self, folder: Path, workflow: str, parameters: dict[str, str]) -> None:
        self.folder = folder
        self.path = folder / "record.json"
        self.logs = folder / "logs"
        self._lock = threading.Lock()
        self.logs.mkdir(parents=True, exist_ok=True)
        previous = self._read()
        fresh = {"workflow": workflow, "parameters": parameters, "phase": "Running", "nodes": {}}
        resumable = previous is not None and previous.get("phase") != "Succeeded"
        self.resumed = bool(previous is not None and resumable and previous.get("nodes"))
        self.doc: dict[str, Any] = previous if previous is not None and resumable else fresh
        self.doc["phase"] = "Running"
        self.doc["started"] = _now()
        self._write()

    def _read(self) -> dict[str, Any] | None:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return dict(json.loads(self.path.read_text()))
        return None

    def _write(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".record-")
        with os.fdopen(fd, "w") as f:
            json.dump(self.doc, f, indent=2)
        Path(tmp).replace(self.path)

    def succeeded(self, node: str) -> dict[str, Any] | None:
        """The recorded outputs of a node that already succeeded, else None."""
        entry = self.doc["nodes"].get(node)
        return entry if entry and entry.get("phase") in ("Succeeded", "Skipped") else None

    def set(self, node: str, phase: str, **fields: Any) -> None:
        with self._lock:
            entry = self.doc["nodes"].setdefault(node, {})
            entry.update(phase=phase, at=_now(), **fields)
            self._write()

    def finish(self, phase: str, message: str = "") -> None:
        with self._lock:
            self.doc.update(phase=phase, finished=_now(), message=message)
            self._write()

    def log_path(self, node: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in node)
        return self.logs / f"{safe}.log"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
