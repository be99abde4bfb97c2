"""Probes: each gathers plain, JSON-serialisable data about one part of the system."""
