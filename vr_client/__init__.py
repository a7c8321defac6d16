"""The VR client: scene, text rendering, hosts and input producers."""
