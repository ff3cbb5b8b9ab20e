"""A pipeline module whose top level would write files (in the current
folder): compiling never runs it."""

import pathlib

from pipec import Pipeline, context

from evil_steps import numbers, total

open("PWNED", "w").write("x")
pathlib.Path("PWNED_PATHLIB").write_text("x")

unsafe_write = Pipeline("unsafe_write", context=context(count=4))
unsafe_write.add_step(numbers).add_step(total)
