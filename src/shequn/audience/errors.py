"""Audience errors."""

from shequn.core.errors import NotFound


class CustomerNotFound(NotFound):
    """No such customer in this workspace."""

    code = "customer_not_found"


class SegmentNotFound(NotFound):
    """No such segment in this workspace."""

    code = "segment_not_found"
