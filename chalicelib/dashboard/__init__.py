"""The admin dashboard served by the app itself: sessions, pages, assets and its JSON views."""
