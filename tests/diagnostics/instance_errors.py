from pipec import Pipeline, context, step

LIMIT = len("abc")


@step(outputs=["sum"])
def add(a: int, b: int) -> int:
    return a + b


@step(outputs=["rows"])
def rows():
    return [{"a": 1}]


@step(outputs=["out"])
def one(x):
    return x


@step(outputs=["nested"], foreach=["x", "y"])  # E: PC601
def pairs(x, y):
    return x + y


p = Pipeline("instances", context=context(b=1))
p.add_step(add, name="first", params={"a": 1}, outputs=["s1"])
p.add_step(add, name="first", params={"a": 2}, outputs=["s2"])  # E: PC104
p.add_step(add, name="third", params={"a": 3})
p.add_step(add, name="fourth", params={"a": 4})  # E: PC102
p.add_step(add, name="fifth", retires=2, outputs=["s5"])  # E: PC220
p.add_step(add, name="sixth", params={"a": 1, "c": 2}, outputs=["s6"])  # E: PC223
p.add_step(add, name="seventh", inputs={"a": "s1"}, params={"a": 2}, outputs=["s7"])  # E: PC224
p.add_step(add, name="eighth", params={"a": LIMIT}, outputs=["s8"])  # E: PC222
p.add_step(add, name="ninth", params={"a": {1: 2}}, outputs=["s9"])  # E: PC222
p.add_step(add, 3, name="tenth", outputs=["s10"])  # E: PC222
p.add_step(add, name="eleventh", timeout=-1, outputs=["s11"])  # E: PC221
p.add_step(add, name="twelfth", name="again", outputs=["s12"])  # E: PC308
p.add_step(add, name="thirteenth", inputs={"a": "nowhere"}, outputs=["s13"])  # E: PC103
p.add_step(rows)
p.add_step(one, inputs={"x": "rows"}, foreach_key="a")  # E: PC225
p.add_step(one, name="listed", foreach="x", params={"x": 3}, outputs=["o2"])  # E: PC206
p.add_step(pairs, params={"x": [1], "y": [2]})
p.add_step(one, name="deep", inputs={"x": "rows"}, foreach=["x", "x"], outputs=["o3"])  # E: PC601
p.add_step(add, name="last", params={"a": 1, "b": float("nan")}, outputs=["s14"])  # E: PC222
