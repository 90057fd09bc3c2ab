"""Listening: a socket bound before the server starts (so port 0 means a free port, and a port in use is
reported before anything else happens), and uvicorn serving the app on it, in front or in a thread."""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
from typing import Any

import uvicorn


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


# Seconds requests still running get when the server stops (Ctrl-C) before they are cancelled: uvicorn
# waits for them without limit by default, so an upload in progress (or a stalled one, until its 60 s)
# kept the command from stopping, with no word on the console
STOP_GRACE = 3


def _server(app: Any) -> uvicorn.Server:
    # h11 (pure Python): nothing to compile; the server's work is restoring photos, not parsing HTTP
    config = uvicorn.Config(app, log_level="warning", http="h11", lifespan="off", timeout_keep_alive=30,
                            timeout_graceful_shutdown=STOP_GRACE)
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket) -> None:
    """Serve until Ctrl-C, SIGTERM or SIGHUP."""
    server = _server(app)
    # SIGHUP: the terminal the server was started in was closed, its most usual end for someone who does
    # not use a terminal otherwise.  Python's default ends the process at once, leaving every photo in the
    # temporary folder; uvicorn handles only SIGINT and SIGTERM.  Stop as for those (files deleted).
    hangup = getattr(signal, "SIGHUP", None)  # (none on Windows)
    previous = None
    if hangup is not None and threading.current_thread() is threading.main_thread():
        previous = signal.signal(hangup, lambda signum, frame: setattr(server, "should_exit", True))
    try:
        server.run(sockets=[sock])
    finally:
        if previous is not None:
            signal.signal(hangup, previous)


class BackgroundServer:
    """The app served from a thread (tests, or embedding): ``url``; ``stop()`` waits for the end."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        self.url = url_of(self.sock)
        self.server = _server(app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="oldphoto-serve", daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            self.thread.join(0.05)
        if not self.server.started:
            raise RuntimeError("the web server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
