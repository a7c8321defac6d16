"""Serving: the engine thread that batches all live requests, the per-client relay, the WebSocket server."""
