"""A pipeline module whose top level would call sys.exit: compiling never runs it."""

import sys

from pipec import Pipeline, context

from evil_steps import numbers, total

sys.exit(1)

unsafe_sys_exit = Pipeline("unsafe_sys_exit", context=context(count=4))
unsafe_sys_exit.add_step(numbers).add_step(total)
