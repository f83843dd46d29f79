#!/usr/bin/env bash
# The servers the scale-out tests run against, on this machine: Debian's PostgreSQL cluster,
# started, with a throwaway role and database (dashboard_ci), and HAProxy from Debian's packages.
# Idempotent: run it again and it changes nothing.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version="$(pg_lsclusters --no-header | awk 'NR==1 {print $1}')"
if [ -z "$version" ]; then
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  as_root pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters --no-header | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
psql_admin() { as_root su postgres -c "psql -qAtX -v ON_ERROR_STOP=1 -c \"$1\""; }
for _ in $(seq 1 30); do psql_admin "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'dashboard_ci'")" != 1 ]; then
  psql_admin "CREATE ROLE dashboard_ci LOGIN PASSWORD 'dashboard_ci'"
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'dashboard_ci'")" != 1 ]; then
  psql_admin "CREATE DATABASE dashboard_ci OWNER dashboard_ci"
fi
# pg_trgm is a trusted extension: the owner could make it too; made here once, for every test schema.
as_root su postgres -c "psql -qAtX -d dashboard_ci -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public'"
