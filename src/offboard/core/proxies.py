"""The client's address behind a reverse proxy or load balancer (docs/deploy.md).

Behind a proxy every request comes from the proxy's address, so a per-address limit (the
portal's, password reset's, sign-in throttling) would count all clients as one, and every
recorded IP would be the proxy's. `OFFBOARD_TRUSTED_PROXIES` lists the proxies' addresses or
networks; when a request comes from one of them, its `X-Forwarded-For` is read from the right
(each proxy appends the address it saw) and the first address that is not a trusted proxy
becomes `REMOTE_ADDR`, for everything downstream. A request from anywhere else keeps its own
address, whatever it claims: the header is the client's to forge.

The scheme is gunicorn's business: `offboard serve --prod` passes the same list as
`--forwarded-allow-ips`, so `X-Forwarded-Proto: https` from a trusted proxy makes the request
secure (CSRF's origin check, HSTS) and from anyone else changes nothing.
"""

import ipaddress
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str, *, name: str = "OFFBOARD_TRUSTED_PROXIES") -> list[Network]:
    networks = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {part!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return networks


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(remote_addr: str, forwarded_for: str, networks: list[Network]) -> str:
    """The first address from the right of the chain that is not a trusted proxy."""
    if not forwarded_for or not _trusted(remote_addr, networks):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote_addr  # a garbled chain: keep what the connection says
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else remote_addr  # every hop is a proxy: the farthest one


class TrustedProxyMiddleware:
    """First in the chain: sets `REMOTE_ADDR` to the client's address behind trusted proxies."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.networks = parse_networks(settings.OFFBOARD_TRUSTED_PROXIES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded and self.networks:
            remote = request.META.get("REMOTE_ADDR", "")
            request.META["REMOTE_ADDR"] = client_address(remote, forwarded, self.networks)
        return self.get_response(request)
