"""The environment of a test session (its own module: each tier's conftest is a module named
`conftest`, so tests that need these values import them from here)."""

# Only what differs from the defaults (chalicelib/platform/config.py's DEFAULTS, the one place they are written).
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "STAGE": "test",
    "RETRY_BACKOFF_BASE": "1",
    "RETRY_BACKOFF_CAP": "2",
    "MEDIA_VISIBILITY_TIMEOUT": "10",
    "DEFAULT_VISIBILITY_TIMEOUT": "10",
    "SES_MAX_SEND_RATE": "5000",  # mail tests are not about the rate; test_fanout lowers it where it is
    # Direct uploads: a short URL lifetime so a test can watch an upload expire.
    "UPLOAD_TTL_SECONDS": "20",
    "UPLOAD_EXPIRY_MARGIN_SECONDS": "2",
}
