"""A pipeline module that imports a module that does not exist: compiling
never imports it."""

import definitely_missing_module_xyz
from definitely_missing_module_xyz import anything

from pipec import Pipeline, context

from evil_steps import numbers, total

unsafe_import = Pipeline("unsafe_import", context=context(count=4))
unsafe_import.add_step(numbers).add_step(total)
