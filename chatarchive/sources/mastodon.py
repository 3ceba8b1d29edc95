"""TODO: mastodon format (being written)."""
