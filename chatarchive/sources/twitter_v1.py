"""TODO: twitter_v1 format (being written)."""
