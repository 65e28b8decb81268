"""Linux network namespaces: whether this machine permits them (`namespaces_problem`), the
lab's cells (`LabCells`: one namespace per process, joined only to the lab's own namespace)
and the black-box tests' star (`Star`).

The star: a service namespace and client namespaces, each client joined to the service by
its own veth (the data link, the only way between them), and every namespace joined to the
test's own (root) namespace by a management veth, so the test reaches the REST APIs and
metrics without touching the data links.

Addresses: data links in TEST-NET-2 (198.51.100.0/24, one /30 per client); management links
in a random /24 of the benchmarking range 198.18.0.0/15, one /30 per namespace, so two runs
on one machine do not collide. A client's default route is its data link; no namespace
forwards, so clients reach each other only through the service node, and the service node
only over their data links.

Needs Linux, root and iproute2; `namespaces_problem()` says why not. Deleting a namespace
deletes its veths (and their root-side ends) and its iptables rules."""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

DATA_NET = ipaddress.IPv4Network("198.51.100.0/24")
MANAGEMENT_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
DATA_DEVICE = "data"
"""The client's end of its data link (inside the client namespace)."""


def run(*argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def namespaces_problem() -> str | None:
    """Why this machine cannot run namespace tests, or None."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` tool (iproute2) is not installed"
    probe = f"cwprobe{secrets.token_hex(3)}"
    made = run("ip", "netns", "add", probe)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        veth = run("ip", "-n", probe, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        if veth.returncode != 0:
            return f"cannot create a veth pair: {veth.stderr.strip()}"
    finally:
        run("ip", "netns", "del", probe)
    return None


def lab_namespaces_problem() -> str | None:
    """Why the lab cannot put its processes in namespaces, or None (it also needs iptables:
    LabCells.redirect)."""
    if sys.platform == "linux" and shutil.which("iptables") is None:
        return "iptables is not installed"
    return namespaces_problem()


def _free_management_net() -> ipaddress.IPv4Network:
    """A /24 of 198.18.0.0/15 that no interface or route of this machine uses now."""
    taken = run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route").stdout
    for _ in range(100):
        index = secrets.randbelow(MANAGEMENT_RANGE.num_addresses // 256)
        net = ipaddress.IPv4Network((int(MANAGEMENT_RANGE.network_address) + index * 256, 24))
        prefix = str(net.network_address).rsplit(".", 1)[0] + "."
        if prefix not in taken:
            return net
    raise RuntimeError("no free /24 in 198.18.0.0/15 for the management links")


@dataclass
class Namespace:
    name: str
    management_ip: str
    """This namespace's end of its management link, reachable from the test."""
    data_ip: str = ""
    """A client's end of its data link ("" for the service namespace)."""
    service_ip: str = ""
    """For a client: the service namespace's end of its data link."""

    @property
    def wrapper(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)


@dataclass
class Star:
    """The service namespace and `clients` client namespaces, wired as described above."""

    clients: int
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    service: Namespace = field(init=False)
    client: list[Namespace] = field(init=False, default_factory=list)
    _made: list[str] = field(init=False, default_factory=list)
    _management: list[ipaddress.IPv4Network] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        management = list(_free_management_net().subnets(new_prefix=30))
        data = list(DATA_NET.subnets(new_prefix=30))
        self._management = management
        self.service = Namespace(f"cws{self.tag}", str(management[0][2]))
        for i in range(self.clients):
            self.client.append(Namespace(
                f"cwc{self.tag}{i}", str(management[i + 1][2]),
                data_ip=str(data[i][2]), service_ip=str(data[i][1]),
            ))  # fmt: skip

    def up(self) -> None:
        everyone = [self.service, *self.client]
        for k, ns in enumerate(everyone):
            run("ip", "netns", "add", ns.name, check=True)
            self._made.append(ns.name)
            run("ip", "-n", ns.name, "link", "set", "lo", "up", check=True)
            outside = f"cw{self.tag}m{k}"
            root_ip = self._management[k][1]
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", "mgmt",
                "netns", ns.name, check=True)  # fmt: skip
            run("ip", "addr", "add", f"{root_ip}/30", "dev", outside, check=True)
            run("ip", "link", "set", outside, "up", check=True)
            run("ip", "-n", ns.name, "addr", "add", f"{ns.management_ip}/30", "dev", "mgmt",
                check=True)  # fmt: skip
            run("ip", "-n", ns.name, "link", "set", "mgmt", "up", check=True)
        for i, ns in enumerate(self.client):
            inside = f"d{i}"
            run("ip", "-n", self.service.name, "link", "add", inside, "type", "veth",
                "peer", "name", DATA_DEVICE, "netns", ns.name, check=True)  # fmt: skip
            run("ip", "-n", self.service.name, "addr", "add", f"{ns.service_ip}/30",
                "dev", inside, check=True)  # fmt: skip
            run("ip", "-n", self.service.name, "link", "set", inside, "up", check=True)
            run("ip", "-n", ns.name, "addr", "add", f"{ns.data_ip}/30", "dev", DATA_DEVICE,
                check=True)  # fmt: skip
            self.set_data_link(ns, "up")

    def set_data_link(self, client: Namespace, state: str) -> None:
        """`down` cuts the client's data link (both directions; its default route goes with
        it, as a laptop's does when its network goes), `up` restores the link and the default
        route through it (what DHCP would do): the client's view of its network changes."""
        run("ip", "-n", client.name, "link", "set", DATA_DEVICE, state, check=True)
        if state == "up":
            run("ip", "-n", client.name, "route", "replace", "default", "via",
                client.service_ip, "dev", DATA_DEVICE, check=True)  # fmt: skip

    def down(self) -> None:
        for name in reversed(self._made):
            run("ip", "netns", "del", name)
        self._made.clear()


CELL_DEVICE = "uplink"
"""A lab process's end of its link (inside its namespace)."""
LAB_PREFIX = "cwlab-"
"""Every lab namespace's name starts with this, then the lab's process id: a crashed run's
namespaces are found (and deleted) by the next run."""


@dataclass(frozen=True)
class Cell:
    """One lab process's namespace and its one link, a veth to the lab's (root) namespace."""

    name: str
    inside_ip: str
    """The process's address (it listens here; the lab reaches its API and metrics here)."""
    outside_ip: str
    """The lab's end of the link: the fault proxies for this process listen here."""

    @property
    def wrapper(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)


@dataclass
class LabCells:
    """A namespace per lab process (`roles`: "node0", "client3", ...), each joined to the lab's
    namespace by its own veth (a /30 of a free /24 in 198.18.0.0/15) and to nothing else: no
    default route, so a process reaches only its link's other end, where the lab's proxies
    listen. Nothing forwards between the links (the proxies relay at the TCP level), so
    processes meet only through the proxies."""

    roles: list[str]
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    cells: dict[str, Cell] = field(init=False, default_factory=dict)
    _made: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        links = list(_free_management_net().subnets(new_prefix=30))
        if len(self.roles) > len(links):
            raise ValueError(f"at most {len(links)} namespaced processes, not {len(self.roles)}")
        for role, link in zip(self.roles, links, strict=False):
            name = f"{LAB_PREFIX}{os.getpid()}-{self.tag}-{role}"
            self.cells[role] = Cell(name, str(link[2]), str(link[1]))

    def up(self) -> None:
        """Create every namespace and link (on failure, `down` deletes what was made)."""
        for number, cell in enumerate(self.cells.values()):
            run("ip", "netns", "add", cell.name, check=True)
            self._made.append(cell.name)
            run("ip", "-n", cell.name, "link", "set", "lo", "up", check=True)
            outside = f"cwl{self.tag}{number}"
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", CELL_DEVICE,
                "netns", cell.name, check=True)  # fmt: skip
            run("ip", "addr", "add", f"{cell.outside_ip}/30", "dev", outside, check=True)
            run("ip", "link", "set", outside, "up", check=True)
            run("ip", "-n", cell.name, "addr", "add", f"{cell.inside_ip}/30", "dev", CELL_DEVICE,
                check=True)  # fmt: skip
            run("ip", "-n", cell.name, "link", "set", CELL_DEVICE, "up", check=True)

    def redirect(self, role: str, address: str, port: int, proxy_port: int) -> None:
        """From `role`'s namespace, TCP to `address:port` (another process, which advertises
        that address to its peers) goes to `proxy_port` on the lab's end of the link instead:
        a dial of the advertised address is a dial of the proxy (py-libp2p dials one TCP
        address per peer, and it may pick the advertised one). Anything else to `address`
        is refused: nothing reaches another namespace around the proxies."""
        cell = self.cells[role]
        run("ip", "-n", cell.name, "route", "replace", f"{address}/32", "via", cell.outside_ip,
            "dev", CELL_DEVICE, check=True)  # fmt: skip
        inside = ("ip", "netns", "exec", cell.name, "iptables", "-w")
        run(*inside, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", address, "--dport",
            str(port), "-j", "DNAT", "--to-destination", f"{cell.outside_ip}:{proxy_port}",
            check=True)  # fmt: skip
        refused = (*inside, "-C", "OUTPUT", "-d", address, "-j", "REJECT")
        if run(*refused).returncode != 0:
            run(*inside, "-A", "OUTPUT", "-d", address, "-j", "REJECT", check=True)

    def down(self) -> None:
        """Delete every namespace made (their veths go with them)."""
        for name in reversed(self._made):
            run("ip", "netns", "del", name)
        self._made.clear()


def lab_namespaces() -> list[str]:
    """The lab namespaces on this machine now (any run's)."""
    listed = run("ip", "netns", "list").stdout.splitlines()
    return [line.split()[0] for line in listed if line.startswith(LAB_PREFIX)]


def remove_stale_lab_namespaces() -> list[str]:
    """Delete the namespaces of lab runs whose process is gone (a crash, a SIGKILL); the
    names deleted."""
    removed = []
    for name in lab_namespaces():
        pid_text = name.removeprefix(LAB_PREFIX).split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            run("ip", "netns", "del", name)
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
