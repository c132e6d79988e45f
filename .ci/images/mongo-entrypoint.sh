#!/bin/sh
# drill-local/mongo: a look-alike of the official mongo image for machines without mongod: it takes
# `mongod --port P --bind_ip HOST [--dbpath D]` and runs the nx-27017 wire-protocol server (MongoDB
# protocol on SQLite, ENVIRONMENT.md) with those settings. No authentication (drill passes none).
set -eu
if [ "${1:-mongod}" != mongod ] && [ "${1#-}" = "$1" ]; then exec "$@"; fi
[ "${1:-}" = mongod ] && shift
port=27017 host=127.0.0.1 dbpath=/data/db
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --bind_ip) host=$2; shift 2 ;;
    --dbpath) dbpath=$2; shift 2 ;;
    *) shift ;;
  esac
done
mkdir -p "$dbpath"
exec /opt/nx/bin/nx-27017 --host "$host" -p "$port" --data-dir "$dbpath"
