"""Endpoints the server listens on: `tcp://HOST:PORT`, and whether HOST keeps it on this machine."""
import ipaddress


def parse_tcp(endpoint: str) -> tuple[str, int]:
    """`tcp://HOST:PORT` -> (host, port); HOST may be a name, an IPv4 address, `[IPv6]` or `*`
    (every interface). ValueError with the reason otherwise."""
    scheme, _, rest = endpoint.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"endpoint {endpoint!r} is not tcp://HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return ("0.0.0.0" if host == "*" else host), int(port)


def is_loopback(host: str) -> bool:
    """Only this machine can reach HOST: 127.0.0.0/8, ::1 or `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name: it may resolve to anything
