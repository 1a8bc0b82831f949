"""The servers of the stack, each started in its own process group and stopped by its pid.

Postgres, Redis and OpenSSH come from Debian packages (installed when missing), moto's S3
server and Airflow from the project's environment. Each listens on a free loopback port and
keeps its files in the run's throwaway folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent

# Debian package -> a file it installs that this run needs
DEBIAN_PACKAGES = {
    "postgresql": "/usr/lib/postgresql/*/bin/postgres",
    "redis-server": "/usr/bin/redis-server",
    "openssh-server": "/usr/sbin/sshd",
}
# Postgres refuses to run as root; it runs as this account then, in a folder it owns
POSTGRES_ACCOUNT = "nobody"


class ServiceError(RuntimeError):
    """A server could not be installed or started; the message says which and where to look."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_debian_packages() -> list[str]:
    """Install the Debian packages whose files are missing; returns those installed."""
    missing = [pkg for pkg, probe in DEBIAN_PACKAGES.items() if not glob.glob(probe)]
    if not missing:
        return []
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    update = subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True)
    for package in missing:
        install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not glob.glob(DEBIAN_PACKAGES[package]):
            raise ServiceError(
                f"the Debian package {package} could not be installed (apt-get install "
                f"{package} exited {done.returncode}; apt-get update exited "
                f"{update.returncode}): {done.stderr.strip()[-600:]}"
            )
    return missing


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    log_start: int  # where this process's output begins in a log that a restart appends to
    service: bool  # runs until stopped (a server), rather than to its end (a command)

    def output(self) -> str:
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")


class Processes:
    """Every process this run started, to stop in reverse order, whatever happens."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: dict[str, Started] = {}

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        account: str | None = None,
        cwd: Path | None = None,
        service: bool = True,
    ) -> Started:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as output:
            log_start = output.tell()
            process = subprocess.Popen(
                argv,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                # its own process group: stopping it stops what it forked (Celery's pool)
                start_new_session=True,
                **_as_account(account),
            )
        started = Started(name, process, log, log_start, service)
        self.started[name] = started
        print(f"  started {name}: pid {process.pid} ({Path(argv[0]).name}), log {log}", flush=True)
        return started

    def running(self, name: str) -> bool:
        return name in self.started and self.started[name].process.poll() is None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        started = self.started.pop(name)
        process = started.process
        if process.poll() is None:
            _signal_group(process.pid, sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(10)
        # whatever it forked goes with it
        _signal_group(process.pid, signal.SIGKILL)

    def stop_all(self, timeout: float = 10) -> None:
        """SIGTERM to every process group at once, then SIGKILL to what is left at `timeout`."""
        for started in self.started.values():
            _signal_group(started.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in reversed(list(self.started)):
            try:
                self.stop(name, timeout=max(0.1, deadline - time.monotonic()))
            except Exception as error:  # the others must still be stopped
                print(f"  could not stop {name}: {error!r}", file=sys.stderr)

    def check_alive(self) -> None:
        """Raise when a server has exited (it never should while the run goes on)."""
        started = list(self.started.values())
        dead = [s for s in started if s.service and s.process.poll() is not None]
        if dead:
            raise ServiceError(
                "; ".join(f"{s.name} exited {s.process.returncode}: {tail(s.log)}" for s in dead)
            )


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _as_account(account: str | None) -> dict[str, object]:
    if account is None or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(account)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def hand_to(path: Path, account: str) -> None:
    """Give `path` to `account` (when running as root), so the server running as it owns it."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(account)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def tail(log: Path, chars: int = 1500) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return text[-chars:]


def wait_for(
    what: str, ready: Callable[[], bool], timeout: float, started: Started | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started is not None and started.process.poll() is not None:
            raise ServiceError(f"{what} exited {started.process.returncode}: {tail(started.log)}")
        if ready():
            return
        time.sleep(0.3)
    log = f": {tail(started.log)}" if started else ""
    raise ServiceError(f"{what} not ready after {timeout:.0f} s{log}")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 400)
    except (urllib.error.URLError, OSError):
        return False


def _postgres_bin(tool: str) -> str:
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))[-1]


def start_postgres(procs: Processes, root: Path, port: int, password: str) -> Started:
    """A Postgres cluster in `root` with the superuser and database `airflow`, as compose's."""
    root.mkdir()
    hand_to(root, POSTGRES_ACCOUNT)
    root.chmod(0o700)
    password_file = root / "password"
    password_file.write_text(password, encoding="utf-8")
    hand_to(password_file, POSTGRES_ACCOUNT)
    data = root / "data"
    initdb = [
        _postgres_bin("initdb"),
        *("-D", str(data), "-U", "airflow", "--pwfile", str(password_file)),
        *("--auth", "scram-sha-256", "--encoding", "UTF8", "--no-sync"),
    ]
    done = subprocess.run(
        initdb, capture_output=True, text=True, cwd=root, **_as_account(POSTGRES_ACCOUNT)
    )
    if done.returncode != 0:
        raise ServiceError(f"initdb failed: {done.stderr[-1500:]}")
    password_file.unlink()
    started = procs.start(
        "postgres",
        [
            _postgres_bin("postgres"),
            *("-D", str(data), "-p", str(port)),
            # a throwaway cluster: no socket file elsewhere, and no fsync to wait for
            *("-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}"),
            *("-c", "fsync=off", "-c", "max_connections=200"),
        ],
        account=POSTGRES_ACCOUNT,
        cwd=root,
    )
    env = os.environ | {"PGPASSWORD": password}
    address = ["-h", "127.0.0.1", "-p", str(port), "-U", "airflow"]

    def accepting() -> bool:
        ready = [_postgres_bin("pg_isready"), *address, "-d", "postgres", "-q"]
        return subprocess.run(ready, env=env).returncode == 0

    wait_for("postgres", accepting, 60, started)
    created = subprocess.run(
        [_postgres_bin("createdb"), *address, "airflow"], env=env, capture_output=True, text=True
    )
    if created.returncode != 0:
        raise ServiceError(f"createdb airflow failed: {created.stderr}")
    return started


def start_redis(procs: Processes, root: Path, port: int, password: str) -> Started:
    root.mkdir()
    config = root / "redis.conf"
    # the password sits in a file only this account reads, never on a command line
    config.touch(mode=0o600)
    config.write_text(
        f"bind 127.0.0.1\nport {port}\nrequirepass {password}\ndir {root}\n"
        'save ""\nappendonly no\ndaemonize no\n',
        encoding="utf-8",
    )
    started = procs.start("redis", ["/usr/bin/redis-server", str(config)], cwd=root)
    wait_for("redis", lambda: port_open(port), 30, started)
    return started


def start_moto(procs: Processes, port: int, env: dict[str, str]) -> Started:
    argv = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    started = procs.start("moto-s3", argv, env=env)
    wait_for("moto", lambda: http_ok(f"http://127.0.0.1:{port}/moto-api/"), 60, started)
    return started


@dataclass(frozen=True)
class SftpServer:
    started: Started
    user: str
    port: int
    client_key: Path
    known_hosts: Path


def start_sshd(procs: Processes, root: Path, port: int) -> SftpServer:
    """OpenSSH on `port` with a generated host key, listed in a `known_hosts` of its own, and
    one client key allowed: the account running this, over SFTP."""
    root.mkdir(mode=0o700)
    host_key, client_key = root / "ssh_host_ed25519_key", root / "client_ed25519"
    for key in (host_key, client_key):
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)]
        subprocess.run(keygen, check=True)
    authorized = root / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    known_hosts = root / "known_hosts"
    known_hosts.write_text(
        f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text().strip()}\n"
    )
    user = pwd.getpwuid(os.geteuid()).pw_name
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                f"AllowUsers {user}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                # the throwaway folder's modes are not a home directory's
                "StrictModes no",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        # sshd's privilege separation needs it; the init script would make it
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    started = procs.start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)])
    wait_for("sshd", lambda: port_open(port), 30, started)
    return SftpServer(started, user, port, client_key, known_hosts)
