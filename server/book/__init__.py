"""Book mode: an outline in, chapters out, generated in parallel through the same engine."""
