"""Member H5 pages, one module per area."""
