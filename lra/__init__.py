"""placeholder, filled in by the foundation commit."""
