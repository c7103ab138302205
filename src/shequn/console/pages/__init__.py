"""Console page modules (routes call services only)."""
