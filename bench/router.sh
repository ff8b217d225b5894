#!/usr/bin/env bash
# Measures requests per second and p99 latency of the same backend three
# ways in one run: directly, through the Slipway router (with its access log
# off, then on), and through nginx.
#   bash bench/router.sh [DURATION_SECONDS] [CONNECTIONS]
# Installs wrk and nginx from Debian's packages when they are missing.
# Everything listens on 127.0.0.1 and stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-64}
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=$(free_port); router=$(free_port); nginx_port=$(free_port)

go build -o "$work/slipway" ./cmd/slipway
(cd bench/backend && go build -o "$work/pkg/backend" .)
(cd "$work/pkg" && python3 -c 'import zipfile; z=zipfile.ZipFile("../backend.zip","w"); z.write("backend")')

"$work/slipway" server --data-dir "$work/data" --api-listen "127.0.0.1:$api" --http-listen "127.0.0.1:$router" 2>"$work/server.log" &
pids+=($!)
export SLIPWAY_URL="http://127.0.0.1:$api" SLIPWAY_DATA_DIR="$work/data"  # the CLI reads the admin token there
for _ in $(seq 100); do curl -fs "$SLIPWAY_URL/healthz" >/dev/null && break; sleep 0.1; done
"$work/slipway" apps create bench --command 'chmod +x backend && exec ./backend' >/dev/null
"$work/slipway" deploy -a bench "$work/backend.zip" >/dev/null
backend=$("$work/slipway" apps show bench -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"][0]["port"])')

cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$backend; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }
}
NGINX
"$NGINX" -c "$work/nginx.conf" -p "$work"

run() { # name url [host]
  local out
  out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency ${3:+-H "Host: $3"} "$2")
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%-22s %12s %10s  %s\n' "$1" "$rps" "$p99" "$errs"
}
echo "wrk: 2 threads, $conns connections, ${duration}s each, on $(nproc) cores"
printf '%-22s %12s %10s\n' "target" "req/s" "p99"
run "backend directly" "http://127.0.0.1:$backend/"
run "slipway router" "http://127.0.0.1:$router/" "bench.localhost"
run "nginx (1 worker)" "http://127.0.0.1:$nginx_port/" "bench.localhost"
if [ -s "$work/nginx-error.log" ]; then echo "nginx's error log ends:"; tail -3 "$work/nginx-error.log"; fi
# Last: turning the access log on is a settings change, which starts a new
# instance on another port (nginx above points at the old one).
"$work/slipway" config options -a bench --access-log >/dev/null
run "router + access log" "http://127.0.0.1:$router/" "bench.localhost"
