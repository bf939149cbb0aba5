"""liveness: Internet liveness scanning, liveness analysis and connectivity reasoning."""

__version__ = "0.1.0"
__all__ = ["__version__"]
