"""Member: mobile H5 pages and the member API (members touch shequn here)."""
