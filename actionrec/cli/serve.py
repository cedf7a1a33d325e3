"""``actionrec serve --checkpoint CKPT``: the model behind a JSON API and a web page
(``actionrec/serve/``)."""

from __future__ import annotations

import os
import sys

from .common import add_checkpoint, add_device, add_set

TOKEN_VARIABLE = "ACTIONREC_TOKEN"


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a checkpoint: JSON API, OpenAPI docs and a web page")
    add_checkpoint(p)
    p.add_argument("--config", metavar="CONFIG",
                   help="test protocol and label map to use instead of the checkpoint's own")
    add_set(p, "override keys of --config")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help=f"bearer token every /v1 call must carry (default: "
                                   f"${TOKEN_VARIABLE} if set, else none)")
    p.add_argument("--max-upload-mb", type=float, default=100.0, metavar="MIB")
    p.add_argument("--max-duration", type=float, default=600.0, metavar="SECONDS")
    p.add_argument("--workers", type=int, default=1, help="requests computed at once")
    p.add_argument("--queue", type=int, default=4,
                   help="requests waiting beyond those (more get 503 with Retry-After)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                   help="per request, waiting included (then 504)")
    add_device(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import uvicorn

    from ..config import load_config
    from ..errors import CliError
    from ..serve.app import create_app
    from ..serve.service import Limits, Service

    if args.workers < 1 or args.queue < 0 or args.timeout <= 0 or args.max_upload_mb <= 0 \
            or args.max_duration <= 0:
        raise CliError("--workers >= 1, --queue >= 0, and --timeout, --max-upload-mb and "
                       "--max-duration > 0")
    if args.set and not args.config:
        raise CliError("--set overrides keys of --config; give --config")
    cfg = load_config(args.config, args.set) if args.config else None
    limits = Limits(args.max_upload_mb, args.max_duration, args.workers, args.queue, args.timeout)
    service = Service(args.checkpoint, cfg=cfg, device=args.device, limits=limits)
    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"actionrec: warning: serving on {args.host}: other machines can reach it"
              + ("" if token else f"; no token is set (--token or ${TOKEN_VARIABLE})"),
              file=sys.stderr)
    print(f"actionrec: serving {service.info['model']} ({len(service.names)} classes) on "
          f"http://{args.host}:{args.port}/ (API docs: /docs)", file=sys.stderr, flush=True)
    uvicorn.run(create_app(service, token=token), host=args.host, port=args.port,
                log_level="warning")
    return 0
