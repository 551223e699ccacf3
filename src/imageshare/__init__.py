"""imageshare package."""
