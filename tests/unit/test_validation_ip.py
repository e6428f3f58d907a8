"""IP and CIDR parsing as the API server does it (Go's pre-1.17 "sloppy" parser), and the
externalIPs rules (ValidateNonSpecialIP), message for message."""

from __future__ import annotations

import pytest

from nodeport_lb.validation.field import Path
from nodeport_lb.validation.ip import (
    ip_family,
    is_valid_cidr,
    is_valid_ip,
    parse_ip_sloppy,
    validate_non_special_ip,
)

PATH = Path("spec").child("externalIPs").index(0)


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("10.0.0.1", "IPv4"),
        ("010.000.000.001", "IPv4"),  # leading zeros: still accepted by the API server
        ("2001:db8::1", "IPv6"),
        ("::ffff:10.0.0.1", "IPv4"),  # IPv4-mapped: Go treats it as IPv4
        ("256.0.0.1", None),
        ("1.2.3", None),
        ("fe80::1%eth0", None),  # no zones
        ("myhost.mydomain", None),
        ("", None),
        (42, None),
    ],
)
def test_families(text: object, family: str | None) -> None:
    assert ip_family(text) == family
    assert (parse_ip_sloppy(text) is None) == (family is None)


def test_invalid_ip_message() -> None:
    assert [str(e) for e in is_valid_ip(PATH, "1.2.3.4.5")] == [
        'spec.externalIPs[0]: Invalid value: "1.2.3.4.5": must be a valid IP address, '
        "(e.g. 10.9.8.7 or 2001:db8::ffff)"
    ]


@pytest.mark.parametrize(
    ("cidr", "valid"),
    [
        ("10.0.0.0/8", True),
        ("10.0.0.1/8", True),  # host bits set: a warning upstream, not an error
        ("2001:db8::/64", True),
        ("10.0.0.0/33", False),
        ("10.0.0.0/255.0.0.0", False),  # a netmask is not a prefix length
        ("10.0.0.0", False),
        ("", False),
    ],
)
def test_cidrs(cidr: str, valid: bool) -> None:
    assert (is_valid_cidr(PATH, cidr) == []) is valid


@pytest.mark.parametrize(
    ("ip", "detail"),
    [
        ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
        ("::", "may not be unspecified (::)"),
        ("127.0.0.2", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        ("::1", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        ("169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
        ("fe80::1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
        ("224.0.0.5", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
        ("ff02::1", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ],
)
def test_special_external_ips_are_refused(ip: str, detail: str) -> None:
    assert [str(e) for e in validate_non_special_ip(PATH, ip)] == [
        f'spec.externalIPs[0]: Invalid value: "{ip}": {detail}'
    ]


@pytest.mark.parametrize("ip", ["192.0.2.10", "2001:db8::10", "224.0.1.1"])
def test_ordinary_external_ips_pass(ip: str) -> None:
    assert validate_non_special_ip(PATH, ip) == []
