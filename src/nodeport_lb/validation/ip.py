"""IP address and CIDR checks as the API server makes them (k8s.io/utils/net's "sloppy" parsers,
apimachinery's IsValidIP / IsValidCIDR, core validation's ValidateNonSpecialIP).

The API server still parses IPv4 the way Go did before 1.17: an octet may carry leading zeros
("010.1.1.1" is 10.1.1.1). Python's ipaddress refuses that, and accepts things Go refuses (an
IPv6 zone, a netmask after the slash), so the parsing here is written out by hand on purpose.
"""

from __future__ import annotations

import ipaddress
import re

from nodeport_lb.validation.field import FieldError, Path

IPV4, IPV6 = "IPv4", "IPv6"
IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_MESSAGE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"

_OCTETS = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip_sloppy(text: object) -> Address | None:
    """The address ``text`` names, or None where the API server would not parse it."""
    if not isinstance(text, str):
        return None
    octets = _OCTETS.fullmatch(text)
    if octets:
        values = [int(o) for o in octets.groups()]
        if any(v > 255 for v in values):
            return None
        return ipaddress.IPv4Address(".".join(map(str, values)))
    if ":" not in text or not _IPV6_CHARS.fullmatch(text):
        return None
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def as_ipv4_if_mapped(address: Address) -> Address:
    """Go treats ::ffff:a.b.c.d as the IPv4 address a.b.c.d everywhere (To4() != nil)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def ip_family(text: object) -> str | None:
    address = parse_ip_sloppy(text)
    if address is None:
        return None
    return IPV4 if as_ipv4_if_mapped(address).version == 4 else IPV6


def is_valid_ip(path: Path, value: object) -> list[FieldError]:
    return [] if parse_ip_sloppy(value) is not None else [path.invalid(value, IP_MESSAGE)]


def is_valid_cidr(path: Path, value: object) -> list[FieldError]:
    return [] if _parses_as_cidr(value) else [path.invalid(value, CIDR_MESSAGE)]


def _parses_as_cidr(value: object) -> bool:
    if not isinstance(value, str) or value.count("/") != 1:
        return False
    address_text, prefix = value.split("/")
    address = parse_ip_sloppy(address_text)
    if address is None or not prefix.isdigit():
        return False
    # the prefix counts the bits of the address as written: an IPv4-mapped IPv6 has 128
    return int(prefix) <= (32 if address.version == 4 else 128)


def canonical_cidr(value: str) -> str:
    """The network a valid CIDR names, as the API server reads it: host bits cleared and
    leading zeros dropped (``010.1.2.3/8`` -> ``10.0.0.0/8``)."""
    address_text, prefix = value.strip().split("/")
    address = parse_ip_sloppy(address_text)
    if address is None:
        raise ValueError(f"not a CIDR: {value!r}")
    return str(ipaddress.ip_network(f"{address}/{int(prefix)}", strict=False))


def validate_non_special_ip(path: Path, value: str) -> list[FieldError]:
    """ValidateNonSpecialIP: no unspecified, loopback or link-local addresses (externalIPs)."""
    parsed = parse_ip_sloppy(value)
    if parsed is None:
        return [path.invalid(value, "must be a valid IP address")]
    address = as_ipv4_if_mapped(parsed)
    errors = []
    if address.is_unspecified:
        errors.append(path.invalid(value, f"may not be unspecified ({value})"))
    if address.is_loopback:
        errors.append(
            path.invalid(value, "may not be in the loopback range (127.0.0.0/8, ::1/128)")
        )
    if _is_link_local_unicast(address):
        detail = "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        errors.append(path.invalid(value, detail))
    if _is_link_local_multicast(address):
        detail = "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        errors.append(path.invalid(value, detail))
    return errors


def _is_link_local_unicast(address: Address) -> bool:
    if address.version == 4:
        return address in ipaddress.IPv4Network("169.254.0.0/16")
    return address in ipaddress.IPv6Network("fe80::/10")


def _is_link_local_multicast(address: Address) -> bool:
    if address.version == 4:
        return address in ipaddress.IPv4Network("224.0.0.0/24")
    packed = address.packed
    return packed[0] == 0xFF and packed[1] & 0x0F == 0x02
