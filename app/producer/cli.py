"""``kit-producer``: the same operations as the HTTP API, from a shell, plus ``serve``."""
import argparse
import json
import sys
import time


def _params(pairs):
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"kit-producer: parameter {pair!r} must be KEY=VALUE")
        out[key] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kit-producer")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=2)
    start = sub.add_parser("start", help="start a task: kit-producer start process total=5")
    start.add_argument("kind")
    start.add_argument("params", nargs="*", metavar="KEY=VALUE")
    start.add_argument("--wait", action="store_true", help="follow progress until it finishes")
    status = sub.add_parser("status", help="show a task's state, progress, result or traceback")
    status.add_argument("task_id")
    cancel = sub.add_parser("cancel", help="revoke a task, terminating it if it runs")
    cancel.add_argument("task_id")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from . import security
        if not security.is_loopback(args.host) and security.TOKEN is None:
            raise SystemExit(f"kit-producer: serving on {args.host} (not loopback) needs a token: "
                             "set KIT_PRODUCER_TOKEN or KIT_PRODUCER_TOKEN_FILE")
        import uvicorn
        uvicorn.run("app.producer.api:api", host=args.host, port=args.port,
                    workers=args.workers, proxy_headers=False)
        return 0

    from . import service
    if args.command == "start":
        try:
            result = service.start(args.kind, _params(args.params))
        except service.AlreadyRunning as exc:
            raise SystemExit(f"kit-producer: {exc}") from None
        except ValueError as exc:
            raise SystemExit(f"kit-producer: {exc}") from None
        print(result.id)
        if args.wait:
            while True:
                info = service.describe(result.id)
                print(json.dumps(info), file=sys.stderr)
                if info["state"] in {"SUCCESS", "FAILURE", "REVOKED"}:
                    return 0 if info["state"] == "SUCCESS" else 1
                time.sleep(0.5)
    elif args.command == "status":
        print(json.dumps(service.describe(args.task_id), indent=2))
    elif args.command == "cancel":
        print(json.dumps(service.cancel(args.task_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
