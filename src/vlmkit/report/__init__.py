"""Self-contained HTML reports (no JavaScript, no external assets)."""
