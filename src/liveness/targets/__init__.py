"""targets layer (see DESIGN.md)."""
