"""Concurrency limits: a foreach step whose elements may run at most two at
once, in a pipeline that runs at most three tasks at once.  Each element
records when it ran; the fan-in step checks that no more than two overlapped
(true on every target: some run elements one by one)."""

import json
import os
import time
import uuid

from pipec import Pipeline, context, step

ctx = context(items=[1, 2, 3, 4, 5, 6], state_dir=".")


def spans_folder(state_dir):
    folder = os.path.join(state_dir, "limits-spans")
    os.makedirs(folder, exist_ok=True)
    return folder


@step(foreach="items", outputs=["squares"], max_parallel=2)
def square(items, state_dir):
    start = time.time()
    time.sleep(0.3)
    with open(os.path.join(spans_folder(state_dir), uuid.uuid4().hex + ".json"), "w") as f:
        json.dump([start, time.time()], f)
    return items * items


@step(outputs=["total", "within_limit"])
def check(squares, state_dir):
    spans = []
    folder = spans_folder(state_dir)
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as f:
            spans.append(json.load(f))
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    return sum(squares), len(spans) == len(squares) and most <= 2


pipeline = Pipeline("limits", context=ctx, max_parallel=3)
pipeline.add_step(square).add_step(check)
