"""grimc dialects: graph (nn-level ops) and bcr (sparse ops)."""
