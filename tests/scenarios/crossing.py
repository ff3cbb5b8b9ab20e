"""Values crossing tasks: an object of a class defined in the pipeline
module goes from one step to the next, and a step that changes its inputs
in place changes its own copies only."""

import dataclasses

from pipec import Pipeline, context, step


@dataclasses.dataclass
class Reading:
    sensor: str
    values: list

    def mean(self):
        return sum(self.values) / len(self.values)


@step(outputs=["reading"])
def measure(sensor: str):
    return Reading(sensor, [1.0, 2.0, 4.5])


@step(outputs=["summary"])
def summarize(reading):
    return {
        "sensor": reading.sensor,
        "mean": reading.mean(),
        "same": reading == Reading("s1", [1.0, 2.0, 4.5]),
        "is_reading": isinstance(reading, Reading),
    }


@step(outputs=["spoiled"])
def spoil(reading, settings):
    reading.values.append(100.0)  # in-place changes stay in this step
    settings["scale"] = 0
    return len(reading.values)


@step(outputs=["scaled"])
def scale(reading, settings, spoiled):
    return [v * settings["scale"] for v in reading.values]


pipeline = Pipeline("crossing", context=context(sensor="s1", settings={"scale": 2}))
pipeline.add_step(measure).add_step(summarize).add_step(spoil).add_step(scale)
