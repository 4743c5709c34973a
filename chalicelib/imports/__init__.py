"""Bulk import of books: a chord of book creations whose callback writes the report."""
