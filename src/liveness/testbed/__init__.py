"""testbed layer (see DESIGN.md)."""
