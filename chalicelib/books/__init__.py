"""Books and their author index."""
