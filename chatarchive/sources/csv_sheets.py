"""TODO: csv_sheets format (being written)."""
