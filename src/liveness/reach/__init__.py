"""reach layer (see DESIGN.md)."""
