"""Ordering without data, trigger rules and a final step: `after=` orders
steps that pass nothing, a failed step's consumers run anyway when their
trigger rule says so (an output that was not produced arrives as None),
and the final step runs last whatever happened, with every other step's
status."""

from pipec import Pipeline, context, step, when

ctx = context(rows=[3, 1, 2], divisor=0)


@step(outputs=["data"])
def load(rows: list) -> list:
    return sorted(rows)


@step(inputs=["data"], outputs=["ratios"])
def divide(data: list, divisor: int) -> list:
    return [x / divisor for x in data]


@step(inputs=["data"], outputs=["total"])
def total(data: list) -> int:
    return sum(data)


@step(outputs=["big"], cache=False)  # (no cache: as `lonely` below)
@when(lambda total: total > 100)
def big(total: int) -> str:
    return "big"


# Runs after `total` without taking its output.
@step(after=["total"], outputs=["notice"])
def notify() -> str:
    return "total computed"


# all_done: runs although `divide` failed; `ratios` arrives as None.
@step(trigger="all_done", outputs=["cleaned"])
def cleanup(ratios, total) -> dict:
    return {"ratios": ratios, "total": total}


# none_failed: runs although `big` was skipped (none failed, one succeeded).
@step(inputs=["big", "notice"], trigger="none_failed", outputs=["summary"])
def summarize(big, notice) -> list:
    return [big, notice]


# one_succeeded: `divide` failed, `total` succeeded.
@step(inputs=["ratios", "total"], trigger="one_succeeded", outputs=["picked"])
def pick(ratios, total):
    return ratios if ratios is not None else total


# all_succeeded (the default): `divide` failed, so this is upstream_failed.
@step(after=["divide"], outputs=["strict"])
def strict() -> int:
    return 1


# none_failed with a failed upstream: upstream_failed.
@step(after=["divide", "total"], trigger="none_failed", outputs=["careful"])
def careful() -> int:
    return 2


# one_succeeded when every upstream step was skipped: skipped.  (No cache:
# Prefect would record a skip cached by the previous scenario as "Cached".)
@step(after=["big"], trigger="one_succeeded", outputs=["lonely"], cache=False)
def lonely() -> int:
    return 3


@step(final=True, outputs=["report"])
def report(statuses: dict, total) -> dict:
    return {"statuses": statuses, "total": total}


pipeline = Pipeline("anyway", context=ctx)
for s in (load, divide, total, big, notify, cleanup, summarize, pick):
    pipeline.add_step(s)
pipeline.add_step(strict).add_step(careful).add_step(lonely).add_step(report)
