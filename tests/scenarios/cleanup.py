"""Steps that run anyway, in the forms every orchestrator with an exit
handler runs: a cleanup step after one step whatever happened to it
(`trigger="all_done"`, ordering only), and a final step that takes no
output of the others (KFP: an exit handler)."""

from pipec import Pipeline, context, step

ctx = context(divisor=0, label="nightly")


@step(outputs=["ratio"])
def divide(divisor: int) -> float:
    return 1 / divisor


# all_succeeded (the default): upstream_failed when `divide` fails.
@step(outputs=["doubled"])
def double(ratio: float) -> float:
    return ratio * 2


# Runs after `divide` whether it failed or not.
@step(after=["divide"], trigger="all_done", outputs=["cleaned"])
def cleanup(label: str) -> str:
    return "cleaned " + label


@step(final=True, outputs=["report"])
def report(label: str) -> dict:
    return {"label": label, "final": True}


pipeline = Pipeline("nightly", context=ctx)
pipeline.add_step(divide).add_step(double).add_step(cleanup).add_step(report)
