"""Retries with backoff, and a fallback when a step keeps failing.

`flaky_fetch` fails on its first two attempts and succeeds on the third; it
keeps its attempt count in a file under `state_dir` so that the count
survives retries in separate processes.
"""

import json
import os

from pipec import Pipeline, context, on_failure, retry, step

ctx = context(state_dir=".pipec-state", succeed_on_attempt=3)


def _bump(state_dir: str, name: str) -> int:
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, name + ".attempts")
    count = 1
    if os.path.exists(path):
        with open(path) as f:
            count = json.load(f) + 1
    with open(path, "w") as f:
        json.dump(count, f)
    return count


@step(outputs=["payload"])
@retry(max_attempts=3, delay=0.2, backoff=2.0)
def flaky_fetch(state_dir: str, succeed_on_attempt: int) -> dict:
    attempt = _bump(state_dir, "flaky_fetch")
    if attempt < succeed_on_attempt:
        raise ConnectionError(f"upstream unavailable (attempt {attempt})")
    return {"rows": 3, "attempt": attempt}


def default_prices(payload: dict) -> dict:
    return {"source": "fallback", "prices": [1.0, 2.0, 3.0]}


@step(inputs=["payload"], outputs=["prices"], retries=1, retry_delay=0.1)
@on_failure(default_prices)
def fetch_prices(payload: dict) -> dict:
    raise RuntimeError("price service is down")


@step(inputs=["payload", "prices"], outputs=["report"])
def report(payload: dict, prices: dict) -> str:
    return f"{payload['rows']} rows after {payload['attempt']} attempts; prices from {prices['source']}"


pipeline = Pipeline("resilient", context=ctx, description="Retries and a fallback")
pipeline.add_step(flaky_fetch).add_step(fetch_prices).add_step(report)
