"""TODO: bluesky format (being written)."""
