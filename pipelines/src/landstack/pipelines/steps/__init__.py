"""Pipeline steps: typed functions (pydantic input -> pydantic output, JSON only) in one registry.

`run_step(name, input_dict)` runs any step in-process (the local runner); `landstack step run`
runs one from JSON (the Argo containers). Steps live in one module per group: `prepare`
(synthetic archive, features, samples), `training` (clean labels, train, evaluate, register) and
`publishing` (publish).
"""

from landstack.pipelines.steps.registry import (
    Step,
    StepInput,
    StepOutput,
    current_store,
    get_step,
    list_steps,
    run_step,
    step,
)

__all__ = ["Step", "StepInput", "StepOutput", "current_store", "get_step", "list_steps", "run_step", "step"]
