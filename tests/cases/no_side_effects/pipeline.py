"""A module whose top level would crash or write a file if it ran.
Compiling it must succeed and do nothing: pipec never runs it."""

import missing_module_that_does_not_exist

from pipec import Pipeline, step

open("written_by_import.txt", "w").write("pipec ran the module!")


@step(outputs=["answer"])
def answer() -> int:
    return 42


pipeline = Pipeline("harmless")
pipeline.add_step(answer)

raise SystemExit("pipec ran the module!")
