"""CLI: the `shequn` command."""
