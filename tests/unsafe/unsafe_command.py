"""A pipeline module whose top level would run commands (in the current
folder): compiling never runs it."""

import os
import subprocess

from pipec import Pipeline, context

from evil_steps import numbers, total

os.system("touch PWNED_SYSTEM")
subprocess.run(["touch", "PWNED_SUBPROCESS"], check=False)
__import__("builtins").exec("open('PWNED_EXEC', 'w').write('x')")

unsafe_command = Pipeline("unsafe_command", context=context(count=4))
unsafe_command.add_step(numbers).add_step(total)
