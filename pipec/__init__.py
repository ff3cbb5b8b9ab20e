"""pipec: compile Python ML pipelines to Airflow, Kubeflow Pipelines and Prefect."""

from pipec.language import Pipeline, Step, context, on_failure, retry, step, when

__version__ = "0.1.0"

__all__ = ["Pipeline", "Step", "context", "on_failure", "retry", "step", "when", "__version__"]
