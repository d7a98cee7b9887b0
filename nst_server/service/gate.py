"""The server's front door: a TCP listener that relays every connection to the ZeroMQ ROUTER on a
private internal endpoint, reading the ZMTP 3 framing (ZeroMQ RFC 23/37) of what clients send as
it passes, so that a message over the whole-message limit is cut off before anything buffers it.

Why: libzmq's ZMQ_MAXMSGSIZE bounds each frame, never their sum, and libzmq hands a multipart
message to the application only once all of it has arrived; a `ping` with 8 frames of 200 MB was
therefore held whole in memory before it could be refused. Here a connection whose message grows
past `max_message_bytes` or `max_frames` is closed at that byte; libzmq then drops the partial
message. Memory per connection is one read buffer per direction; connections are bounded too.
"""
import logging
import selectors
import socket
import threading
from dataclasses import dataclass, field

from nst_contract.zmtp import COMMAND, GREETING, LONG, MAX_COMMAND_BYTES, MORE, greeting_problem

log = logging.getLogger("nst-server")

CHUNK = 256 * 1024


class LimitExceeded(Exception):
    """What a client sent breaks the framing or the limits; the message says which."""


class FrameMeter:
    """Follows one client's byte stream through the greeting and the frames, keeping only counts:
    frame bodies are skipped, never stored."""

    def __init__(self, max_message_bytes: int, max_frames: int):
        self.max_message_bytes, self.max_frames = max_message_bytes, max_frames
        self._head = b""               # bytes of the greeting or of a frame header, so far
        self._greeted = False
        self._body_left = 0            # bytes of the current frame body still to come
        self._flags = 0
        self._frames = self._bytes = 0  # of the message in progress

    def feed(self, data: bytes) -> None:
        view, at = memoryview(data), 0
        while at < len(view):
            if self._body_left:
                step = min(self._body_left, len(view) - at)
                self._body_left -= step
                at += step
                if not self._body_left:
                    self._frame_done()
                continue
            self._head += bytes(view[at:at + 1])
            at += 1
            self._parse_head()

    def _parse_head(self) -> None:
        head = self._head
        if not self._greeted:
            problem = greeting_problem(head)
            if problem is not None:
                raise LimitExceeded(f"the greeting is {problem}")
            if len(head) == len(GREETING):
                self._greeted, self._head = True, b""
            return
        flags = head[0]
        if flags & ~(MORE | LONG | COMMAND):
            raise LimitExceeded(f"bad frame flags {flags:#04x}")
        if len(head) < (9 if flags & LONG else 2):
            return
        size = int.from_bytes(head[1:], "big")
        self._head, self._flags = b"", flags
        if flags & COMMAND:
            if size > MAX_COMMAND_BYTES:
                raise LimitExceeded(f"a {size}-byte command frame")
        else:
            self._frames += 1
            self._bytes += size
            if self._frames > self.max_frames:
                raise LimitExceeded(f"a message of more than {self.max_frames} frames")
            if self._bytes > self.max_message_bytes:
                raise LimitExceeded(f"a message of more than {self.max_message_bytes} bytes")
        self._body_left = size
        if not size:
            self._frame_done()

    def _frame_done(self) -> None:
        if not self._flags & (MORE | COMMAND):
            self._frames = self._bytes = 0


@dataclass(eq=False)
class Pipe:
    """One direction of a relayed connection: bytes read from `source`, waiting for `sink`."""
    source: socket.socket
    sink: socket.socket
    meter: FrameMeter | None = None
    pending: bytes = field(default=b"")


@dataclass(eq=False)
class Link:
    client: socket.socket
    inner: socket.socket
    pipes: tuple[Pipe, Pipe]


Inner = str | tuple[str, int]  # a Unix socket's path, or (host, port)


class Gate:
    """Listens on (host, port); relays each accepted connection to `inner`."""

    def __init__(self, address: tuple[str, int], inner: Inner, max_message_bytes: int,
                 max_frames: int, max_clients: int):
        self.inner, self.max_clients = inner, max_clients
        self.max_message_bytes, self.max_frames = max_message_bytes, max_frames
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: no second server on the same port
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(address)
        except OSError:
            self._listener.close()
            raise
        self._listener.listen(16)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._links: dict[socket.socket, Link] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="nst-gate", daemon=True)

    @property
    def connections(self) -> int:
        return len(self._links) // 2  # each link is there under both of its sockets

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(timeout=0.2):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj in self._links:
                        self._relay(self._links[key.fileobj], key.fileobj)
        finally:
            for link in list(self._links.values()):
                self._close(link)
            self._selector.close()
            self._listener.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if self.connections >= self.max_clients:
            log.warning("refused a connection: %d clients already connected", self.max_clients)
            client.close()
            return
        try:
            inner = _connect(self.inner)
        except OSError as exc:
            log.error("cannot reach the internal endpoint: %s", exc)
            client.close()
            return
        for sock in (client, inner):
            sock.setblocking(False)
            if sock.family != getattr(socket, "AF_UNIX", None):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        meter = FrameMeter(self.max_message_bytes, self.max_frames)
        link = Link(client, inner, (Pipe(client, inner, meter), Pipe(inner, client)))
        self._links[client] = self._links[inner] = link
        self._update(link)

    def _relay(self, link: Link, ready: socket.socket) -> None:
        """Move bytes on every pipe that can move; close the link on EOF, error or a limit."""
        try:
            for pipe in link.pipes:
                self._move(pipe, ready)
        except LimitExceeded as exc:
            log.warning("closed a connection that sent %s", exc)
            self._close(link)
            return
        except OSError:
            self._close(link)
            return
        self._update(link)

    @staticmethod
    def _move(pipe: Pipe, ready: socket.socket) -> None:
        try:
            if not pipe.pending and pipe.source is ready:
                data = pipe.source.recv(CHUNK)
                if not data:
                    raise ConnectionResetError("closed by the peer")
                if pipe.meter is not None:
                    pipe.meter.feed(data)
                pipe.pending = data
            if pipe.pending:
                sent = pipe.sink.send(pipe.pending)
                pipe.pending = pipe.pending[sent:]
        except (BlockingIOError, InterruptedError):
            pass

    def _update(self, link: Link) -> None:
        """Each socket waits to read while its outgoing pipe is empty, to write while its
        incoming pipe has bytes: at most one chunk per direction is ever held."""
        for sock in (link.client, link.inner):
            events = 0
            for pipe in link.pipes:
                if pipe.source is sock and not pipe.pending:
                    events |= selectors.EVENT_READ
                if pipe.sink is sock and pipe.pending:
                    events |= selectors.EVENT_WRITE
            try:
                self._selector.modify(sock, events) if events else self._selector.unregister(sock)
            except KeyError:
                if events:
                    self._selector.register(sock, events)

    def _close(self, link: Link) -> None:
        for sock in (link.client, link.inner):
            self._links.pop(sock, None)
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()


def _connect(inner: Inner) -> socket.socket:
    if isinstance(inner, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(2)
        sock.connect(inner)
        return sock
    return socket.create_connection(inner, timeout=2)
