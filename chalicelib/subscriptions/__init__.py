"""Subscribers of authors and their consent (double opt-in, unsubscribe)."""
