"""connectome room (see DESIGN)."""
