"""Cover images: inline and direct uploads, S3 storage, thumbnails."""
