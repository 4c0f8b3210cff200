"""`python -m animation_lora.curate [--project .] [--env studio] [--film PATH] [--host 127.0.0.1] [--port]`"""

from __future__ import annotations

import argparse
import ipaddress
import logging

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_host(host: str, public: bool) -> str:
    """The address to bind; one other than this machine's loopback only when asked for (`--public`): the
    app has no login, and anyone who reaches it can change what is trained."""
    try:
        loopback = host in LOOPBACK or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = False
    if not loopback and not public:
        raise SystemExit(f"Refusing to serve the curation app on {host}: it has no login. Use 127.0.0.1 "
                         f"(an SSH tunnel reaches it from elsewhere), or add --public if you mean it")
    return host


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m animation_lora.curate", description=__doc__)
    parser.add_argument("--project", default=".", help="the Kedro project folder (default: here)")
    parser.add_argument("--env", default=None, help="the Kedro run environment (e.g. studio)")
    parser.add_argument("--film", default=None, help="the film (default: film_path of the environment)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--public", action="store_true", help="allow an address other than loopback")
    parser.add_argument("--mlflow-ui", default="http://127.0.0.1:5000", help="where `make mlflow-ui` serves")
    parser.add_argument("--viz", default="http://127.0.0.1:4141", help="where `make viz` serves")
    parser.add_argument("--to-outputs", default=None,
                        help="stop a rerun at these datasets (comma-separated, e.g. character.lora_datasets "
                             "to look at the datasets before training); default: everything downstream")
    args = parser.parse_args(argv)
    host = check_host(args.host, args.public)
    import uvicorn

    from .app import Project, make_app

    logging.basicConfig(level=logging.INFO)
    until = args.to_outputs.split(",") if args.to_outputs else None
    app = make_app(Project(args.project, args.env, args.film, until), args.mlflow_ui, args.viz)
    print(f"Curation: http://{host}:{args.port}/characters (Ctrl-C ends it)", flush=True)
    uvicorn.run(app, host=host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
