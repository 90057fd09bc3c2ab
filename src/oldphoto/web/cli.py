"""``oldphoto serve``: start the web page.  Importable without the web packages, so that the command
exists in every install and says how to get them."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile

from oldphoto.io import DEFAULT_MAX_PIXELS

INSTALL_HINT = "pip install 'oldphoto[web]'"
DEFAULT_PORT = 7860
AUTH_ENV = "OLDPHOTO_AUTH"  # USER:PASSWORD, as --auth (a command line is readable by every user, `ps`)


def _credentials(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="a web page to restore photos in a browser (pip install 'oldphoto[web]')",
        description="Start a web page for restoring photos: drop photos, choose options, compare before and "
                    "after, download the results (the same files `oldphoto restore` writes). It listens on "
                    "127.0.0.1 only unless --host says otherwise, and loads nothing from the internet. "
                    "Restore options given here are the page's defaults.")
    g = parser.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 = every "
                        "network this computer is on, with a warning: use --auth then)")
    g.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    g.add_argument("--auth", type=_credentials, metavar="USER:PASSWORD",
                   help=f"ask browsers for this user name and password (for a shared machine); {AUTH_ENV} "
                        "in the environment says the same without showing the password to every user of "
                        "the machine in their process list")
    g.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name this page is reached by through a reverse proxy (e.g. "
                        "photos.example.org; repeatable): answered, and its pages may upload, besides this "
                        "computer's own names")
    g.add_argument("--open", action="store_true", help="open the page in the default web browser")
    g.add_argument("--max-upload-mb", type=float, default=200.0, metavar="MB",
                   help="largest photo file accepted, in MB (default 200)")
    g.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse photos larger than N pixels (default {DEFAULT_MAX_PIXELS}; 0 = no limit)")
    g.add_argument("--queue", type=int, default=64, metavar="N",
                   help="photos that may wait at once, all users together (default 64; more are told to "
                        "wait and the page sends them later)")
    g.add_argument("--max-storage-gb", type=float, default=None, metavar="GB",
                   help="space the uploaded and restored photos of all sessions may take together, in GB "
                        "(default: half the disk's free space when the server starts; 0 = up to the disk's "
                        "last GB); an upload beyond it is refused until sessions end")
    g.add_argument("--session-minutes", type=float, default=60.0, metavar="MIN",
                   help="delete a browser session's files after this many minutes without a request or "
                        "any use of its page (default 60; all files are deleted when the server stops)")
    from oldphoto.options import RestoreOptions  # torch-free: --help stays fast

    RestoreOptions.add_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace, stream=None) -> int:
    stream = stream if stream is not None else sys.stderr
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        print(f"oldphoto serve needs the optional web packages ({exc.name} is missing): {INSTALL_HINT}",
              file=stream)
        return 2
    from oldphoto.pipeline import RestoreOptions, Restorer
    from oldphoto.web.app import create_app
    from oldphoto.web.engine import Engine
    from oldphoto.web.server import bind, is_loopback, serve, url_of

    if args.max_upload_mb <= 0 or args.queue < 1 or args.session_minutes <= 0:
        print("oldphoto serve: --max-upload-mb, --queue and --session-minutes must be positive", file=stream)
        return 2
    if args.max_storage_gb is not None and args.max_storage_gb < 0:
        print("oldphoto serve: --max-storage-gb must be 0 (up to the disk's last GB) or positive",
              file=stream)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"oldphoto serve: --port must be between 0 (any free port) and 65535, got {args.port}",
              file=stream)
        return 2
    if args.max_pixels < 0:
        print("oldphoto serve: --max-pixels must be 0 (no limit) or a positive pixel count", file=stream)
        return 2
    from oldphoto.options import argument_problem, weights_problem

    if args.auth is None and os.environ.get(AUTH_ENV):
        try:
            args.auth = _credentials(os.environ[AUTH_ENV])
        except argparse.ArgumentTypeError:
            print(f"oldphoto serve: {AUTH_ENV} must be USER:PASSWORD", file=stream)
            return 2
    problem = argument_problem(args) or weights_problem(args)
    if problem:
        print(f"oldphoto serve: {problem}", file=stream)
        return 2
    try:
        options = RestoreOptions.from_args(args)
        restorer = Restorer(options)
    except Exception as exc:  # bad option, missing weights, absent device: nothing to serve with
        print(f"oldphoto serve: cannot set up the restorer: {exc}", file=stream)
        return 1
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"oldphoto serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
              "(another program may use this port: try --port 0 for a free one)", file=stream)
        return 1
    loopback = is_loopback(args.host)
    url = url_of(sock)
    if not loopback:
        port = sock.getsockname()[1]
        print(f"warning: listening on {args.host}: anyone who can reach this computer on port {port} can use "
              "this page" + ("" if args.auth else " (no --auth: no password is asked)"), file=stream)
        url = f"http://127.0.0.1:{port}/" if args.host in ("0.0.0.0", "::", "[::]") else url
    engine = Engine(restorer, max_queue=args.queue, max_per_session=max(1, args.queue // 2),
                    max_pixels=args.max_pixels or None, session_ttl=args.session_minutes * 60,
                    max_storage=_max_storage(args.max_storage_gb))
    port = sock.getsockname()[1]
    app = create_app(engine, max_upload=int(args.max_upload_mb * 1e6), credentials=args.auth,
                     loopback_only=loopback, hosts=[args.host],
                     proxied=args.allow_host, cookie=f"oldphoto_session_{port}")
    print(f"oldphoto serve: open {url} in a web browser (Ctrl-C stops the server and deletes its "
          "temporary files)", file=stream, flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    # uvicorn stops gracefully on Ctrl-C or SIGTERM, then raises the signal again with the handlers it
    # found: make SIGTERM (kill, systemd) end like Ctrl-C, so that the temporary files are deleted
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(app, sock)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stopped = engine.close()
        sock.close()
    try:  # (a terminal window closed, SIGHUP: nothing can be written there any more)
        print("oldphoto serve: stopped; temporary files deleted", file=stream)
        stream.flush()
        sys.stdout.flush()
    except OSError:
        pass
    if not stopped:
        # a photo was still being restored, in PyTorch's native code: an interpreter shutting down around
        # that thread aborts the process ("terminate called without an active exception", exit code
        # 134).  The files are deleted already: end here, without that shutdown.
        os._exit(0)
    return 0


def _max_storage(gigabytes: float | None) -> int | None:
    """``--max-storage-gb`` in bytes: by default half of what the temporary folder's disk has free now
    (the sessions' folders are made there), None for 0 (only the engine's free-disk floor applies)."""
    if gigabytes is None:
        return shutil.disk_usage(tempfile.gettempdir()).free // 2
    return int(gigabytes * 1e9) or None
