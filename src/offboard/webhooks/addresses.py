"""Where a delivery may go. An endpoint's URL is http:// or https:// with a host and no
`user:password@`; and unless OFFBOARD_WEBHOOKS_ALLOW_PRIVATE is on (it is with
OFFBOARD_DEBUG), no private, loopback, link-local or otherwise internal address — checked
when the endpoint is saved (an address written as one) and again at every attempt on every
address its host resolves to, and the connection goes to the address that was checked, so a
URL cannot be turned against Offboard's own network (SSRF; docs/webhooks-out.md)."""

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

from django.conf import settings

MAX_URL = 2000


class AddressRefused(ValueError):
    """A URL or an address a delivery may not go to; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def private_allowed() -> bool:
    return bool(settings.OFFBOARD_WEBHOOKS_ALLOW_PRIVATE)


def internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def parse(url: str) -> Target:
    """The parts of an endpoint URL; `AddressRefused` saying what is wrong with it."""
    if len(url) > MAX_URL:
        raise AddressRefused(f"is longer than {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise AddressRefused("must not contain spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("must start with https:// (or http://)")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused(
            "must not hold a user:password@ part: the receiver checks the signature instead"
        )
    if not parts.hostname:
        raise AddressRefused("has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused("has a port that is not a number from 1 to 65535") from None
    if parts.fragment:
        raise AddressRefused("must not have a #fragment")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path)


def check_url(url: str) -> Target:
    """At saving: the URL's form, and an address written as one must not be internal."""
    target = parse(url)
    try:
        ip = ipaddress.ip_address(target.host)
    except ValueError:
        if target.host.rstrip(".").lower() in ("localhost",) or target.host.lower().endswith(
            ".localhost"
        ):
            ip = ipaddress.ip_address("127.0.0.1")
        else:
            return target
    if internal(ip) and not private_allowed():
        raise AddressRefused(
            f"is an internal address ({ip}): webhooks go to other systems' public addresses"
        )
    return target


def resolve(target: Target) -> str:
    """At each attempt: the address to connect to, after checking every one the host
    resolves to (one internal address refuses them all)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"host {target.host} cannot be resolved: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"host {target.host} has no address")
    if not private_allowed():
        for address in addresses:
            if internal(ipaddress.ip_address(address.split("%", 1)[0])):
                raise AddressRefused(
                    f"host {target.host} resolves to an internal address ({address}): refused "
                    "(OFFBOARD_WEBHOOKS_ALLOW_PRIVATE is off)"
                )
    return addresses[0]
