"""Drawing the scene with moderngl: instanced glyph quads, one draw call per panel."""
