"""Learning-rate and momentum schedules (placeholder; being written)."""
