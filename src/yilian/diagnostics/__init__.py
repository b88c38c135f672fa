"""diagnostics domain."""
