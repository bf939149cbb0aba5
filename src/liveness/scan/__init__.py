"""scan layer (see DESIGN.md)."""
