"""The lab's loopback addresses and whether an address:port is free for a lab to listen on."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

from maint.errors import LabError
from maint.lab.model import LabPortInUse


def lab_addresses(first_address: str, count: int) -> list[str]:
    """``count`` loopback addresses from ``first_address`` on, skipping those ending in .0 or .255.

    Raises :class:`LabError` if ``first_address`` is not an IPv4 loopback address, ends in .0 or .255,
    or the range would leave 127.0.0.0/8.
    """
    try:
        current = ipaddress.IPv4Address(first_address)
    except ValueError:
        raise LabError(f"--first-address {first_address!r} is not an IPv4 address") from None
    if not current.is_loopback:
        raise LabError(
            f"--first-address {first_address} is not a loopback address",
            hint="the lab only uses 127.0.0.0/8",
        )
    if int(current) & 0xFF in (0, 255):
        raise LabError(f"--first-address {first_address} ends in .0 or .255, which the lab skips")
    addresses: list[str] = []
    while len(addresses) < count:
        if not current.is_loopback or current == ipaddress.IPv4Address("127.255.255.255"):
            raise LabError(f"{count} hosts from {first_address} do not fit in 127.0.0.0/8")
        if int(current) & 0xFF not in (0, 255):
            addresses.append(str(current))
        current += 1
    return addresses


def port_is_free(address: str, port: int) -> bool:
    """Whether nothing listens on ``address``:``port`` (a bind test); raises :class:`LabError` for an
    ``address`` that is not loopback or a port that cannot be bound for another reason.
    """
    if not ipaddress.ip_address(address).is_loopback:
        raise LabError(f"{address} is not a loopback address: the lab binds and dials loopback only")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR, as sshd sets it: TIME_WAIT leftovers of a previous lab do not count as taken,
        # a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise LabError(f"cannot bind {address}:{port}: {error.strerror}") from None
    return True


def _check_free(addresses: list[str], port: int, directory: Path) -> None:
    taken = [address for address in addresses if not port_is_free(address, port)]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise LabPortInUse(
            f"{taken[0]}:{port}{more} is already in use: another lab or service listens there",
            hint=f"stop that lab with `maint lab down --dir ITS_DIR`, or pick another port: "
            f"maint lab up --dir {directory} --port {port + 1000}",
        )
