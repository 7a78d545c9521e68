"""A throwaway PostgreSQL cluster and an MLflow tracking server backed by it.

The cluster is the Debian package's binaries (``scripts/test`` installs ``postgresql``):
``initdb`` into a temporary folder, a free port on 127.0.0.1, password authentication over
TCP (so URLs carry a password, and its redaction is tested for real), stopped and deleted
at the end of the session. PostgreSQL refuses to run as root, so as root it runs as the
``postgres`` user the package creates. Where PostgreSQL cannot be found the tests that need
it are skipped with the reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "pg-s3cret-pw"
"""The superuser's password; it must never appear in a param, tag, artifact or output."""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL is not available here: {reason}")


def _binaries() -> Path | None:
    """Return the folder of initdb and pg_ctl: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates.sort(
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0
    )
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Postgres:
    """A running cluster: ``url(database)`` gives a psycopg URL with the password."""

    port: int

    def url(self, database: str, *, driver: str = "postgresql+psycopg") -> str:
        """Return the SQLAlchemy URL of ``database`` on this cluster."""
        return f"{driver}://postgres:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        conninfo = (
            f"host=127.0.0.1 port={self.port} user=postgres password={PASSWORD} dbname=postgres"
        )
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def tables(self, database: str) -> set[str]:
        """Return the table names of ``database`` (schema public)."""
        import psycopg

        conninfo = (
            f"host=127.0.0.1 port={self.port} user=postgres password={PASSWORD} dbname={database}"
        )
        with psycopg.connect(conninfo) as connection:
            rows = connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        return {row[0] for row in rows}


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Start a throwaway cluster for the session; stop and delete it at the end."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install -e '.[dev]')")
    binaries = _binaries()
    if binaries is None:
        _unavailable(
            "no initdb on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        )
    assert binaries is not None
    user: str | None = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run the server")
        user = "postgres"
    folder = Path(tempfile.mkdtemp(prefix="ipwarmup-postgres-"))
    if user is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    (folder / "pwfile").write_text(PASSWORD + "\n")
    if user is not None:
        os.chown(folder / "pwfile", account.pw_uid, account.pw_gid)
    data, port = folder / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=user, cwd=folder, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile",
            str(folder / "pwfile"), "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
            "-l", str(folder / "server.log"), "-w", "-t", "60", "start")  # fmt: skip
    except subprocess.CalledProcessError as error:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {error.stderr.decode(errors='replace')[-2000:]}")
    try:
        yield Postgres(port)
    finally:
        subprocess.run(
            [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, user=user, cwd=folder, timeout=60, check=False,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


TINY_SUITE = (
    "name: tiny\nscenarios:\n  - scenario: steady_b2c_transactional\n  - scenario: low_volume\n"
)
"""Two scenarios of the validation suite: these tests check plumbing, not learning."""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Overrides that make the smoke experiment train and evaluate in seconds."""
    suite = tmp_path_factory.mktemp("suite") / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    return [
        "training.total_timesteps=1260",
        "training.eval_freq=630",
        "training.checkpoint_freq=630",
        "training.eval_seeds=2",
        "training.final_eval_seeds=2",
        "training.pretrain_teacher=null",
        # Scenarios, not the world: these tests pin trajectories of known senders.
        "training.world=null",
        "training.scenarios=[steady_b2c_transactional, low_volume]",
        "training.n_envs=4",
        # One episode per env per rollout (the rollout check asks for whole episodes) and
        # one minibatch: n_steps (20) x n_envs (4).
        f"hyperparameters.n_steps={TINY_HORIZON_DAYS}",
        f"hyperparameters.batch_size={TINY_HORIZON_DAYS * 4}",
        f"training.suite={suite}",
        f"env.horizon_days={TINY_HORIZON_DAYS}",
    ]


TINY_HORIZON_DAYS = 20


@dataclass
class MlflowServer:
    """``mlflow server`` on the cluster's ``mlflow`` database, artifacts in a temp folder."""

    uri: str
    database: str


@pytest.fixture(scope="session")
def mlflow_server(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """Start ``mlflow server`` (backend store PostgreSQL) for the session; stop it after."""
    backend = postgres.create_database("mlflow")
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    port = free_port()
    log = (artifacts.parent / "mlflow-server.log").open("wb")
    environment = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: _answers(uri + "/health"), server, seconds=120)
        yield MlflowServer(uri, "mlflow")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}; see its log")
        if time.monotonic() > deadline:
            pytest.fail(f"mlflow server did not answer within {seconds} s")
        time.sleep(0.5)
