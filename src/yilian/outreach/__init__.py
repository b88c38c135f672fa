"""outreach domain."""
