"""pipec's KFP task runtime as an installed module, for images that have
pipec installed (`[tool.pipec.kubeflow] runtime = "image"`).

A component program then imports the runtime from here instead of carrying
it, as a KFP SDK component imports kfp: the spec shrinks to the steps' own
code.  The module runs the shared task runtime and the KFP runtime in one
namespace, exactly as a program that embeds them does, so both forms behave
the same; `require` fails a task whose image has another pipec version than
the one that compiled it.
"""

from importlib import metadata, resources


def require(version):
    """Fail unless the installed pipec is `version` (the compiling one)."""
    installed = metadata.version("pipec")
    if version != installed:
        raise RuntimeError(
            f"this pipeline was compiled by pipec {version}, but the task's image has "
            f"pipec {installed}: install pipec=={version} in the image, or compile "
            "with [tool.pipec.kubeflow] runtime = \"embedded\""
        )


for _name in ("task_runtime.py", "kubeflow_runtime.py"):
    _text = resources.files(__package__).joinpath(_name).read_text(encoding="utf-8")
    exec(compile(_text, _name, "exec", dont_inherit=True), globals())
del _name, _text
