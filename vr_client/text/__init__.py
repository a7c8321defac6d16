"""Text for the scene: the signed-distance-field glyph atlas and the panel layout."""
