#!/usr/bin/env bash
# Starts the services the tests use when this machine has them but they are stopped.
# Tests that need a service that is still absent skip with a clear reason.
set -u
if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      for v in $(ls /etc/postgresql); do
        pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
      done
      for _ in $(seq 1 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    fi
  fi
  pg_isready -h 127.0.0.1 -p 5432 || echo "PostgreSQL is not running: PostgreSQL tests will skip"
else
  echo "PostgreSQL client tools not found: PostgreSQL tests will skip"
fi
exit 0
