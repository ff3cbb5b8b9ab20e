"""What a Prefect task needs around its step: helper modules, packages, the
call itself, and the run's result kept on the server.

The Prefect backend embeds the definitions of this file that a flow uses
(see `backends/runtime_code.py`) after `prefect_runtime.py`.  Prefect and
the standard library only, one imported name per import statement, no
top-level side effects.  `hashlib` and `linecache` come from the other two
runtime files, which every flow file embeds with this one (importing them
here again would bind them twice).
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading

_PIPEC_PATH_LOCK = threading.Lock()


class _PipecHelperFinder:
    """Imports the helper modules of the source tree that the flow file
    carries (`{dotted name: source}`), so workers need no copy of them; a
    name that prefixes another is a package."""

    def __init__(self, sources):
        self.sources = dict(sources)

    def find_spec(self, name, path=None, target=None):
        if name not in self.sources:
            return None
        package = any(other.startswith(name + ".") for other in self.sources)
        origin = f"<pipec helper module {name}>"
        return importlib.util.spec_from_loader(
            name, self, origin=origin, is_package=package
        )

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = self.sources[module.__name__]
        filename = module.__spec__.origin
        module.__file__ = filename
        lines = source.splitlines(True)
        linecache.cache[filename] = (len(source), None, lines, filename)
        exec(compile(source, filename, "exec"), module.__dict__)


def _pipec_helpers(sources):
    """Make the carried helper modules importable: one finder per process,
    first on the import path, which every flow run adds its modules to."""
    with _PIPEC_PATH_LOCK:
        finders = [f for f in sys.meta_path if isinstance(f, _PipecHelperFinder)]
        if not finders:
            finders.append(_PipecHelperFinder({}))
            sys.meta_path.insert(0, finders[0])
        finders[0].sources.update(sources)


def _pipec_packages(requirements):
    """pip-install a step's `requirements` into a folder of the worker's
    cache keyed by them (PIPEC_PACKAGES_DIR, default ~/.cache/pipec/packages),
    once per host, and add it to the path.

    A folder per requirement set rather than the worker's own environment:
    nothing a step declares can change what Prefect itself runs on, and the
    next run reuses it.  It goes last on the path, so a package the worker
    already has is imported from there (Prefect's own dependencies stay
    consistent in the process that every task of the flow shares)."""
    key = hashlib.sha256("\n".join(requirements).encode("utf-8")).hexdigest()[:24]
    default = os.path.join(os.path.expanduser("~"), ".cache", "pipec", "packages")
    root = os.environ.get("PIPEC_PACKAGES_DIR") or default
    folder = os.path.join(root, key)
    with _PIPEC_PATH_LOCK:
        if not os.path.isdir(folder):
            os.makedirs(root, exist_ok=True)
            temp = tempfile.mkdtemp(prefix=f".{key}-", dir=root)
            command = [sys.executable, "-m", "pip", "install", "--quiet"]
            command += ["--disable-pip-version-check", "--no-warn-script-location"]
            command += ["--target", temp, *requirements]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(
                    f"pip could not install {requirements!r}:\n{done.stderr[-4000:]}"
                )
            try:
                os.rename(temp, folder)
            except OSError:  # another process installed the same set first
                pass
        if folder not in sys.path:
            sys.path.append(folder)
            importlib.invalidate_caches()


def _pipec_publish(key, result):
    """Keep the run's step statuses and outputs on the Prefect server: a
    markdown artifact of the flow run (key `key`) holding them as JSON.  An
    output that JSON cannot hold exactly is given as its repr() under
    "repr"."""
    from prefect.artifacts import create_markdown_artifact

    outcome = result if isinstance(result, dict) else result.data
    exact, reprs = {}, {}
    for name, value in outcome["outputs"].items():
        try:
            same = _pipec_same(json.loads(json.dumps(value)), value)
        except (TypeError, ValueError):
            same = False
        if same:
            exact[name] = value
        else:
            reprs[name] = repr(value)
    data = dict(outcome, outputs=exact, repr=reprs)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    create_markdown_artifact(
        markdown=f"```json\n{text}\n```", key=key, description="pipec run result"
    )
    return result
