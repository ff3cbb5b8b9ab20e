"""Steps of the unsafe pipelines.  Read as a module, its top level would
import a module that does not exist, write files, run a command and exit:
compiling must read it, never run it."""

import os
import sys

import definitely_missing_module_xyz

from pipec import step

open("PWNED_STEPS", "w").write("x")
os.system("touch PWNED_STEPS_SYSTEM")
sys.exit(5)

SCALE = 3


@step(outputs=["numbers"])
def numbers(count: int) -> list:
    return [i * SCALE for i in range(count)]


@step(inputs=["numbers"], outputs=["total"])
def total(numbers: list) -> int:
    return definitely_missing_module_xyz.total(numbers)
