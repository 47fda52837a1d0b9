#!/usr/bin/env bash
# Test services on 127.0.0.1, for scripts/test. Sourced, not run: it exports the
# variables the tests read and registers what it started for stop_services.
#
#   ensure_postgres   the machine's PostgreSQL at 127.0.0.1:5432 if it answers, else a
#                     throwaway cluster on port 55432 (Debian's postgresql package,
#                     installed if missing). Exports FRONTDESK_TEST_POSTGRES_URL.
#   ensure_browser    chromium, chromedriver and a CJK font for the browser tests.
#   stop_services     stops whatever ensure_* started (never the machine's own server).

SVC_DIR=${SVC_DIR:-/tmp/frontdesk-test-services}
STARTED=()

log() { printf 'scripts/test: %s\n' "$*" >&2; }

# Installs Debian packages that are missing (as root; says what to do otherwise).
need_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})"
    return 1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

wait_port() {
  for _ in $(seq 1 200); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  log "port $1 never opened"
  return 1
}

# Debian's chromium and chromedriver for the browser tests, and a font with Chinese
# characters so their screenshots can be read.
ensure_browser() {
  need_packages chromium chromium-driver fonts-wqy-zenhei
}

pg_answers() { psql "$1" -qAtc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if [ -n "${FRONTDESK_TEST_POSTGRES_URL:-}" ]; then
    need_packages postgresql-client
    pg_answers "$FRONTDESK_TEST_POSTGRES_URL" && return 0
    log "FRONTDESK_TEST_POSTGRES_URL is set but PostgreSQL does not answer there"
    return 1
  fi
  need_packages postgresql-client
  local machine=postgres://postgres@127.0.0.1:5432/test
  if pg_answers "$machine"; then
    export FRONTDESK_TEST_POSTGRES_URL=$machine
    log "using the PostgreSQL at 127.0.0.1:5432"
    return 0
  fi
  log "no PostgreSQL at 127.0.0.1:5432; starting a throwaway cluster on 55432"
  need_packages postgresql
  local bin data=$SVC_DIR/pg
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  rm -rf "$data"
  mkdir -p "$data"
  chmod 755 "$SVC_DIR"
  chown postgres:postgres "$data"
  runuser -u postgres -- "$bin/initdb" -N -D "$data/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$SVC_DIR/initdb.log"
  runuser -u postgres -- "$bin/pg_ctl" -D "$data/data" -l "$data/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p 55432 -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
  wait_port 55432
  psql -h 127.0.0.1 -p 55432 -U postgres -qc "create database test"
  export FRONTDESK_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:55432/test
  STARTED+=("runuser -u postgres -- $bin/pg_ctl -D $data/data -m fast -w stop")
}

stop_services() {
  local cmd
  for cmd in "${STARTED[@]}"; do
    eval "$cmd" >/dev/null 2>&1 || true
  done
}
