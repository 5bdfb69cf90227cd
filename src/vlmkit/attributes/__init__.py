"""Open-vocabulary attribute detection (ComCa) and its pieces."""
