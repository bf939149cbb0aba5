"""output layer (see DESIGN.md)."""
