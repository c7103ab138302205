"""Commerce errors."""

from shequn.core.errors import NotFound, ShequnError


class OrderNotFound(NotFound):
    """No such order in this workspace."""

    code = "order_not_found"


class ProductNotFound(NotFound):
    """No such product in this workspace."""

    code = "product_not_found"


class ImportFileRejected(ShequnError):
    """The whole file cannot be imported (encoding, format, missing columns)."""

    code = "import_file_rejected"
    status_code = 422


class WebhookRejected(ShequnError):
    """An inbound webhook failed its signature or format check."""

    code = "webhook_rejected"
    status_code = 401
