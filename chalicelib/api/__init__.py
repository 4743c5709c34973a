"""The HTTP edge: request parsing, error answers, the authorizer, the pages mail links open."""
