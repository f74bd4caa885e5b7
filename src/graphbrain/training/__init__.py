"""training room (see DESIGN)."""
