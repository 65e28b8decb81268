"""Test helpers shared across test folders (plain modules, not fixtures)."""
