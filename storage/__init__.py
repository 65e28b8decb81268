"""Persistence: SQLCipher profile databases and archive backends.

Imports nothing from chat/ or ui/.
"""
