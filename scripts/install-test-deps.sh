#!/usr/bin/env bash
# Installs the clients the end-to-end tests talk to the server with: psql, openssl, rsync
# (Debian), pgJDBC (Debian), psycopg 3, psycopg2, asyncpg, SQLAlchemy, pandas and the
# InfluxDB clients influxdb-client and influxdb, podman-compose for the compose file's
# test (PyPI),
# node-postgres (npm).
# Idempotent and quick when everything is there; apt needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v psql >/dev/null 2>&1 || apt_packages+=(postgresql-client)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
command -v rsync >/dev/null 2>&1 || apt_packages+=(rsync)
command -v java >/dev/null 2>&1 || apt_packages+=(default-jre-headless)
[ -f /usr/share/java/postgresql.jar ] || apt_packages+=(libpostgresql-jdbc-java)
if [ "${#apt_packages[@]}" -gt 0 ]; then
    echo "installing Debian packages: ${apt_packages[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

if ! python3 -c 'import psycopg, asyncpg, psycopg2, sqlalchemy, pandas, influxdb_client, influxdb, podman_compose, moto.server' >/dev/null 2>&1; then
    echo "installing Python drivers and tools (tests/drivers/python/requirements.txt)"
    python3 -m pip install -q --disable-pip-version-check -r tests/drivers/python/requirements.txt
fi

if [ ! -d tests/drivers/node/node_modules/pg ]; then
    echo "installing node-postgres (tests/drivers/node/package-lock.json)"
    (cd tests/drivers/node && npm ci --no-audit --no-fund --loglevel=error)
fi
