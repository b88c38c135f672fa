"""twin domain."""
