"""The throw-away PostgreSQL server the team tests run against: real, on loopback, password-protected, and it
survives being stopped the hard way."""

from __future__ import annotations

import os
import subprocess

from postgres import PostgresServer


def test_the_server_answers_on_loopback_with_a_password(postgres: PostgresServer) -> None:
    assert postgres.psql("SELECT inet_server_addr()") == "127.0.0.1"
    env = dict(os.environ, PGPASSWORD="wrong")
    denied = subprocess.run([str(postgres.bin / "psql"), "-X", "-h", postgres.host, "-p", str(postgres.port),
                             "-U", postgres.superuser, "-c", "SELECT 1"], capture_output=True, text=True, env=env)
    assert denied.returncode != 0


def test_a_committed_row_survives_an_immediate_stop(postgres: PostgresServer) -> None:
    dsn = postgres.fresh_database()
    name = dsn.rsplit("/", 1)[1]
    postgres.psql("CREATE TABLE t (n int); INSERT INTO t VALUES (42)", dbname=name)
    postgres.stop("immediate")
    assert not postgres.running()
    postgres.start()
    assert postgres.psql("SELECT n FROM t", dbname=name) == "42"
