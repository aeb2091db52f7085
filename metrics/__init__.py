"""The SLI batch layer: rollups (ClickHouse) -> exact window sums and SLI frames (Polars)."""
