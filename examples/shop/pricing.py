"""Plain helpers: this module imports no pipec, so compiled tasks import it."""

VAT = 0.2


def gross(net: float) -> float:
    return round(net * (1 + VAT), 2)


def order_total(lines: list) -> float:
    return round(sum(line["qty"] * line["unit_price"] for line in lines), 2)
