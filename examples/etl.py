"""The classic ETL: extract some records, transform them, load a summary."""

from pipec import Pipeline, context, step

ctx = context(source="inventory", multiplier=3)

RECORDS = {
    "inventory": [
        {"sku": "A-100", "qty": 4, "price": 2.5},
        {"sku": "B-200", "qty": 0, "price": 10.0},
        {"sku": "C-300", "qty": 7, "price": 1.25},
    ],
}


@step(outputs=["records"])
def extract(source: str) -> list:
    return [dict(row) for row in RECORDS[source]]


@step(inputs=["records"], outputs=["rows"])
def transform(records: list, multiplier: int) -> list:
    return [
        {"sku": r["sku"], "qty": r["qty"] * multiplier, "value": r["qty"] * multiplier * r["price"]}
        for r in records
        if r["qty"] > 0
    ]


@step(inputs=["rows"], outputs=["total_value", "row_count"])
def load(rows: list):
    return sum(r["value"] for r in rows), len(rows)


pipeline = Pipeline("etl", context=ctx, schedule="@daily", description="Extract, transform, load", tags=["etl"])
pipeline.add_step(extract).add_step(transform).add_step(load)
