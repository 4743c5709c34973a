"""A book's mail: bulk sending, the paged fan-out and the shared SES rate."""
