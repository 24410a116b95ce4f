"""The client's address behind trusted proxies (offboard.core.proxies): what every per-address
limit and every recorded IP reads."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from offboard.core.proxies import client_address, parse_networks

NETS = parse_networks("127.0.0.1, 10.0.0.0/8, ::1")


@pytest.mark.offline
@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("127.0.0.1", "203.0.113.7", "203.0.113.7"),  # one trusted proxy
        ("10.1.2.3", "203.0.113.7, 10.9.9.9", "203.0.113.7"),  # two trusted hops
        ("10.1.2.3", "198.51.100.1, 203.0.113.7, 10.9.9.9", "203.0.113.7"),  # forged left part
        ("192.0.2.50", "203.0.113.7", "192.0.2.50"),  # not a proxy of ours: the header is ignored
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),  # garbled: keep the connection's
        ("127.0.0.1", "10.0.0.1, 10.0.0.2", "10.0.0.1"),  # only proxies: the farthest
        ("::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(remote, forwarded, expected):
    assert client_address(remote, forwarded, NETS) == expected


@pytest.mark.offline
def test_a_wrong_proxy_setting_names_the_variable_and_the_value():
    with pytest.raises(ImproperlyConfigured, match=r"OFFBOARD_TRUSTED_PROXIES: '10\.0\.0\.300'"):
        parse_networks("127.0.0.1,10.0.0.300")
    assert parse_networks("") == []


def test_the_portal_limits_each_client_behind_the_proxy_not_the_proxy(db, settings):
    """Two clients behind one load balancer: one's requests exhaust its own limit only."""
    settings.OFFBOARD_PORTAL_RATE_PER_IP = 2
    settings.OFFBOARD_PORTAL_RATE_PER_LINK = 0
    one = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    other = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.8")
    codes = [one.get("/portal/no-such-link/").status_code for _ in range(3)]
    assert codes[-1] == 429
    assert other.get("/portal/no-such-link/").status_code != 429
    # From an address that is not a proxy, the header changes nothing: one client.
    settings.OFFBOARD_TRUSTED_PROXIES = ""
    direct = Client(REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert [direct.get("/portal/no-such-link/").status_code for _ in range(3)][-1] == 429
