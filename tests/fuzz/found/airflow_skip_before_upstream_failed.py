"""Found by the differential fuzzer (seed 7, fz_7_7, with the language
flags; the same with a data dependency in place of `after`): a step whose
upstream steps end one skipped (`when` false) and one upstream_failed (its
own upstream step failed).  The local run waits for every upstream step and
reports `last` upstream_failed (a failure beats a skip) and the run failed.
Airflow's all_success skips a task as soon as one upstream task is skipped
while none has failed yet (airflow/ti_deps/deps/trigger_rule_dep.py): the
scheduler sees `gated` skipped before `middle` is upstream_failed, so `last`
is skipped, and with only skipped leaves the DAG run succeeds."""

from pipec import Pipeline, context, step, when

ctx = context(go=False)


@step(outputs=["a"])
@when(lambda go: go)
def gated():
    return 1


@step
def broken():
    raise ValueError("broken fails")


@step(after=["broken"], outputs=["b"])
def middle():
    return 2


@step(outputs=["c"])
def last(a, b):
    return [a, b]


pipeline = Pipeline("airflow_skip_before_upstream_failed", context=ctx)
pipeline.add_step(gated).add_step(broken).add_step(middle).add_step(last)
