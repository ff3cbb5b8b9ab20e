"""Two pipelines built from the same steps, imported from a sibling module."""

import pipec as p

from shop.steps import price_orders, summarize
from .steps import alert, fetch_orders

ctx = p.context(region="eu", alert_above=100.0)

orders = p.Pipeline("orders", context=ctx, owner="shop-team", schedule="@hourly")
orders.add_step(fetch_orders).add_step(price_orders).add_step(summarize).add_step(alert)

quick = p.Pipeline("orders_quick", context=p.context(region="us", alert_above=10.0))
quick.add_step(fetch_orders).add_step(price_orders).add_step(summarize)
