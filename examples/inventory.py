"""An inventory report assembled with the language's wiring forms: the
steps are added in a loop, `inputs` as a dict feeds a parameter from an
output of another name, and `count` is added a second time as an instance
with its own literal argument and output, wired where it is added."""

from pipec import Pipeline, context, step

ctx = context(warehouse="north", low_stock=5)

STOCK = {
    "north": {"A-100": 4, "B-200": 0, "C-300": 12, "D-400": 3},
    "south": {"A-100": 9, "C-300": 1},
}


@step(outputs=["stock"])
def count(warehouse: str) -> dict:
    return dict(STOCK[warehouse])


@step(inputs={"levels": "stock"}, outputs=["to_order"])
def reorder(levels: dict, low_stock: int) -> list:
    return sorted(sku for sku, qty in levels.items() if qty < low_stock)


@step(inputs={"skus": "to_order", "levels": "stock"}, outputs=["order"])
def order(skus: list, levels: dict, batch: int = 10) -> dict:
    return {sku: batch - levels[sku] for sku in skus}


@step(outputs=["total"])
def combine(a: dict, b: dict) -> dict:
    return {sku: a.get(sku, 0) + b.get(sku, 0) for sku in sorted({*a, *b})}


pipeline = Pipeline("inventory", context=ctx, description="Reorder low stock", tags=["example"])
for s in (count, reorder, order):
    pipeline.add_step(s)
# The same step function again: another warehouse (a literal beats the
# context key `warehouse`), its own output name.
pipeline.add_step(count, name="count_south", params={"warehouse": "south"}, outputs=["south_stock"])
pipeline.add_step(combine, inputs={"a": "stock", "b": "south_stock"})
