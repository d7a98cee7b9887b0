"""nst-server run | start | stop | status: the Neural Style server, which paints for the GIMP
filter and nst-stylize --server, in the foreground or in the background (with its log in the
user's state folder).

The background server's files: daemon.py."""
import argparse
import ipaddress
import logging
import logging.handlers
import signal
import sys
from typing import Any

from nst_contract import protocol
from nst_contract.client import Client, NSTError, default_endpoint

from ..service import daemon

LOG_BYTES = 5 * 2**20  # the log rotates at this size, keeping two old files
REMOTE_WARNING = ("nst-server: WARNING: listening on {endpoint}, which is not loopback: any host "
                  "that can reach this port can submit jobs and read their results; there is no "
                  "authentication. To use a GPU on another machine, keep its server on loopback "
                  "and tunnel: ssh -L 5555:127.0.0.1:5555 gpu-host")

# (option, type, default, help) of what `run` and `start` accept and `start` passes on to `run`.
SERVE_OPTIONS: list[tuple[str, Any, Any, str]] = [
    ("--device", str, None, "cpu, cuda, cuda:N or mps (default: best available)"),
    ("--weights", str, "original", "VGG19 weights: original (bundled), torchvision, or a file"),
    ("--max-pixels", int, protocol.DEFAULT_MAX_PIXELS, "largest image (width x height) accepted"),
    ("--max-message-bytes", int, protocol.DEFAULT_MAX_MESSAGE_BYTES,
     "largest message accepted, all its frames together"),
    ("--max-queue", int, protocol.DEFAULT_MAX_QUEUE, "jobs that may wait at once"),
    ("--max-jobs-per-client", int, protocol.DEFAULT_MAX_JOBS_PER_CLIENT,
     "jobs one connection may have waiting or running"),
    ("--max-cost", int, protocol.DEFAULT_MAX_COST,
     "largest job: working-size pixels x iterations"),
    ("--max-clients", int, protocol.DEFAULT_MAX_CLIENTS, "connections at once"),
    ("--job-timeout", float, protocol.JOB_TIMEOUT, "seconds without a heartbeat before a job is dropped"),
    ("--unload-after", float, 1800.0, "seconds without a job before the model is freed (an idle "
     "server's memory; the next job loads it again)"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nst-server",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve in the foreground, logging to the terminal")
    start = commands.add_parser("start", help="serve in the background (returns once it answers)")
    stop = commands.add_parser("stop", help="stop the background server")
    status = commands.add_parser("status", help="say whether a server answers (exit 0) or not (3)")
    for command in (run, start, stop, status):
        command.add_argument("--endpoint", default=default_endpoint(),
                             help=f"tcp://HOST:PORT (default: ${protocol.ENDPOINT_ENV} or "
                                  f"{protocol.DEFAULT_ENDPOINT})")
    for command in (run, start):
        for option, kind, default, text in SERVE_OPTIONS:
            command.add_argument(option, type=kind, default=default, help=text)
        command.add_argument("--allow-remote", action="store_true", help="listen on an address "
                             "other hosts can reach (unauthenticated: prefer an SSH tunnel)")
    run.add_argument("--log-file", help="log here, rotated at 5 MiB (default: the terminal)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"run": run, "start": start, "stop": stop, "status": status}[args.command](args)


def check_endpoint(args: argparse.Namespace) -> str | None:
    """The reason the endpoint may not be served, or None; warns when remote access is allowed."""
    try:
        host, _ = protocol.parse_endpoint(args.endpoint)
    except ValueError as exc:
        return str(exc)
    if not is_loopback(host):
        if not args.allow_remote:
            return (f"{args.endpoint} is not a loopback address: other hosts could reach it. "
                    "Use tcp://127.0.0.1:PORT, or pass --allow-remote if you mean it")
        print(REMOTE_WARNING.format(endpoint=args.endpoint), file=sys.stderr)
    return None


def is_loopback(host: str) -> bool:
    """Only this machine can reach HOST: 127.0.0.0/8, ::1 or `localhost` (any other name may
    resolve to anything)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from ..engine import InputError, Stylizer
    from ..service.admission import Limits
    from ..service.server import Server
    problem = check_endpoint(args)
    if problem:
        print(f"nst-server: error: {problem}", file=sys.stderr)
        return 2
    setup_logging(args.log_file)
    try:
        stylizer = Stylizer(weights=args.weights, device=args.device, load=False)
        server = Server(stylizer, args.endpoint, Limits(
            max_pixels=args.max_pixels, max_message_bytes=args.max_message_bytes,
            max_queue=args.max_queue, job_timeout=args.job_timeout,
            max_jobs_per_client=args.max_jobs_per_client, max_cost=args.max_cost,
            max_clients=args.max_clients), unload_after=args.unload_after)
    except InputError as exc:
        print(f"nst-server: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"nst-server: error: cannot listen on {args.endpoint}: "
              f"{(exc.strerror or str(exc)).lower()} (is another nst-server running there?)",
              file=sys.stderr)
        return 1
    if args.allow_remote:
        logging.getLogger("nst-server").warning(REMOTE_WARNING.format(endpoint=args.endpoint))
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    server.serve_forever()
    if server.failure:
        print(f"nst-server: error: {server.failure}", file=sys.stderr)
        return 2
    return 0


def setup_logging(log_file: str | None) -> None:
    handler: logging.Handler = logging.StreamHandler()
    if log_file:
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=LOG_BYTES, backupCount=2)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def start(args: argparse.Namespace) -> int:
    problem = check_endpoint(args)
    if problem:
        print(f"nst-server: error: {problem}", file=sys.stderr)
        return 2
    run_args = ["--endpoint", args.endpoint, "--log-file", str(daemon.log_file())]
    for option, _, _, _ in SERVE_OPTIONS:
        value = getattr(args, option[2:].replace("-", "_"))
        run_args += [option, str(value)] if value is not None else []
    run_args += ["--allow-remote"] if args.allow_remote else []
    try:
        pid, new = daemon.start(run_args, args.endpoint)
    except daemon.StartError as exc:
        print(f"nst-server: error: {exc}", file=sys.stderr)
        return 1
    print(f"nst-server {'started' if new else 'is already running'} (pid {pid}) on "
          f"{args.endpoint}; log: {daemon.log_file()}")
    return 0


def stop(args: argparse.Namespace) -> int:
    pid = daemon.stop()
    print(f"nst-server stopped (pid {pid})" if pid else "nst-server is not running")
    return 0


def status(args: argparse.Namespace) -> int:
    try:
        info = Client(args.endpoint).info()
    except NSTError:
        print(f"nst-server is not answering on {args.endpoint}")
        return 3
    print(f"nst-server {info['version']} is running on {args.endpoint} (pid {info['pid']}): "
          f"device {info['device']} ({info['dtype']}), weights {info['weights']}, "
          f"{'busy' if info['busy'] else 'idle'}, {info['queue_length']} waiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
