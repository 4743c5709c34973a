"""Third-party emulators the suite also runs against: LocalStack and MiniStack (with the patches
that fill MiniStack's gaps, run inside its own virtualenv; see docs/UPSTREAM.md)."""
