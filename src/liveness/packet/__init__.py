"""packet layer (see DESIGN.md)."""
