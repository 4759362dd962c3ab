"""`python -m sandbox [--host H] [--port P] [--address-count N] [--store-count N] [--order-count N] [--seed S]`."""
from __future__ import annotations

import argparse
import logging

from werkzeug.serving import make_server

from sandbox.app import create_app, default_config


def main(argv: list[str] | None = None) -> None:
    """Serve the sandbox until interrupted (threaded, so a delayed answer does not block the others)."""
    defaults = default_config()
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Run the Omnitron sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--address-count", type=int, default=defaults["SANDBOX_ADDRESS_COUNT"],
                        help="districts in the address tree (SANDBOX_ADDRESS_COUNT)")
    parser.add_argument("--store-count", type=int, default=defaults["SANDBOX_STORE_COUNT"],
                        help="stock locations (SANDBOX_STORE_COUNT)")
    parser.add_argument("--order-count", type=int, default=defaults["SANDBOX_ORDER_COUNT"],
                        help="orders (SANDBOX_ORDER_COUNT)")
    parser.add_argument("--seed", type=int, default=defaults["SANDBOX_SEED"], help="data seed (SANDBOX_SEED)")
    parser.add_argument("--quiet", action="store_true", help="no line per request (scripts/run-demo)")
    args = parser.parse_args(argv)
    app = create_app({"SANDBOX_ADDRESS_COUNT": args.address_count, "SANDBOX_STORE_COUNT": args.store_count,
                      "SANDBOX_ORDER_COUNT": args.order_count, "SANDBOX_SEED": args.seed})
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    # Werkzeug raises its own logger to INFO (a line per request) unless a level is set.
    logging.getLogger("werkzeug").setLevel(logging.WARNING if args.quiet else logging.INFO)
    server = make_server(args.host, args.port, app, threaded=True)
    if not args.quiet:  # scripts/run-demo prints its own line for the sandbox
        print(f"Omnitron sandbox on http://{args.host}:{args.port} "
              f"(login {app.config['SANDBOX_USERNAME']} / {app.config['SANDBOX_PASSWORD']}, "
              f"{args.address_count} districts, {args.store_count} stock locations, {args.order_count} orders)",
              flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
