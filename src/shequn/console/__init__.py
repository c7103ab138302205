"""Console: the operators' web console (server-rendered pages that call services only)."""
