"""Steps shared by the shop's pipelines."""

from pipec import step, when

from .pricing import gross, order_total

CURRENCY = "EUR"


def _fmt(amount: float) -> str:
    return f"{amount:.2f} {CURRENCY}"


@step(outputs=["orders"])
def fetch_orders(region: str) -> list:
    base = {"eu": 1, "us": 2}.get(region, 3)
    return [
        {"id": i, "lines": [{"qty": base + i, "unit_price": 9.99}, {"qty": 1, "unit_price": 0.5 * i}]}
        for i in range(1, 4)
    ]


@step(inputs=["orders"], outputs=["totals"])
def price_orders(orders: list) -> list:
    return [gross(order_total(o["lines"])) for o in orders]


@step(inputs=["totals"], outputs=["summary"])
def summarize(totals: list) -> str:
    return f"{len(totals)} orders, {_fmt(sum(totals))}"


@step(inputs=["totals"], outputs=["alert"])
@when(lambda totals, alert_above: max(totals) > alert_above)
def alert(totals: list) -> str:
    return "large order: " + _fmt(max(totals))
