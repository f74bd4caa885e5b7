"""fusion room (see DESIGN)."""
