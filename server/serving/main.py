"""Running the server until SIGTERM / Ctrl-C, then shutting down gracefully."""
from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from airquill.server.models.loader import load_adapter
from airquill.server.serving.websocket import AirquillServer, ServeConfig

log = logging.getLogger("airquill.server")


async def serve_forever(args, *, token: str) -> int:
    adapter = await asyncio.to_thread(load_adapter, args.model, device=args.device)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        log.warning("event=insecure binding %s without a token: anyone who can reach it can generate", args.host)
    config = ServeConfig(host=args.host, port=args.port, token=token, certfile=args.certfile, keyfile=args.keyfile,
                         max_batch=args.max_batch)
    server = await AirquillServer(adapter, config).start()
    if args.port_file:
        Path(args.port_file).write_text(str(server.port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("event=shutdown reason=signal live=%d", server.engine.live)
    await server.stop()
    return 0
