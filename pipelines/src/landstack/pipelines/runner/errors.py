"""Errors of the local workflow runner; messages name the workflow, task and what to change."""

from __future__ import annotations

from landstack.pipelines.errors import BadInputError, PipelineError


class WorkflowError(PipelineError):
    """A workflow could not be run."""


class WorkflowDefinitionError(WorkflowError, BadInputError):
    """A rendered workflow uses something the runner cannot resolve (a bad reference, an unknown template)."""


class WorkflowNotFoundError(WorkflowError, BadInputError):
    """No rendered workflow of that name."""


class TaskFailedError(WorkflowError):
    """A task failed (after its retries); `exit_code` as its container would have exited (2 = bad input)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
