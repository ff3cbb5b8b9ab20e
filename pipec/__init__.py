"""pipec: compile Python ML pipelines to Airflow, Kubeflow Pipelines, Prefect and Dagster."""

from pipec.language import Pipeline, Step, context, on_failure, retry, step, when
from pipec.version import __version__

__all__ = ["Pipeline", "Step", "context", "on_failure", "retry", "step", "when", "__version__"]
