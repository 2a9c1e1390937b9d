#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests: initdb into a temporary folder, a free port on
# loopback, trust authentication for local connections only. Installs Debian's postgresql when
# absent. Usage:
#   scripts/pg-cluster.sh start DIR [--ssl]   → prints the database URL on stdout
#   scripts/pg-cluster.sh stop DIR
# --ssl: TLS on as well (plain connections stay allowed), with a throw-away CA made by openssl:
# DIR/ca.crt signs the server's certificate for 127.0.0.1 and localhost, so clients can try
# sslmode=require and sslmode=verify-full&sslrootcert=DIR/ca.crt.
set -euo pipefail
action=${1:?start|stop}
dir=${2:?folder for the cluster}
ssl=${3:-}
case "$ssl" in "" | --ssl) ;; *) echo "usage: $0 start DIR [--ssl]" >&2; exit 2 ;; esac

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] && echo "$bin"
}

# PostgreSQL refuses to run as root: run its programs as the postgres account when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    if [ -z "$(pg_bin)" ]; then
      echo "setup: installing Debian's postgresql" >&2
      if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
      "${sudo_cmd[@]}" apt-get update -qq >&2
      "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
    fi
    bin=$(pg_bin)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      # The postgres account must reach the folder (mktemp makes its parent private).
      chmod 0755 "$(dirname "$dir")"
      chown postgres: "$dir"
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    ssl_options=""
    if [ "$ssl" = --ssl ]; then
      # A CA that lives as long as the cluster, and the server's certificate signed by it.
      tls=$(mktemp -d)
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=uketsuke test PostgreSQL CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/ext"
      openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 2 -extfile "$tls/ext" -out "$tls/server.crt" 2>/dev/null
      install -m 0644 "$tls/ca.crt" "$dir/ca.crt"
      install -m 0644 "$tls/server.crt" "$dir/data/server.crt"
      install -m 0600 "$tls/server.key" "$dir/data/server.key"
      if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/data/server.crt" "$dir/data/server.key"; fi
      rm -rf "$tls"
      ssl_options="-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
    fi
    # fsync off: a test cluster trades durability for speed; it lives for one run.
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-h 127.0.0.1 -p $port -k $dir -F -c max_connections=200 $ssl_options" start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(pg_bin)
    [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start DIR [--ssl] | stop DIR" >&2; exit 2 ;;
esac
