"""The local page, and what it reads besides the live state (the history API)."""
