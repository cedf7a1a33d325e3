"""``actionrec serve --checkpoint CKPT``: the model behind a JSON API and a web page
(``actionrec/serve/``).

Every flag is checked, the token and the address included, before the checkpoint is loaded; the
address is bound before the model loads, so a port in use is one line too. Host check: on a
loopback bind (127.0.0.0/8, ::1, localhost) the server answers only to the Host names
localhost, 127.0.0.1 and [::1], token or not, as Jupyter does (a DNS rebinding page must not
reach it); on another bind it answers to any name unless ``--allow-host`` names some (then those
and the loopback names). ``--allow-host`` adds a name in both cases.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys

from ..validate import Range
from .common import add_checkpoint, add_device, add_set

TOKEN_VARIABLE = "ACTIONREC_TOKEN"
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]")


def allowed_host(text: str) -> str:
    """``--allow-host``: a host name or address as a Host header gives it (IPv6 in brackets)."""
    name = text.strip().lower()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    if not HOST_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a host name or "
                                         f"address such as example.org, 10.0.0.5 or [fe80::1]")
    return name


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a checkpoint: JSON API, OpenAPI docs and a web page")
    add_checkpoint(p)
    p.add_argument("--config", metavar="CONFIG",
                   help="test protocol and label map to use instead of the checkpoint's own")
    add_set(p, "override keys of --config")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=Range(1, 65535, integer=True).flag, default=8000)
    p.add_argument("--token", help=f"bearer token every /v1 call must carry (default: "
                                   f"${TOKEN_VARIABLE} if set, else none); printable ASCII, "
                                   f"no spaces")
    p.add_argument("--allow-host", action="append", default=[], type=allowed_host,
                   metavar="NAME", help="a Host name the server also answers to (repeatable); "
                                        "see the module's docstring for the Host check")
    p.add_argument("--max-upload-mb", type=Range(0, 2**20, lo_open=True).flag, default=100.0,
                   metavar="MIB")
    p.add_argument("--max-duration", type=Range(0, 7 * 86400, lo_open=True).flag,
                   default=600.0, metavar="SECONDS")
    p.add_argument("--max-pixels", type=Range(1, 2**30, integer=True).flag,
                   default=4096 * 4096, metavar="N", help="per frame (default 4096x4096)")
    p.add_argument("--workers", type=Range(1, 1024, integer=True).flag, default=1,
                   help="requests computed at once")
    p.add_argument("--queue", type=Range(0, 10**5, integer=True).flag, default=4,
                   help="requests waiting beyond those (more get 503 with Retry-After)")
    p.add_argument("--timeout", type=Range(0, 86400, lo_open=True).flag, default=120.0,
                   metavar="SECONDS", help="per request once its body is in, waiting included "
                                           "(then 504)")
    p.add_argument("--uploads", type=Range(1, 10**5, integer=True).flag, default=8,
                   help="request bodies received at once (more get 503 with Retry-After)")
    p.add_argument("--upload-timeout", type=Range(0, 86400, lo_open=True).flag, default=30.0,
                   metavar="SECONDS", help="a body's grace period; after it the body must "
                                           "keep up --upload-min-rate (else 408)")
    p.add_argument("--upload-min-rate", type=Range(0, 2**30, lo_open=True).flag, default=64.0,
                   metavar="KIB_S", help="a body's least mean rate after its grace period")
    p.add_argument("--shutdown-timeout", type=Range(0, 3600).flag, default=10.0,
                   metavar="SECONDS", help="on SIGTERM or Ctrl-C, how long requests still "
                                           "running get before they are cancelled")
    add_device(p)
    p.set_defaults(func=run)


def bearer_token(flag: str | None) -> str | None:
    """The token from ``--token``, else from ``$ACTIONREC_TOKEN``; None when neither is given.
    Empty or blank (an unset variable expanded) is an error, never 'no token'."""
    from ..errors import CliError

    where = "--token" if flag is not None else f"${TOKEN_VARIABLE}"
    token = flag if flag is not None else os.environ.get(TOKEN_VARIABLE)
    if token is None:
        return None
    if not token.strip():
        drop = "leave --token out" if flag is not None else f"unset {TOKEN_VARIABLE}"
        raise CliError(f"{where} is empty (an unset variable?); give a token, or {drop} to "
                       f"serve without one")
    if not all("!" <= c <= "~" for c in token):
        raise CliError(f"{where}: a token is printable ASCII without spaces")
    return token


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (IPv6 where ``host`` is an IPv6 address, as uvicorn
    binds), or a CliError saying why not."""
    from ..errors import CliError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][-1]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise CliError(f"--host {host} --port {port}: cannot listen there: "
                       f"{e.strerror or e}") from None
    return sock


def run(args) -> int:
    from ..config import read_config
    from ..errors import CliError
    from ..serve.app import create_app, run_server
    from ..serve.hosts import answered_names, loopback
    from ..serve.service import Limits, Service

    if args.set and not args.config:
        raise CliError("--set overrides keys of --config; give --config")
    token = bearer_token(args.token)
    hosts = answered_names(args.host, args.allow_host)
    sock = listen(args.host, args.port)
    try:
        cfg = read_config(args.config, args.set) if args.config else None
        limits = Limits(args.max_upload_mb, args.max_duration, args.workers, args.queue,
                        args.timeout, args.max_pixels, args.uploads, args.upload_timeout,
                        args.upload_min_rate, args.shutdown_timeout)
        service = Service(args.checkpoint, cfg=cfg, device=args.device, limits=limits)
        if not loopback(args.host):
            print(f"actionrec: warning: serving on {args.host}: other machines can reach it"
                  + ("" if token else f"; no token is set (--token or ${TOKEN_VARIABLE})"),
                  file=sys.stderr)
        address = f"[{args.host}]" if ":" in args.host else args.host
        print(f"actionrec: serving {service.info['model']} ({len(service.names)} classes) on "
              f"http://{address}:{args.port}/ (API docs: /docs); "
              + ("a bearer token is required for /v1" if token else
                 "no token: whoever reaches it may use the API")
              + (f"; answering to Host {', '.join(sorted(hosts))}" if hosts else ""),
              file=sys.stderr, flush=True)
        run_server(create_app(service, token=token, hosts=hosts), sock)
    finally:
        sock.close()
    return 0
