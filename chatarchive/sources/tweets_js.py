"""TODO: tweets_js format (being written)."""
