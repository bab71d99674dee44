"""A private PostGIS cluster under the data directory, for when no DATABASE_URL is given.

PostgreSQL refuses to run as root, so when we are root the cluster runs as the `postgres`
system user that Debian's package creates; the data directory is handed over to it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin")]
DB_NAME = "citygrid"
DB_USER = "citygrid"


class ClusterError(RuntimeError):
    """The private cluster could not be created or started; the message says what to do."""


def pg_bin() -> Path:
    for cand in PG_BIN_CANDIDATES:
        if (cand / "pg_ctl").exists():
            return cand
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(
        "PostgreSQL 15 server not found. Install it with: apt-get install postgresql-15 postgresql-15-postgis-3 "
        "(or set DATABASE_URL to an existing PostGIS database)."
    )


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Cluster:
    """A cluster in `root/pg`; its port is remembered in `root/pg.port` so a second run reuses it."""

    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pg"

    @property
    def port_file(self) -> Path:
        return self.root / "pg.port"

    @property
    def log_file(self) -> Path:
        return self.root / "pg.log"

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(pg_bin() / args[0]), *args[1:]]
        if _is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if check and res.returncode != 0:
            raise ClusterError(f"{' '.join(args[:2])} failed: {res.stderr.strip() or res.stdout.strip()}")
        return res

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def url(self) -> str:
        port = self.port
        if port is None:
            raise ClusterError("the private cluster has no port yet; run `citygrid db up`")
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"

    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialized():
            return False
        return self._run(["pg_ctl", "status", "-D", str(self.pgdata)], check=False).returncode == 0

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.initialized():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if _is_root():
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.pgdata, "postgres", "postgres")
        self._run(["initdb", "-D", str(self.pgdata), "-U", DB_USER, "--auth=trust", "-E", "UTF8",
                   "--locale=C.UTF-8", "--no-sync"])
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\n# citygrid private cluster\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.pgdata}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 512MB\nwork_mem = 32MB\nmaintenance_work_mem = 256MB\n"
                "max_connections = 200\n"
            )

    def start(self) -> str:
        """Start (initialising on first use) and return the database URL."""
        if not (pg_bin().parent / "lib" / "postgis-3.so").exists():
            raise ClusterError(
                "PostGIS is not installed. Install it with: apt-get install postgresql-15-postgis-3"
            )
        self.init()
        if not self.running():
            self._configure_pgaudit()
            port = self.port
            if port is None or _port_open(port):
                port = _free_port()
            self.port_file.write_text(str(port))
            self._run(["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.pgdata), "-l",
                       str(self.pgdata / "server.log"), "-o", f"-p {port}"])
        self._ensure_database()
        return self.url()

    def standby_of(self, primary: Cluster) -> str:
        """Make this cluster a hot standby of `primary` (`pg_basebackup -R`: a streaming replica that replays
        the primary's WAL and answers read-only queries) and start it; returns its URL. A standby already made
        is only started."""
        if not self.initialized():
            if primary.port is None:
                raise ClusterError("the primary has no port: start it first")
            self.root.mkdir(parents=True, exist_ok=True)
            if _is_root():
                shutil.chown(self.root, "postgres", "postgres")
            self._run(["pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", DB_USER, "-D",
                       str(self.pgdata), "-R", "-X", "stream", "-c", "fast", "--no-sync"])
            with (self.pgdata / "postgresql.auto.conf").open("a") as f:  # its own socket, not the primary's
                f.write(f"unix_socket_directories = '{self.pgdata}'\nhot_standby = on\n")
        return self.start()

    def _configure_pgaudit(self) -> None:
        """pgaudit (Debian postgresql-15-pgaudit) logs every write, DDL and role change in the server log, next to
        citygrid's own audit log; loaded when installed (takes effect at this start), skipped with a note when not."""
        conf = self.pgdata / "postgresql.conf"
        text = conf.read_text()
        if "pgaudit" in text:
            return
        if not (pg_bin().parent / "lib" / "pgaudit.so").exists():
            print("citygrid: pgaudit is not installed (apt-get install postgresql-15-pgaudit); the server log will "
                  "not audit statements. citygrid's own audit log is unaffected.", file=sys.stderr)
            return
        with conf.open("a") as f:
            f.write("\n# statement audit in the server log (pgaudit), a complement to citygrid's audit_log\n"
                    "shared_preload_libraries = 'pgaudit'\npgaudit.log = 'write, ddl, role'\n"
                    "pgaudit.log_catalog = off\npgaudit.log_parameter = off\n")

    def _ensure_database(self) -> None:
        port = self.port
        for _ in range(50):
            if port and _port_open(port):
                break
            time.sleep(0.1)
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user={DB_USER} dbname=postgres",
                             autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    def stop(self) -> None:
        if self.running():
            self._run(["pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.pgdata)])

    def status(self) -> dict[str, object]:
        return {"data": str(self.pgdata), "initialized": self.initialized(), "running": self.running(),
                "port": self.port}


def resolve_database_url(data_dir: Path, database_url: str | None, start: bool = True) -> str:
    """DATABASE_URL wins; otherwise the private cluster under data_dir (started if asked)."""
    if database_url:
        if database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
        return database_url
    cluster = Cluster(data_dir)
    return cluster.start() if start else cluster.url()
