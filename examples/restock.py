"""Restocking two warehouses, with an audit that runs whatever happened and
a final report: `count` and `reorder` are each added twice, as instances
with their own arguments and outputs; `inputs` dicts feed parameters from
outputs of other names; `audit` runs even when an upstream step failed
(`trigger="all_done"`: an output that was not produced arrives as None);
and the final step receives every other step's status.

    pipec run examples/restock.py                   # succeeds
    pipec run examples/restock.py --set warehouse=west

The second run fails (there is no warehouse "west", so `count` fails and
`reorder`, `order` and `write_order` cannot run), yet `audit` and `report`
still run.  `write_order` writes the order as a CSV file, a file output:
pipec carries the file itself to `audit`, on every target."""

import os
import tempfile

from pipec import Pipeline, context, step

ctx = context(warehouse="north", low_stock=5)

STOCK = {
    "north": {"A-100": 4, "B-200": 0, "C-300": 12, "D-400": 3},
    "south": {"A-100": 9, "C-300": 1},
}


@step(outputs=["stock"])
def count(warehouse: str) -> dict:
    if warehouse not in STOCK:
        raise KeyError(f"no warehouse {warehouse!r}")
    return dict(STOCK[warehouse])


@step(inputs={"levels": "stock"}, outputs=["to_order"])
def reorder(levels: dict, low_stock: int) -> list:
    return sorted(sku for sku, qty in levels.items() if qty < low_stock)


@step(inputs={"skus": "to_order", "levels": "stock"}, outputs=["order"])
def order(skus: list, levels: dict, batch: int = 10) -> dict:
    return {sku: batch - levels[sku] for sku in skus}


# A file output: the step returns the path of the file it wrote; a step
# that reads `purchase_order` gets the path of its own copy.
@step(inputs={"placed": "order"}, outputs=["purchase_order"], files={"purchase_order": "Dataset"})
def write_order(placed: dict) -> str:
    path = os.path.join(tempfile.mkdtemp(), "purchase_order.csv")
    with open(path, "w") as f:
        f.write("sku,quantity\n")
        for sku, quantity in placed.items():
            f.write(f"{sku},{quantity}\n")
    return path


# Runs once `write_order` and `reorder_south` are done, whether they
# succeeded or not; `orders` is None when no order was written.
@step(inputs={"orders": "purchase_order", "south": "south_to_order"}, trigger="all_done", outputs=["audit"])
def audit(orders, south) -> dict:
    if orders is not None:
        with open(orders) as f:
            lines = f.read().splitlines()
    return {
        "north": "no order placed" if orders is None else f"{len(lines) - 1} SKUs ordered",
        "south": "unknown" if south is None else f"{len(south)} SKUs low",
    }


# The final step: after every other step, whatever happened.
@step(final=True, outputs=["summary"])
def report(statuses: dict) -> dict:
    return {
        "steps": len(statuses),
        "not_succeeded": sorted(name for name, status in statuses.items() if status != "succeeded"),
    }


pipeline = Pipeline("restock", context=ctx, description="Reorder low stock, audit and report", tags=["example"])
pipeline.add_step(count).add_step(reorder).add_step(order).add_step(write_order)
# The same step functions again, for another warehouse: a literal argument
# (it beats the context key `warehouse`), other output names, wired by dicts.
pipeline.add_step(count, name="count_south", params={"warehouse": "south"}, outputs=["south_stock"])
pipeline.add_step(reorder, name="reorder_south", inputs={"levels": "south_stock"}, outputs=["south_to_order"])
pipeline.add_step(audit).add_step(report)
