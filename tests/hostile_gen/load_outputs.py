"""Load generated files as their orchestrators do, in a process of its own
(Airflow, KFP and Prefect are heavy to import and keep global state).

    python load_outputs.py FOLDER

FOLDER/<case>/<target>/<file>: Airflow files are parsed (`ast`) and loaded
with `DagBag` (one per case: DAG ids repeat across cases), KFP YAML with
`yaml.safe_load` and `kfp.components.load_component_from_file` (the proto
schema), Prefect flow files imported (importing runs nothing).  Prints one
JSON object: {"loaded": N, "failures": [[path, error], ...]}.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import traceback
from pathlib import Path


def main(folder: Path) -> dict:
    failures: list[list[str]] = []
    loaded = 0
    for case in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted((case / "airflow").glob("*.py")):
            try:
                ast.parse(path.read_text(encoding="utf-8"))
            except SyntaxError as exc:
                failures.append([str(path), f"ast: {exc}"])
        if list((case / "airflow").glob("*.py")):
            from airflow.dag_processing.dagbag import DagBag

            bag = DagBag(dag_folder=str(case / "airflow"))
            failures.extend([str(k), str(v)[-2000:]] for k, v in bag.import_errors.items())
            loaded += len(bag.dag_ids)
        for path in sorted((case / "kubeflow").glob("*.yaml")):
            try:
                import yaml
                from kfp.components import load_component_from_file

                yaml.safe_load(path.read_text(encoding="utf-8"))
                load_component_from_file(str(path))
                loaded += 1
            except Exception:
                failures.append([str(path), traceback.format_exc()[-2000:]])
        for index, path in enumerate(sorted((case / "prefect").glob("*.py"))):
            try:
                spec = importlib.util.spec_from_file_location(f"pipec_flow_{case.name}_{index}", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                loaded += 1
            except BaseException:
                failures.append([str(path), traceback.format_exc()[-2000:]])
    return {"loaded": loaded, "failures": failures}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
