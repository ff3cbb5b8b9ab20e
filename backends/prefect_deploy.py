"""The Prefect target's settings, its deployment file, and the checks that
depend on how a flow is deployed (images, packages, names).

Settings (`[tool.pipec.prefect]`, or `pipec: {prefect: {...}}` in
`--config`), each documented in the README's settings table:

- `work_pool`: the work pool the deployment names.  Default: none; the
  deployment command names it (`prefect deploy ... --pool NAME`).
- `flows_dir`: the folder of the flow files relative to the folder that
  `prefect deploy` runs in (the project root), which is also what workers
  load the entrypoint relative to.  Default: the `[tool.pipec]` output
  folder for prefect relative to pyproject.toml, else ".".
- `working_directory`: the project root on a worker host, for the
  deployment's `set_working_directory` pull step.  Default
  `{{ $PIPEC_PROJECT_ROOT }}`, which Prefect resolves from the worker's
  environment at run time (so each host can keep the project elsewhere, and
  `prefect deploy` inserts no deploy-time absolute path).
- `image`: the pipeline-wide image, written as the work pool's
  `job_variables.image` (default: the image the steps name, if any).
- `packages`: `install` (default: a step's `packages` are pip-installed at
  task start into a folder of the worker's cache keyed by the requirements)
  or `error`.
- `helper_modules`: `embed` (default: helper modules of the source tree are
  carried in the flow file) or `import` (workers import them from the
  project, which must then be on their path).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from pipec import ir
from pipec.backends import yamlfmt
from pipec.backends.pyfmt import comment_lines, header_value

CRON_ALIASES = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
DEFAULT_WORKING_DIRECTORY = "{{ $PIPEC_PROJECT_ROOT }}"
CHOICES = {"packages": ("install", "error"), "helper_modules": ("embed", "import")}
# Prefect refuses flow and deployment names with these (prefect.types.names).
PREFECT_BANNED = "/%&><"
# Top-level modules a flow file imports, besides the standard library's: a
# flow file of that name would shadow it (the file's folder comes first on
# the path when it runs).
FLOW_IMPORTS = ("prefect", "pydantic", "anyio", "httpx", "typing_extensions")


@dataclass(frozen=True)
class PrefectSettings:
    work_pool: str | None = None
    flows_dir: str = "."
    working_directory: str = DEFAULT_WORKING_DIRECTORY
    image: str | None = None
    packages: str = "install"
    helper_modules: str = "embed"

    @classmethod
    def read(cls, backend) -> "PrefectSettings":
        """The settings of `backend.options`; a bad value is reported (PC503)
        and its default kept."""
        values = {}
        for key, default in cls.__dataclass_fields__.items():
            value = backend.options.setting(key, None)
            if value is None:
                continue
            if not isinstance(value, str) or (key in CHOICES and value not in CHOICES[key]):
                expected = " or ".join(repr(c) for c in CHOICES.get(key, ())) or "a string"
                backend.diagnostics.add("PC503", None, detail=f"prefect setting '{key}' must be {expected}, not {value!r}")
                continue
            if key == "flows_dir" and (value.startswith("/") or ".." in value.split("/")):
                backend.diagnostics.add("PC503", None, detail=f"prefect setting 'flows_dir' must be a relative path inside the project, not {value!r}")
                continue
            values[key] = (value.rstrip("/") or ".") if key == "flows_dir" else value
        return cls(**values)


def pipeline_image(backend, pipeline: ir.Pipeline, settings: PrefectSettings) -> str | None:
    """The one image of the flow run: the `image` setting, else the steps'
    image.  A step whose image differs is reported (one flow run is one
    work-pool job, so one image)."""
    image = settings.image
    for step in pipeline.steps:
        if step.image is None:
            continue
        if image is None:
            image = step.image
        elif step.image != image:
            backend.unsupported(
                step,
                f"the image {step.image!r} while the flow runs in {image!r} (a Prefect flow run is one "
                "work-pool job with one image: give every step the same image, split the pipeline, "
                "or use the kubeflow target for per-step images)",
                "image",
                f"the step runs in {image!r}",
            )
    return image


def check_names(backend, pipeline: ir.Pipeline) -> None:
    """Prefect's own limits on the flow and deployment name, and flow file
    names that would shadow a module the file imports."""
    banned = sorted({c for c in pipeline.name if c in PREFECT_BANNED})
    if banned:
        backend.diagnostics.add(
            "PC604", pipeline.span, what=f"pipeline name {pipeline.name!r}", target=backend.name,
            detail=f"Prefect refuses flow and deployment names containing {' '.join(banned)}; rename the pipeline",
        )
    stem = pipeline.name.rsplit("/", 1)[-1]
    if stem in FLOW_IMPORTS or stem in getattr(sys, "stdlib_module_names", ()):
        backend.diagnostics.add(
            "PC604", pipeline.span, what=f"pipeline name {pipeline.name!r}", target=backend.name,
            detail=f"the flow file {stem}.py would shadow the module {stem!r} that the flow imports "
            "(its folder comes first on the path when it runs); rename the pipeline",
        )


def entrypoint(settings: PrefectSettings, pipeline: ir.Pipeline, flow: str) -> str:
    path = f"{pipeline.name}.py"
    if settings.flows_dir != ".":
        path = f"{settings.flows_dir}/{path}"
    return f"{path}:{flow}"


# `prefect deploy` replaces every `{{ name }}` in prefect.yaml (its
# templating has no escape): values that contain one cannot be written there.
PREFECT_PLACEHOLDER = re.compile(r"({{\s*([\w\.\-\[\]$]+)\s*}})")


def templated(value: object) -> bool:
    if isinstance(value, str):
        return PREFECT_PLACEHOLDER.search(value) is not None
    if isinstance(value, dict):
        return any(templated(k) or templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(templated(v) for v in value)
    return False


def deployment_yaml(backend, pipeline: ir.Pipeline, flow: str, settings: PrefectSettings, image: str | None) -> str:
    """`<pipeline>.prefect.yaml`: the deployment of the flow.  Parameters and
    a description that `prefect deploy` would template are left out (the
    flow's own defaults and description are the same values); a tag it would
    template has no other place, so it is kept in the header comment.  The
    explicit pull step keeps `prefect deploy` from inserting its own
    absolute working directory."""
    entry: dict = {"name": pipeline.name, "entrypoint": entrypoint(settings, pipeline, flow)}
    notes = []
    if pipeline.description and not templated(pipeline.description):
        entry["description"] = pipeline.description
    if pipeline.version and not templated(pipeline.version):
        entry["version"] = pipeline.version
    tags = [tag for tag in pipeline.tags if not templated(tag)]
    for tag in pipeline.tags:
        if templated(tag):
            backend.note_metadata(pipeline, f"the tag {tag!r} (prefect deploy would template it)")
            notes.append(f"tag: {header_value(tag)}")
    if tags:
        entry["tags"] = tags
    entry["parameters"] = {p.name: p.default for p in pipeline.context if not templated(p.default)}
    kept = [p.name for p in pipeline.context if templated(p.default)]
    if kept:
        notes.append(f"parameters with the flow's defaults (not written here): {', '.join(kept)}")
    if pipeline.schedule:
        cron = CRON_ALIASES.get(pipeline.schedule, pipeline.schedule)
        entry["schedules"] = [{"cron": cron, "timezone": pipeline.timezone or "UTC"}]
    entry["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": settings.working_directory}}]
    pool: dict = {}
    if settings.work_pool:
        pool["name"] = settings.work_pool
    if image:
        pool["job_variables"] = {"image": image}
    if pool:
        entry["work_pool"] = pool
    prefect_file = f"{pipeline.name}.prefect.yaml"
    if settings.flows_dir != ".":
        prefect_file = f"{settings.flows_dir}/{prefect_file}"
    deploy = f"prefect --no-prompt deploy --prefect-file {prefect_file} --all"
    if not settings.work_pool:
        deploy += " --pool POOL"
    header = [f"Generated by pipec from {pipeline.source_path}: do not edit by hand.",
              f"Prefect deployment of flow {pipeline.name!r} ({pipeline.name}.py); deploy it from the",
              f"project root with: {deploy}",
              "Workers need PIPEC_PROJECT_ROOT set to the project root on their host."
              if settings.working_directory == DEFAULT_WORKING_DIRECTORY else ""]
    if pipeline.owner:
        header.append(f"owner: {header_value(pipeline.owner)}")
    body = yamlfmt.dump({"deployments": [entry]}, sort_keys=False, width=88)
    lines = [line for text in header + notes if text for line in comment_lines(text)]
    return "\n".join(lines) + "\n" + body
