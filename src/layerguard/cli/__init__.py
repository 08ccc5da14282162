"""Command-line interface (thin: every command calls the library)."""
