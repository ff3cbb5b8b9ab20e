"""How a step's return value becomes its outputs.

One definition for every target: the rules live in pipec's task runtime
(`templates/task_runtime.py`, standard library only), which the backends embed
verbatim into the files they generate.  The local runner calls the same
functions, so a step that returns the wrong shape fails with the same message
locally, on Airflow, on Kubeflow and on Prefect.

- no output declared: the return value is ignored;
- one output: the return value itself (even a tuple or a dict);
- several: a tuple or list of that length, in that order, or a dict with
  exactly those keys; anything else raises ValueError naming the step.
"""

from __future__ import annotations

from typing import Any, Sequence

from pipec.templates.task_runtime import _pipec_outputs


def normalize_outputs(step_name: str, output_names: Sequence[str], value: Any) -> dict[str, Any]:
    """The outputs of step `step_name` (declared as `output_names`), by name,
    in declaration order, from its return value `value`."""
    return _pipec_outputs(step_name, list(output_names), value)
