"""The TUI's widgets: each renders messenger views and posts what the user asked for."""
