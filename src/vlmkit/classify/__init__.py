"""Classification with contrastive models: zero-shot (and, later, in-context and cache adapters)."""
