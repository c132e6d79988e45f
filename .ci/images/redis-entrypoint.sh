#!/bin/sh
# drill-local/redis: like the official redis image, `redis-server [options]` runs in /data.
set -eu
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
cd /data
exec "$@"
