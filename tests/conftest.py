"""Suite-wide settings, applied before any test runs.

- `PIPEC_VERIFY=1`: every compile emits each pipeline twice and checks the
  texts are identical (off by default for speed).
- `PIPEC_CACHE_DIR`: the frontend's cache goes to a temporary folder, not
  into the source trees under `examples/` and `tests/`.
"""

import atexit
import os
import shutil
import tempfile

os.environ["PIPEC_VERIFY"] = "1"
if "PIPEC_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="pipec-test-cache-")
    os.environ["PIPEC_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)
