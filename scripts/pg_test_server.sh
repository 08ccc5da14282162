#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the storage tests (tests/service/test_postgres.py).
#   scripts/pg_test_server.sh start DIR [PORT]   starts it and prints the SQLAlchemy URL to export as
#                                                LAYERGUARD_TEST_PG_URL
#   scripts/pg_test_server.sh stop DIR
# Uses Debian's postgresql binaries (/usr/lib/postgresql/*/bin). As root, the server runs as
# the `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?directory}
port=${3:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi
as_server() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi
}
case "$cmd" in
start)
  mkdir -p "$dir"
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  as_server "'$bin/initdb' -D '$dir/data' -A trust -U postgres >'$dir/initdb.log' 2>&1"
  as_server "'$bin/pg_ctl' -D '$dir/data' -o \"-h 127.0.0.1 -p $port -k '$dir'\" -l '$dir/server.log' -w start >/dev/null"
  as_server "'$bin/createdb' -h 127.0.0.1 -p $port -U postgres layerguard_test"
  echo "postgresql+psycopg://postgres@127.0.0.1:$port/layerguard_test"
  ;;
stop)
  as_server "'$bin/pg_ctl' -D '$dir/data' -m fast stop >/dev/null" || true
  ;;
*)
  echo "usage: $0 start|stop DIR [PORT]" >&2
  exit 2
  ;;
esac
