"""The local runner of rendered Argo workflows (graphlib + concurrent.futures)."""

from landstack.pipelines.runner.engine import LocalRunner, Outputs, RunOptions, RunResult
from landstack.pipelines.runner.errors import (
    TaskFailedError,
    WorkflowDefinitionError,
    WorkflowError,
    WorkflowNotFoundError,
)

__all__ = [
    "LocalRunner",
    "Outputs",
    "RunOptions",
    "RunResult",
    "TaskFailedError",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowNotFoundError",
]
