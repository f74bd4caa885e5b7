"""models room (see DESIGN)."""
