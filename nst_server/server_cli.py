"""`nst-server run | start | stop | status`: the stylization server, in the foreground or the
background (pid and log files in the user's state folder, see daemon.py)."""
import argparse
import logging
import signal
import sys

import zmq

from neural_style import nst_protocol as protocol
from neural_style.nst_client import Client, NSTError, default_endpoint

from . import daemon


def build_parser():
    parser = argparse.ArgumentParser(prog="nst-server", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve in the foreground, logging to the terminal")
    start = commands.add_parser("start", help="serve in the background (returns once it answers)")
    stop = commands.add_parser("stop", help="stop the background server")
    status = commands.add_parser("status", help="say whether a server answers (exit 0) or not (3)")
    for command in (run, start, stop, status):
        command.add_argument("--endpoint", default=default_endpoint(),
                             help=f"ZeroMQ endpoint (default: ${protocol.ENDPOINT_ENV} or "
                                  f"{protocol.DEFAULT_ENDPOINT}; loopback only unless you say so)")
    for command in (run, start):
        command.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: best available)")
        command.add_argument("--weights", default="original",
                             help="VGG19 weights: original (bundled), torchvision, or a file")
        command.add_argument("--max-pixels", type=int, default=protocol.DEFAULT_MAX_PIXELS,
                             help="largest image (width x height) accepted")
        command.add_argument("--max-message-bytes", type=int,
                             default=protocol.DEFAULT_MAX_MESSAGE_BYTES,
                             help="largest message frame accepted (ZMQ_MAXMSGSIZE)")
        command.add_argument("--max-queue", type=int, default=protocol.DEFAULT_MAX_QUEUE,
                             help="jobs that may wait at once")
        command.add_argument("--job-timeout", type=float, default=protocol.JOB_TIMEOUT,
                             help="seconds without a heartbeat before a job is dropped")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return {"run": run, "start": start, "stop": stop, "status": status}[args.command](args)


def run(args):
    from .engine import Stylizer
    from .errors import InputError
    from .server import Limits, Server
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        stylizer = Stylizer(weights=args.weights, device=args.device)
        server = Server(stylizer, args.endpoint, Limits(args.max_pixels, args.max_message_bytes,
                                                        args.max_queue, args.job_timeout))
    except InputError as exc:
        print(f"nst-server: error: {exc}", file=sys.stderr)
        return 2
    except zmq.ZMQError as exc:
        print(f"nst-server: error: cannot listen on {args.endpoint}: {exc} "
              "(is another nst-server running there?)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    server.serve_forever()
    return 0


def start(args):
    run_args = ["--endpoint", args.endpoint, "--weights", args.weights,
                "--max-pixels", str(args.max_pixels), "--max-message-bytes",
                str(args.max_message_bytes), "--max-queue", str(args.max_queue),
                "--job-timeout", str(args.job_timeout)]
    if args.device:
        run_args += ["--device", args.device]
    try:
        pid, new = daemon.start(run_args, args.endpoint)
    except daemon.StartError as exc:
        print(f"nst-server: error: {exc}", file=sys.stderr)
        return 1
    print(f"nst-server {'started' if new else 'is already running'} (pid {pid}) on "
          f"{args.endpoint}; log: {daemon.log_file()}")
    return 0


def stop(args):
    pid = daemon.stop()
    print(f"nst-server stopped (pid {pid})" if pid else "nst-server is not running")
    return 0


def status(args):
    try:
        info = Client(args.endpoint, timeout=2.0).info()
    except NSTError:
        pid = daemon.running_pid()
        print(f"nst-server is not answering on {args.endpoint}"
              + (f" (pid {pid} exists; see {daemon.log_file()})" if pid else ""))
        return 3
    running = f", running {info['running']}" if info["running"] else ""
    print(f"nst-server {info['version']} is running on {args.endpoint}: device {info['device']} "
          f"({info['dtype']}), weights {info['weights']}, {info['queue_length']} waiting{running}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
