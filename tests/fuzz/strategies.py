"""Hypothesis strategies for random valid pipelines (`model.Pipeline`).

`pipelines(name)` draws a context, then steps one at a time, each reading
only outputs of the steps before it (so the graph is acyclic): chains,
diamonds, fan-outs over context or upstream lists (empty ones included),
`when` gates that are true or false, retries that succeed on attempt k or
never, fallbacks, failures (always, or when a context value is truthy),
parameters with defaults, and context overrides for the run.  Values are
every JSON type plus tuples, sets, frozensets, bytes and nested containers.
Everything is drawn from hypothesis primitives, so a failing pipeline
shrinks (fewer steps, simpler values) like any hypothesis example.

Feature flags (`features=`) turn on constructs whose support is not merged
yet: "dataclasses" (instances of dataclasses defined in the module cross
tasks), "posonly" (positional-only step parameters) and "instances"
(options given at `add_step` on a function of another name, parameters
wired to outputs of other names by `inputs` dicts, literals by `params`).

The language's ordering, fan-out and limit forms have a flag each (all of
them: "language"): "wiring" (`inputs={"param": "output"}` dicts, on @step
without "instances"), "after" (ordering-only dependencies), "trigger"
(`all_done`, `none_failed`, `one_succeeded`), "final" (a final step that
returns its `statuses`), "foreach_literal" (a foreach over a literal list
given with `params`), "foreach_key" (over one field of each element of a
list of dicts: a literal, a context value or an upstream output),
"max_parallel" (on foreach steps and on the pipeline), "cache_ttl" and
"loops" (steps added in a loop over a literal tuple or list).  Only
deterministic pipelines: a `one_succeeded` step reads no output of its
upstream steps (Airflow starts it when the first one succeeds, when an
output of another may not exist yet), and no foreach step gets `after` or
a trigger rule (PC601 on Airflow and Prefect).
"""

from __future__ import annotations

from hypothesis import strategies as st

from fuzz.model import Const, Fail, Pack, Param, Pipeline, Record, Ref, Retry, Step, When

LANGUAGE = frozenset({"wiring", "after", "trigger", "final", "foreach_literal", "foreach_key", "max_parallel",
                      "cache_ttl", "loops"})
FEATURES = frozenset({"dataclasses", "posonly", "instances"}) | LANGUAGE
TRIGGERS = ("all_done", "none_failed", "one_succeeded")
KEY = "id"  # the field a foreach_key step fans out over


def expand(names) -> frozenset:
    """Feature names, "language" standing for every flag of LANGUAGE."""
    chosen = set(names)
    if "language" in chosen:
        chosen = (chosen - {"language"}) | LANGUAGE
    return frozenset(chosen)

# Strings that have broken code generators and serialisers before.
SPECIAL_TEXT = ("", "{{ ds }}", "a'b\"c\\d\n", "\x00", "ﬁ", "1", "true", "null", "${HOME}", "é\u0301", "🚀")

_chars = st.characters(exclude_categories=("Cs",))
text = st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(_chars, max_size=6))
ints = st.one_of(st.integers(-1000, 1000), st.sampled_from((0, -1, 2**31, 2**53 + 1, -(2**63), 2**64)))
floats = st.one_of(st.sampled_from((0.0, -0.0, 0.5, 1.0, 1e300, 2.5e-308)), st.floats(allow_nan=False, allow_infinity=False))

json_scalars = st.one_of(st.none(), st.booleans(), ints, floats, text)
context_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)

hashable_scalars = st.one_of(json_scalars, st.binary(max_size=6))
hashables = st.recursive(
    hashable_scalars,
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)),
    max_leaves=4,
)
python_values = st.recursive(
    hashable_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(text, ints, hashables), inner, max_size=3),
        st.sets(hashables, max_size=3),
        st.frozensets(hashables, max_size=3),
    ),
    max_leaves=8,
)
list_values = st.lists(python_values, max_size=4)


def same_type(value) -> st.SearchStrategy:
    """A new value of the same top-level JSON type (a run's override)."""
    if value is None:
        return st.none()
    for kind, strategy in ((bool, st.booleans()), (int, ints), (float, floats), (str, text)):
        if type(value) is kind:
            return strategy
    if isinstance(value, list):
        return st.lists(context_values, max_size=4)
    return st.dictionaries(text, context_values, max_size=3)


ANNOTATIONS = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


class _Scope:
    """What a new step can read: context keys, earlier outputs, and which of
    them are certainly lists (a foreach can range over those)."""

    def __init__(self, context: list[tuple[str, object]], features: frozenset):
        self.context = dict(context)
        self.outputs: list[str] = []
        self.lists = {k for k, v in context if isinstance(v, list)}
        self.features = features
        self.classes: list[tuple[str, tuple[str, ...]]] = []
        self.steps: list[str] = []  # earlier steps, for `after`
        # Lists of dicts that each have the field KEY (foreach_key can range
        # over them): context keys and outputs.
        self.keyed = {k for k, v in context if _keyed(v)}


def _keyed(value) -> bool:
    return isinstance(value, list) and all(isinstance(e, dict) and KEY in e for e in value)


def keyed_lists(valid: bool = True) -> st.SearchStrategy:
    """Lists of dicts with the field KEY (one element may lack it when not
    `valid`: the foreach_key step then fails)."""
    element = st.fixed_dictionaries({KEY: context_values}, optional={"x": context_values})
    if valid:
        return st.lists(element, max_size=3)
    return st.lists(element, min_size=1, max_size=3).map(lambda items: items[:-1] + [{"x": items[-1][KEY]}])


def _expr(draw, params: list[str], scope: _Scope, depth: int = 0):
    choices = ["const", "const", "hoisted"] + (["ref", "ref"] if params else []) + (["pack"] if depth < 2 else [])
    if "dataclasses" in scope.features and depth < 2:
        choices.append("record")
    kind = draw(st.sampled_from(choices))
    if kind in ("const", "hoisted"):
        return Const(draw(python_values), hoisted=kind == "hoisted")
    if kind == "ref":
        return Ref(draw(st.sampled_from(params)))
    if kind == "record":
        cls = f"R{len(scope.classes)}"
        fields = tuple(f"f{i}" for i in range(draw(st.integers(1, 2))))
        scope.classes.append((cls, fields))
        return Record(cls, tuple((f, _expr(draw, params, scope, depth + 1)) for f in fields))
    kind = draw(st.sampled_from(("list", "tuple", "dict")))
    return Pack(kind, tuple(_expr(draw, params, scope, depth + 1) for _ in range(draw(st.integers(0, 3)))))


def _returns_list(expr, step_foreach: str | None, scope: _Scope) -> bool:
    if isinstance(expr, Ref):
        return expr.name in scope.lists and expr.name != step_foreach
    return (isinstance(expr, Const) and type(expr.value) is list) or (isinstance(expr, Pack) and expr.kind == "list")


@st.composite
def steps(draw, index: int, scope: _Scope) -> Step:
    name = f"s{index}"
    on = scope.features.__contains__
    # A trigger rule is drawn first: a one_succeeded step takes no output.
    trigger = None
    if on("trigger") and scope.steps and draw(st.integers(0, 2)) == 0:
        trigger = draw(st.sampled_from(TRIGGERS))
    takes_outputs = trigger != "one_succeeded"
    upstream = (draw(st.lists(st.sampled_from(scope.outputs), unique=True, max_size=3))
                if scope.outputs and takes_outputs else [])
    keys = sorted(scope.context)
    from_context = draw(st.lists(st.sampled_from(keys), unique=True, max_size=2)) if keys else []
    foreach = None
    foreach_key = None
    literal_list = None
    candidates = [n for n in upstream + from_context if n in scope.lists]
    if trigger is None and draw(st.integers(0, 3)) == 0:
        form = "name"
        if on("foreach_literal") or on("foreach_key"):
            forms = ["name"] + (["literal"] if on("foreach_literal") else []) + (["key"] if on("foreach_key") else [])
            form = draw(st.sampled_from(forms))
        if form == "literal":
            foreach, literal_list = f"x{index}", draw(st.lists(context_values, max_size=3))
        elif form == "key":
            pool = sorted(scope.keyed & (set(scope.outputs) | set(keys))) if takes_outputs else []
            source = draw(st.sampled_from(["literal"] + pool))
            foreach_key = KEY
            if source == "literal":
                foreach, literal_list = f"x{index}", draw(keyed_lists(valid=draw(st.integers(0, 5)) > 0))
            else:
                foreach = source
                if foreach not in upstream + from_context:
                    (upstream if foreach in scope.outputs else from_context).append(foreach)
        else:
            pool = candidates or sorted(scope.lists & (set(scope.outputs) | set(keys)))
            if pool:
                foreach = draw(st.sampled_from(pool))
                if foreach not in upstream + from_context:
                    (upstream if foreach in scope.outputs else from_context).append(foreach)
    instances = "instances" in scope.features
    rewire = instances or on("wiring")
    params = []
    for n in upstream:
        rename = rewire and n != foreach and draw(st.booleans())
        params.append(Param(f"w_{n}", "output", wire=n) if rename else Param(n, "output"))
    for key in from_context:
        kind = ANNOTATIONS.get(type(scope.context[key]))
        annotate = kind is not None and key != foreach and draw(st.booleans())
        params.append(Param(key, "context", annotation=kind if annotate else None))
    if literal_list is not None:
        params.append(Param(foreach, "constant", default=literal_list))
    for i in range(draw(st.integers(0, 1))):
        params.append(Param(f"d{index}_{i}", "default", default=draw(python_values)))
    if instances:
        for i in range(draw(st.integers(0, 1))):
            params.append(Param(f"k{index}_{i}", "constant", default=draw(context_values)))
    names = [p.name for p in params]
    outputs = tuple(f"{name}_{chr(97 + i)}" for i in range(draw(st.integers(0, 3))))
    keyed = [on("foreach_key") and foreach is None and draw(st.integers(0, 3)) == 0 for _ in outputs]
    returns = tuple(Const(draw(keyed_lists())) if k else _expr(draw, names, scope) for k in keyed)
    lists = [_returns_list(e, foreach, scope) for e in returns]

    after: tuple[str, ...] = ()
    if foreach is None and (on("after") or trigger == "one_succeeded") and scope.steps:
        least = 1 if trigger == "one_succeeded" else 0
        after = tuple(draw(st.lists(st.sampled_from(scope.steps), unique=True, min_size=least, max_size=2)))
    if trigger is not None and not upstream and not after:
        trigger = None  # a rule needs upstream steps
    when = None
    sources = keys + (scope.outputs if takes_outputs else [])
    if sources and draw(st.integers(0, 3)) == 0:
        when = When(draw(st.sampled_from(sources)), function=draw(st.booleans()), negate=draw(st.booleans()))
    retry = None
    if foreach is None and draw(st.integers(0, 4)) == 0:
        attempts = draw(st.integers(1, 3))
        retry = Retry(attempts, draw(st.integers(1, attempts + 1)), draw(st.sampled_from(("decorator", "step"))))
    fail = None
    if draw(st.integers(0, 6)) == 0:
        # The condition reads a context value the step takes as a parameter.
        fail = Fail(draw(st.sampled_from([None] + from_context)))
    fallback = None
    if draw(st.integers(0, 2 if (retry or fail) else 8)) == 0:
        fallback = tuple(Const(draw(list_values if is_list else python_values)) for is_list in lists)

    return_annotation = None
    if len(outputs) == 1 and isinstance(returns[0], Const) and fallback is None:
        kind = ANNOTATIONS.get(type(returns[0].value))
        if kind is not None and draw(st.booleans()):
            return_annotation = kind
    max_parallel = draw(st.integers(1, 3)) if on("max_parallel") and foreach and draw(st.booleans()) else None
    cache_ttl = None
    if on("cache_ttl") and draw(st.integers(0, 3)) == 0:
        cache_ttl = draw(st.sampled_from((0.5, 60, 3600.0, 86400)))

    step = Step(
        name=name,
        params=tuple(params),
        outputs=outputs,
        returns=returns,
        declare_inputs=draw(st.booleans()),
        foreach=foreach,
        when=when,
        retry=retry,
        fail=fail,
        fallback=fallback,
        shape=draw(st.sampled_from(("tuple", "list", "dict"))),
        return_annotation=return_annotation,
        positional_only="posonly" in scope.features and draw(st.booleans()),
        options_at=draw(st.sampled_from(("decorator", "add_step"))) if instances else "decorator",
        after=after,
        trigger=trigger,
        foreach_key=foreach_key,
        max_parallel=max_parallel,
        cache_ttl=cache_ttl,
    )
    scope.outputs.extend(outputs)
    scope.steps.append(name)
    scope.lists.update(o for o, is_list in zip(outputs, lists) if is_list or foreach is not None)
    if fallback is None and foreach is None:
        scope.keyed.update(o for o, k in zip(outputs, keyed) if k)
    return step


@st.composite
def final_steps(draw, index: int, scope: _Scope) -> Step:
    """The pipeline's final step: it returns what its `statuses` parameter
    receives (every other step's status), maybe with an output of another
    step (None when not produced) or a context value."""
    params = [Param("statuses", "statuses")]
    if scope.outputs and draw(st.booleans()):
        params.append(Param(draw(st.sampled_from(scope.outputs)), "output"))
    if scope.context and draw(st.booleans()):
        params.append(Param(draw(st.sampled_from(sorted(scope.context))), "context"))
    outputs = tuple(f"s{index}_{chr(97 + i)}" for i in range(draw(st.integers(0, 2))))
    names = [p.name for p in params]
    returns = tuple(Pack("list", tuple(Ref(n) for n in names)) if i == 0 else _expr(draw, names, scope)
                    for i in range(len(outputs)))
    return Step(
        name=f"s{index}",
        params=tuple(params),
        outputs=outputs,
        returns=returns,
        declare_inputs=draw(st.booleans()),
        fail=Fail() if draw(st.integers(0, 5)) == 0 else None,
        shape=draw(st.sampled_from(("tuple", "list", "dict"))),
        options_at=draw(st.sampled_from(("decorator", "add_step"))) if "instances" in scope.features else "decorator",
        final=True,
    )


@st.composite
def pipelines(draw, name: str = "fz", features: frozenset = frozenset(), max_steps: int = 6) -> Pipeline:
    assert features <= FEATURES, features - FEATURES
    context = [(f"c{i}", draw(context_values)) for i in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):  # a list to fan out over
        context.append((f"c{len(context)}", draw(st.lists(json_scalars, max_size=3))))
    if "foreach_key" in features and draw(st.booleans()):  # a list of dicts to fan out over one field
        context.append((f"c{len(context)}", draw(keyed_lists())))
    scope = _Scope(context, features)
    drawn = [draw(steps(i, scope)) for i in range(draw(st.integers(1, max_steps)))]
    if "final" in features and draw(st.booleans()):
        drawn.append(draw(final_steps(len(drawn), scope)))
    overridden = draw(st.lists(st.sampled_from([k for k, _ in context]), unique=True, max_size=2)) if context else []
    overrides = tuple((k, draw(same_type(dict(context)[k]))) for k in overridden)
    add_order = tuple(draw(st.permutations(range(len(drawn)))))
    return Pipeline(
        name=name,
        context=tuple(context),
        steps=tuple(drawn),
        add_order=add_order,
        overrides=overrides,
        dataclasses=tuple(scope.classes),
        enable_cache=draw(st.booleans()),
        max_parallel=draw(st.integers(1, 4)) if "max_parallel" in features and draw(st.booleans()) else None,
        loop=draw(loops(drawn, add_order)) if "loops" in features else None,
    )


@st.composite
def loops(draw, drawn: list[Step], add_order: tuple[int, ...]):
    """A run of at least two add_step calls without options (steps whose
    options are on the decorator) to write as a loop, or None."""
    runs = [(a, b) for a in range(len(add_order)) for b in range(a + 2, len(add_order) + 1)
            if all(drawn[i].options_at == "decorator" for i in add_order[a:b])]
    if not runs or not draw(st.booleans()):
        return None
    start, stop = draw(st.sampled_from(runs))
    return start, stop, draw(st.sampled_from(("tuple", "list")))



def batch(seed: int, count: int, features: frozenset = frozenset(), prefix: str = "fz") -> list[Pipeline]:
    """`count` pipelines drawn with hypothesis from `seed`, named
    `<prefix>_<seed>_<index>`.  The same seed gives the same pipelines:
    they are drawn in a fresh interpreter that imports only this package,
    because hypothesis also draws constants found in the local modules
    loaded at the time (importing pipec would change the batch)."""
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent.parent
    args = [sys.executable, "-c", "import sys; from fuzz.strategies import _main; _main(sys.argv[1:])",
            str(seed), str(count), ",".join(sorted(features)), prefix]
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tests)
    proc = subprocess.run(args, capture_output=True, env=env, cwd=tests, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-3000:])
    return pickle.loads(proc.stdout)


def _draw(seed: int, count: int, features: frozenset, prefix: str) -> list[Pipeline]:
    import dataclasses

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    drawn: list[Pipeline] = []

    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @with_seed(seed)
    @given(pipelines(features=features))
    def collect(pipeline):
        drawn.append(pipeline)

    collect()
    return [dataclasses.replace(p, name=f"{prefix}_{seed}_{i}") for i, p in enumerate(drawn[:count])]


def _main(argv: list[str]) -> None:
    import pickle
    import sys

    seed, count, features, prefix = argv
    chosen = expand(f for f in features.split(",") if f)
    sys.stdout.buffer.write(pickle.dumps(_draw(int(seed), int(count), chosen, prefix)))
