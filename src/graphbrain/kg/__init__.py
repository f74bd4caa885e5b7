"""kg room (see DESIGN)."""
