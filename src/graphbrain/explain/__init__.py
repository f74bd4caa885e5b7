"""explain room (see DESIGN)."""
