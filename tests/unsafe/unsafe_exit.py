"""A pipeline module whose top level would exit: compiling never runs it."""

from pipec import Pipeline, context

from evil_steps import numbers, total

raise SystemExit(3)

unsafe_exit = Pipeline("unsafe_exit", context=context(count=4))
unsafe_exit.add_step(numbers).add_step(total)
