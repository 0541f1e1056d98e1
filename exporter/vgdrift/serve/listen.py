"""Listen addresses ("[host]:port"), parsed without the HTTP server: the
config loader needs the parser, not the server."""

from typing import Tuple


def parse_listen_address(address: str) -> Tuple[str, int]:
    """(host, port) from ":9867", "127.0.0.1:9867", "[::1]:9867" or
    "name:9867"; host "" means every address.  Raises ValueError."""
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError("listen address %r: expected [host]:port" % address)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError("listen address %r: brackets are for IPv6 addresses" % address)
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError("listen address %r: write IPv6 addresses as [addr]:port" % address)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("listen address %r: invalid port %r" % (address, port))
    return host, int(port)
