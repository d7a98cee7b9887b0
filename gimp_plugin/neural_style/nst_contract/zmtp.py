"""A ZeroMQ DEALER connection in pure Python (standard library only), for GIMP's own Python, which
on Windows and Apple-Silicon macOS cannot load pyzmq's compiled modules.

It speaks ZMTP 3.0 (ZeroMQ RFC 23) over TCP with the NULL security mechanism (RFC 24/37's
greeting and READY handshake) to the server's ROUTER socket: multipart messages as frames with
MORE/LONG flags. Every read is bounded before anything is allocated (frame size, frames per
message, command size) and every wait by a deadline: a hostile or broken peer gives ZMTPError or
a timeout, never a hang or a huge allocation.
"""
import socket
import struct
import time

SIGNATURE_HEAD, SIGNATURE_TAIL = b"\xff" + bytes(8), b"\x7f"
GREETING = (SIGNATURE_HEAD + SIGNATURE_TAIL + bytes([3, 0]) + b"NULL".ljust(20, b"\0")
            + b"\0" + bytes(31))
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
MAX_COMMAND_BYTES = 64 * 1024  # READY and PING carry a few short properties


def greeting_problem(head: bytes) -> str | None:
    """What is wrong with the start of a peer's greeting (as many bytes as have come), or None:
    the client checks the server's with it, the server's gate each client's."""
    if head[:1] not in (b"", SIGNATURE_HEAD[:1]) or head[9:10] not in (b"", SIGNATURE_TAIL):
        return "not ZeroMQ's"
    if len(head) > 10 and head[10] < 3:
        return f"ZMTP {head[10]}.x, where 3.x is needed"
    return None


class ZMTPError(Exception):
    """The peer broke the protocol or the limits; the message says how."""


class Timeout(Exception):
    """Nothing complete arrived before the deadline (the connection is still usable)."""


class DealerConnection:
    """One TCP connection to a ROUTER, handshaken. `max_message_bytes` and `max_frames` bound
    what a received message may hold; a larger one is a ZMTPError."""

    def __init__(self, host: str, port: int, timeout: float, max_message_bytes: int,
                 max_frames: int):
        self.max_message_bytes, self.max_frames, self.timeout = max_message_bytes, max_frames, timeout
        deadline = time.monotonic() + timeout
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = bytearray()
        self._frames: list[bytes] = []  # of the message being received
        self._size = 0                  # its bytes so far
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock.sendall(GREETING)
            self._check_greeting(self._read_exactly(len(GREETING), deadline))
            self._sock.sendall(_frame(COMMAND, _ready_body()))
            self._check_ready(deadline)
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "DealerConnection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, parts: list[bytes]) -> None:
        """One multipart message (within the connection's timeout)."""
        self._sock.settimeout(self.timeout)
        for index, part in enumerate(parts):
            header = _frame_header(MORE if index < len(parts) - 1 else 0, len(part))
            if len(part) < 65536:
                self._sock.sendall(header + bytes(part))
            else:  # a large frame is sent from where it lies, not copied
                self._sock.sendall(header)
                self._sock.sendall(part)

    def receive(self, timeout: float) -> list[bytes]:
        """The next whole message; Timeout if none is complete within `timeout` s (what has
        arrived of one is kept for the next call)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self._next_message()
            if message is not None:
                return message
            self._fill(deadline)

    # -- the handshake -----------------------------------------------------------------------

    @staticmethod
    def _check_greeting(peer: bytes) -> None:
        problem = greeting_problem(peer)
        if problem is not None:
            raise ZMTPError(f"the server's greeting is {problem} (is something else listening "
                            "on that port?)")
        mechanism = peer[12:32].rstrip(b"\0")
        if mechanism != b"NULL":
            raise ZMTPError(f"the server wants the {mechanism.decode(errors='replace')!r} "
                            "security mechanism; only NULL is supported")

    def _check_ready(self, deadline: float) -> None:
        flags, body = self._read_frame(deadline)
        if not flags & COMMAND:
            raise ZMTPError("the server sent a message before its READY")
        name, properties = _parse_command(body)
        if name == b"ERROR":
            raise ZMTPError(f"the server refused the handshake: {properties.get(b'', b'')!r}")
        if name != b"READY" or properties.get(b"Socket-Type") != b"ROUTER":
            raise ZMTPError(f"unexpected handshake from the server: {name!r} {properties!r}"[:200])

    # -- reading -----------------------------------------------------------------------------

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout()
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(1 << 20)
        except socket.timeout:
            raise Timeout() from None
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self._buffer += data

    def _read_exactly(self, count: int, deadline: float) -> bytes:
        while len(self._buffer) < count:
            self._fill(deadline)
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def _read_frame(self, deadline: float) -> tuple[int, bytes]:
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            self._fill(deadline)

    def _take_frame(self) -> tuple[int, bytes] | None:
        """One whole frame off the buffer, or None if it has not all arrived. Sizes are checked
        against the limits as soon as the header is in, before the body is waited for."""
        if not self._buffer:
            return None
        flags = self._buffer[0]
        if flags & ~(MORE | LONG | COMMAND):
            raise ZMTPError(f"bad frame flags {flags:#04x} from the server")
        head = 9 if flags & LONG else 2
        if len(self._buffer) < head:
            return None
        size = struct.unpack(">Q", self._buffer[1:9])[0] if flags & LONG else self._buffer[1]
        limit = MAX_COMMAND_BYTES if flags & COMMAND else self.max_message_bytes - self._size
        if size > limit:
            raise ZMTPError(f"the server sent a {size}-byte frame, over the limit of {limit}")
        if len(self._buffer) < head + size:
            return None
        body = bytes(self._buffer[head:head + size])
        del self._buffer[:head + size]
        return flags, body

    def _next_message(self) -> list[bytes] | None:
        while True:
            frame = self._take_frame()
            if frame is None:
                return None
            flags, body = frame
            if flags & COMMAND:
                name, properties = _parse_command(body)
                if name == b"ERROR":
                    raise ZMTPError(f"the server sent ERROR: {properties.get(b'', b'')!r}")
                continue  # PING and the like: nothing to do for a client without heartbeats
            self._frames.append(body)
            self._size += len(body)
            if len(self._frames) > self.max_frames:
                raise ZMTPError(f"the server sent a message of over {self.max_frames} frames")
            if not flags & MORE:
                message, self._frames, self._size = self._frames, [], 0
                return message


def _frame_header(flags: int, size: int) -> bytes:
    if size > 255:
        return struct.pack(">BQ", flags | LONG, size)
    return struct.pack(">BB", flags, size)


def _frame(flags: int, body: bytes) -> bytes:
    return _frame_header(flags, len(body)) + body


def _ready_body() -> bytes:
    name, value = b"Socket-Type", b"DEALER"
    return b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def _parse_command(body: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """(name, properties) of a command frame; ERROR's reason is under the key b""."""
    if not body or len(body) < 1 + body[0]:
        raise ZMTPError("a truncated command from the server")
    name, rest = body[1:1 + body[0]], body[1 + body[0]:]
    if name == b"ERROR":
        return name, {b"": rest[1:1 + rest[0]] if rest else b""}
    properties, at = {}, 0
    while at < len(rest):
        key_size = rest[at]
        key = rest[at + 1:at + 1 + key_size]
        at += 1 + key_size
        if at + 4 > len(rest):
            raise ZMTPError("a truncated command property from the server")
        value_size = struct.unpack(">I", rest[at:at + 4])[0]
        if at + 4 + value_size > len(rest):
            raise ZMTPError("a command property longer than its command")
        properties[key] = rest[at + 4:at + 4 + value_size]
        at += 4 + value_size
    return name, properties
