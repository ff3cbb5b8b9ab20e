"""Every option, literal constants followed, metadata of the pipeline."""

from pipec import Pipeline, context, step

RETRIES = 3
IMAGE = "python:3.11" "-slim"
PACKAGES = ["numpy>=1.26", "pandas"]
OFFSET = -2.5

ctx = context(
    offset=OFFSET,
    names=("a", "b"),
    settings={"depth": 3, "mode": None, "ratio": -0.5, "flags": [True, False]},
)


@step(
    name="first_step",
    outputs=["value"],
    retries=RETRIES,
    retry_delay=2,
    retry_backoff=1.5,
    timeout=30,
    cache=False,
    image=IMAGE,
    packages=PACKAGES,
    cpu=0.5,
    memory="512Mi",
    gpu=1,
)
def compute(offset: float, settings: dict) -> float:
    return offset * settings["depth"]


@step(inputs=["value"], outputs=["text"], timeout=1.5)
def render(value, names: tuple) -> str:
    return ",".join(names) + str(value)


pipeline = Pipeline(
    "with_options",
    context=ctx,
    schedule="@daily",
    description="All the options",
    owner="team",
    tags=("x", "y"),
    enable_cache=False,
    version="1.2",
)
pipeline.add_step(render).add_step(compute)
