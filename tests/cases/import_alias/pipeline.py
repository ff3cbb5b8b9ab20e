"""pipec's names recognised by what they resolve to, not by spelling."""

import pipec as p
from pipec import step as s
from pipec import when as only_if


@p.step(outputs=["numbers"])
def produce(count: int = 3) -> list:
    return list(range(count))


@s
def consume(numbers: list, scale: int) -> None:
    print([n * scale for n in numbers])


@s(outputs=["total"])
@only_if(lambda numbers: len(numbers) > 0)
def total(numbers):
    return sum(numbers)


# An inline context, a chain on the constructor, a separate add_step.
first = p.Pipeline("aliased", context=p.context(scale=2)).add_step(produce)
first.add_step(total)
first.add_step(consume)

# Steps reused by a second pipeline, declared as an expression statement.
p.Pipeline(name="anonymous", context=p.context(scale=-1, count=5)).add_step(consume).add_step(produce)
