"""The pure core: decision and rewrite. No AWS SDK here (ruff TID251 enforces it)."""
