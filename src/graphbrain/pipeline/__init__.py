"""pipeline room (see DESIGN)."""
