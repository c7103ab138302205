"""Commerce: products, orders with line items, and order import from shop exports and the API."""
