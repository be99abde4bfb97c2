"""Filled as survivors show."""
