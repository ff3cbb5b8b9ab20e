"""Hostile input, case by case: deep nesting, valid Python that recurses
deeply, values no file can carry, broken configuration and run records,
file names, the frontend cache, leftovers of killed writes, and source
encodings.  Every input is a located diagnostic with exit 2, or compiles;
never exit 3, never a traceback, never a crash of the process.

Inputs that crashed the process (a segfault in libcst's parser, gigabytes
of memory) run in a child process with an address-space limit."""

from __future__ import annotations

import ast
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_gen import cli

HEAD = "from pipec import Pipeline, context, step, when\n"


def module(body: str = "k", *, ctx: str = "k=1", opts: str = "", extra: str = "", when: str = "") -> str:
    return (
        HEAD
        + f"ctx = context({ctx})\n"
        + extra
        + f"\n\n@step(outputs=['o']{opts})\n"
        + (f"@when({when})\n" if when else "")
        + f"def s(k):\n    return {body}\n\n\npipeline = Pipeline('p', context=ctx)\npipeline.add_step(s)\n"
    )


def write(folder: Path, text: str, name: str = "hostile.py") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


LOCATED = re.compile(r"^(?P<path>[^\n:]+):(?P<line>\d+):(?P<col>\d+): error: ", re.MULTILINE)


def assert_located(err: str, path: str, line: int | None = None) -> list[re.Match]:
    assert "Traceback" not in err and "internal error" not in err, err
    found = [m for m in LOCATED.finditer(err) if m["path"] == path]
    assert found, f"no located error for {path}:\n{err}"
    if line is not None:
        assert any(int(m["line"]) == line for m in found), err
    return found


def run_child(args: list[str], cwd: Path, memory: int = 3 << 30, timeout: int = 300) -> subprocess.CompletedProcess:
    """`pipec ARGS` in a child process whose address space is capped."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-c", "import sys; from pipec.cli import main; sys.exit(main())", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
        env={**os.environ, "PIPEC_NO_CACHE": "1"},
    )


# --------------------------------------------------------------------------
# Deep nesting: refused where CPython refuses it, located, never a crash


@pytest.mark.parametrize(
    "body, message",
    [
        ("(" * 1300 + "k" + ")" * 1300, "too many nested parentheses"),
        ("f(" * 5000 + "k" + ")" * 5000, "too many nested parentheses"),
        ("-" * 20000 + "k", "nested too deeply"),
        ("[" * 201 + "k" + "]" * 201, "too many nested parentheses"),
    ],
    ids=["parens-1300", "calls-5000", "unary-20000", "lists-201"],
)
def test_deep_nesting_is_a_located_error_in_bounded_memory(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, module(body, extra="def f(x):\n    return x\n"))
    done = run_child(["check", path.name], tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert message in done.stderr
    assert_located(done.stderr, path.name, line=9)


def test_the_bracket_limit_is_cpythons(tmp_path: Path) -> None:
    """200 nested brackets compile (CPython accepts them); 201 do not, and
    the error points at the same column as CPython's."""
    ok = write(tmp_path, module("[" * 200 + "k" + "]" * 200), "ok.py")
    assert cli(["check", str(ok)], cwd=tmp_path)[0] == 0
    source = module("(" * 201 + "k" + ")" * 201)
    bad = write(tmp_path, source, "bad.py")
    with pytest.raises(SyntaxError) as cpython:
        compile(source, "bad.py", "exec")
    rc, _, err = cli(["check", "bad.py"], cwd=tmp_path)
    assert rc == 2
    assert f"bad.py:{cpython.value.lineno}:{cpython.value.offset}: error: syntax error: too many nested parentheses" in err


def test_many_deep_statements_are_refused_before_memory_runs_out(tmp_path: Path) -> None:
    """Forty statements of 200-deep calls: each is valid Python, together
    they took libcst's parser 3.5 GB."""
    lines = "".join(f"x{i} = " + "f(" * 200 + "1" + ")" * 200 + "\n" for i in range(40))
    path = write(tmp_path, module(extra="def f(x):\n    return x\n" + lines))
    done = run_child(["check", path.name], tmp_path, memory=2 << 30, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "too complex" in done.stderr
    assert_located(done.stderr, path.name)


# --------------------------------------------------------------------------
# Valid Python that nests deeply compiles, and the output loads

DEEP_VALID = {
    "sum-490": dict(body=" + ".join(["k"] * 490)),
    "strings-490": dict(body=" ".join(["'a'"] * 490)),
    "unary-1000": dict(body="-" * 1000 + "k"),
    "attributes-500": dict(body="k" + ".real" * 500),
    "subscripts-1000": dict(body="k" + "[0]" * 1000),
    "not-1000": dict(body="k", when="lambda k: " + "not " * 1000 + "k"),
    "helpers-350": dict(
        body="h0(k)",
        extra="".join(f"def h{i}(x):\n    return h{i + 1}(x)\n\n" for i in range(350)) + "def h350(x):\n    return x\n",
    ),
}


@pytest.mark.parametrize("case", list(DEEP_VALID), ids=list(DEEP_VALID))
def test_deep_valid_python_compiles(tmp_path: Path, case: str) -> None:
    source = module(**DEEP_VALID[case])
    compile(source, "x.py", "exec")  # CPython accepts it
    path = write(tmp_path, source)
    for target in ("airflow", "kubeflow", "prefect"):
        out = tmp_path / target
        rc, _, err = cli(["compile", str(path), "--target", target, "-o", str(out)], cwd=tmp_path)
        assert rc == 0, f"{target}: {err[-3000:]}"
        (produced,) = [p for p in out.iterdir() if not p.name.startswith(".") and p.suffix in (".py", ".yaml")][:1]
        if produced.suffix == ".py":
            ast.parse(produced.read_text(encoding="utf-8"))


def test_deep_walks_do_not_depend_on_the_recursion_limit(tmp_path: Path) -> None:
    """The frontend gives the same result whatever the caller's limit."""
    from pipec import frontend

    path = write(tmp_path, module(**DEEP_VALID["unary-1000"]))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        result = frontend.load(path)
    finally:
        sys.setrecursionlimit(old)
    assert result.ok, result.diagnostics
    assert sys.getrecursionlimit() == old


# --------------------------------------------------------------------------
# Values and options no target can carry


@pytest.mark.parametrize(
    "kwargs, code",
    [
        (dict(opts=", retries=2, retry_delay=1e309"), "PC202"),
        (dict(opts=", retries=2, retry_backoff=1e200"), "PC202"),
        (dict(opts=", retries=60, retry_backoff=2.0"), "PC202"),
        (dict(ctx="k=0x" + "f" * 4000), "PC309"),
        (dict(ctx="k=" + "9" * 4301), "PC309"),
        (dict(ctx="k='\\ud800'"), "PC309"),
        (dict(ctx="k=['a', {'b': '\\udfff'}]"), "PC309"),
    ],
    ids=["delay-inf", "backoff-1e200", "backoff-overflow", "hex-4000", "decimal-4301", "surrogate", "nested-surrogate"],
)
def test_values_no_file_can_carry_are_located_errors(tmp_path: Path, kwargs: dict, code: str) -> None:
    path = write(tmp_path, module(**kwargs))
    for target in ("airflow", "kubeflow", "prefect", "ir"):
        rc, _, err = cli(["compile", path.name, "--target", target, "-o", "out"], cwd=tmp_path)
        assert rc == 2, f"{target}: {err}"
        assert f"[{code}]" in err
        assert_located(err, path.name)
    assert not (tmp_path / "out").exists()


def test_the_largest_integer_python_reads_back_compiles(tmp_path: Path) -> None:
    path = write(tmp_path, module(ctx="k=" + "9" * 4300))
    rc, _, err = cli(["compile", path.name, "--target", "prefect", "-o", "out"], cwd=tmp_path)
    assert rc == 0, err
    ast.parse((tmp_path / "out" / "p.py").read_text(encoding="utf-8"))


def test_a_nul_byte_in_the_source_is_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, module(ctx="k='a\x00b'"))
    for command in (["check", path.name], ["graph", path.name], ["compile", path.name, "-t", "kubeflow", "-o", "o"]):
        rc, _, err = cli(command, cwd=tmp_path)
        assert rc == 2, err
        assert f"{path.name}:2:19: error: syntax error: source code cannot contain null bytes" in err


@pytest.mark.parametrize("cache", ["1", ""])
def test_a_file_name_that_is_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str) -> None:
    monkeypatch.setenv("PIPEC_NO_CACHE", cache)
    name = os.fsdecode(b"bad\xff.py")
    write(tmp_path, module(), name)
    for command in (["check", name], ["graph", name], ["compile", name, "-t", "airflow", "-o", "o"], ["run", name]):
        rc, _, err = cli(command, cwd=tmp_path)
        assert rc == 2, (command, err)
        assert "not valid UTF-8" in err and "bad\\udcff.py" in err, err
        err.encode("utf-8")  # printable anywhere


def test_control_characters_in_file_names_are_escaped(tmp_path: Path) -> None:
    name = "a\nb\x1b[31m.py"
    write(tmp_path, "x = (\n", name)
    rc, _, err = cli(["check", name], cwd=tmp_path)
    assert rc == 2
    first = err.splitlines()[0]
    assert first.startswith("a\\nb\\x1b[31m.py:"), err
    assert "\x1b" not in err


@pytest.mark.parametrize(
    "where, text",
    [("--set", "k=&a [*a]"), ("--config", "k: &a [*a]\n"), ("--config", "k: &a {x: *a}\n")],
)
def test_self_referencing_yaml_aliases(tmp_path: Path, where: str, text: str) -> None:
    path = write(tmp_path, module(ctx="k=[1]"))
    if where == "--set":
        args = ["--set", text]
    else:
        (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
        args = ["--config", "c.yaml"]
    rc, _, err = cli(["compile", path.name, "-t", "airflow", "-o", "o", *args], cwd=tmp_path)
    assert rc == 2, err
    assert "aliases" in err and "internal error" not in err
    if where == "--config":
        assert re.search(r"^c\.yaml:1:\d+: error: ", err, re.MULTILINE), err


def test_pipec_settings_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, module())
    (tmp_path / "c.yaml").write_text(
        "pipec:\n  kubeflow: {base_image: [1, 2], base_imag: x}\n  airflow: {xcom_max_bytes: '1'}\n",
        encoding="utf-8",
    )
    rc, _, err = cli(["compile", path.name, "-t", "kubeflow", "-o", "o", "--config", "c.yaml"], cwd=tmp_path)
    assert rc == 2, err
    assert "'base_image' for target 'kubeflow'" in err and "must be a string" in err
    assert "unknown setting 'base_imag'" in err and "did you mean 'base_image'" in err
    assert "'xcom_max_bytes' for target 'airflow'" in err
    assert re.search(r"^c\.yaml:2:14: error: .*'base_image'", err, re.MULTILINE), err
    assert re.search(r"^c\.yaml:2:34: error: .*'base_imag'", err, re.MULTILINE), err
    assert re.search(r"^c\.yaml:3:\d+: error: .*'xcom_max_bytes'", err, re.MULTILINE), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "record",
    ["[1, 2]", '{"pipeline_name": "p", "step_results": [1]}', '{"pipeline_name": "p", "step_results": {"s": 5}}',
     '{"pipeline_name": "p", "context": "x"}', '{"pipeline_name": "p", "step_results": {"s": {"status": [1]}}}', "{"],
)
def test_a_run_record_of_the_wrong_shape(tmp_path: Path, record: str) -> None:
    path = write(tmp_path, module())
    store = tmp_path / "store"
    assert cli(["run", path.name, "--store", str(store)], cwd=tmp_path)[0] == 0
    (run,) = (store / "runs").iterdir()
    (run / "record.json").write_text(record, encoding="utf-8")
    for resume in (run.name, "latest"):
        rc, _, err = cli(["run", path.name, "--store", str(store), "--resume", resume], cwd=tmp_path)
        assert rc == 2, err
        assert "internal error" not in err and "Traceback" not in err


def test_a_store_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, module())
    (tmp_path / "afile").write_text("", encoding="utf-8")
    rc, _, err = cli(["run", path.name, "--store", "afile"], cwd=tmp_path)
    assert rc == 2, err
    assert "cannot use the run store" in err and "internal error" not in err


# --------------------------------------------------------------------------
# Source encodings and __future__


def test_a_pep_263_declaration_is_honoured(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\n" + module(ctx="k='caf\xe9'")
    (tmp_path / "latin.py").write_bytes(source.encode("latin-1"))
    rc, _, err = cli(["compile", "latin.py", "-t", "ir", "-o", "out"], cwd=tmp_path)
    assert rc == 0, err
    data = json.loads((tmp_path / "out" / "p.json").read_text(encoding="utf-8"))
    assert "café" in json.dumps(data, ensure_ascii=False)


def test_an_unknown_encoding_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "enc.py").write_bytes(b"# coding: no-such-codec\nx = 1\n")
    rc, _, err = cli(["check", "enc.py"], cwd=tmp_path)
    assert rc == 2 and "enc.py:1:1: error:" in err, err


def test_a_late_future_import_is_a_syntax_error(tmp_path: Path) -> None:
    source = '"""Doc."""\nfrom __future__ import annotations\n' + module() + "from __future__ import division\n"
    with pytest.raises(SyntaxError) as cpython:
        compile(source, "late.py", "exec")
    write(tmp_path, source, "late.py")
    rc, _, err = cli(["check", "late.py"], cwd=tmp_path)
    assert rc == 2
    where = f"{cpython.value.lineno}:{cpython.value.offset}"
    assert f"late.py:{where}: error: syntax error: from __future__ imports must occur at the beginning of the file" in err
    fine = write(tmp_path, '"""Doc."""\nfrom __future__ import annotations\n' + module(), "fine.py")
    assert cli(["check", fine.name], cwd=tmp_path)[0] == 0


# --------------------------------------------------------------------------
# The frontend cache never changes what pipec emits


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PIPEC_NO_CACHE", raising=False)
    monkeypatch.delenv("PIPEC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    from pipec.frontend import cache

    monkeypatch.setattr(cache, "_SECRET", [])
    project = tmp_path / "project"
    project.mkdir()
    return project


def _entries(project: Path) -> list[Path]:
    return sorted((project / ".pipec" / "cache" / "frontend").glob("*.json"))


def test_an_edited_cache_entry_changes_nothing(cached: Path) -> None:
    write(cached, module(body="k + 1"), "p.py")
    assert cli(["compile", "p.py", "-t", "prefect", "-o", "a"], cwd=cached)[0] == 0
    (entry,) = _entries(cached)
    text = entry.read_text(encoding="ascii")
    assert "k + 1" in text
    entry.write_text(text.replace("k + 1", "__import__('os').system('touch PWNED')"), encoding="ascii")
    assert cli(["compile", "p.py", "-t", "prefect", "-o", "b"], cwd=cached)[0] == 0
    assert (cached / "a" / "p.py").read_bytes() == (cached / "b" / "p.py").read_bytes()
    assert "PWNED" not in (cached / "b" / "p.py").read_text(encoding="utf-8")


def test_an_entry_made_with_another_secret_is_a_miss(cached: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pipec.frontend import cache

    write(cached, module(body="k + 1"), "p.py")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-user"))
    monkeypatch.setattr(cache, "_SECRET", [])
    assert cli(["compile", "p.py", "-t", "prefect", "-o", "a"], cwd=cached)[0] == 0
    (entry,) = _entries(cached)
    planted = entry.read_text(encoding="ascii").replace("k + 1", "k + 2")
    mac, _, body = planted.partition("\n")
    entry.write_text(cache._mac(cache.secret(), body) + "\n" + body, encoding="ascii")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr(cache, "_SECRET", [])
    assert cli(["compile", "p.py", "-t", "prefect", "-o", "b"], cwd=cached)[0] == 0
    assert "k + 2" not in (cached / "b" / "p.py").read_text(encoding="utf-8")
    secret = tmp_path / "user-cache" / "pipec" / "cache-secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert not str(secret).startswith(str(cached))


def test_no_cache_is_written_outside_the_project_for_a_linked_module(cached: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(elsewhere, module(), "real.py")
    (cached / "p.py").symlink_to(elsewhere / "real.py")
    assert cli(["compile", "p.py", "-t", "ir", "-o", "out"], cwd=cached)[0] == 0
    assert not (elsewhere / ".pipec").exists()


# --------------------------------------------------------------------------
# Leftovers of a killed write


def test_stale_leftovers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    path = write(tmp_path, module())
    out = tmp_path / "out"
    out.mkdir()
    dead = 2**22 + 12345  # above Linux's largest pid: no such process
    stale = [f".p.py.{dead}.k2j3.pipec-tmp", f".p.py.{dead}.pipec-bak", f".p.py.{dead}.pipec-bak.restore"]
    live = f".p.py.{os.getppid()}.a1b2.pipec-tmp"  # a live process's: kept
    for name in [*stale, live]:
        (out / name).write_text("half", encoding="utf-8")
    rc, _, err = cli(["compile", path.name, "-t", "airflow", "-o", "out"], cwd=tmp_path)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted([live, "p.py"])


def test_temporary_files_are_hidden_and_never_loadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipec import output

    seen: list[str] = []
    real = os.replace

    def spy(src, dst, *args, **kwargs):
        seen.extend(os.listdir(os.path.dirname(os.fspath(dst)) or "."))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(output.os, "replace", spy)
    path = write(tmp_path, module())
    assert cli(["compile", path.name, "-t", "airflow", "-o", "out"], cwd=tmp_path)[0] == 0
    assert cli(["compile", path.name, "-t", "airflow", "-o", "out", "--set", "k=2"], cwd=tmp_path)[0] == 0
    temporary = [n for n in seen if n != "p.py"]
    assert temporary
    for name in temporary:
        assert name.startswith(".") and f".{os.getpid()}." in name
        assert not name.endswith((".py", ".yaml", ".yml", ".json"))


def test_the_yaml_writer_leaves_no_named_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its shared file has no name while the child writes it: a kill -9 of
    pipec at that moment leaves nothing in the temporary folder."""
    import tempfile

    from pipec.backends import yamlfmt

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    during: list[list[str]] = []
    real = os.waitpid

    def spy(pid, options):
        during.append(os.listdir(folder))
        return real(pid, options)

    monkeypatch.setattr(yamlfmt.os, "waitpid", spy)
    data = {f"k{i}": {"a": [i, str(i)], "b": {"c": i}} for i in range(4000)}
    text = yamlfmt._dump_in_two(data, True, 4096)
    if text is None:
        pytest.skip("the two-process writer did not run here")
    assert during and all(names == [] for names in during), during
    assert os.listdir(folder) == []
