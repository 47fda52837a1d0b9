#!/usr/bin/env bash
# Test services on 127.0.0.1, for scripts/test. Sourced, not run: it exports the
# variables the tests read and registers what it started for stop_services.
#
#   ensure_postgres   the machine's PostgreSQL at 127.0.0.1:5432 if it answers, else a
#                     throwaway cluster on port 55432 (Debian's postgresql package,
#                     installed if missing). Exports FRONTDESK_TEST_POSTGRES_URL.
#   ensure_browser    chromium, chromedriver and a CJK font for the browser tests.
#   ensure_mail       Dovecot (IMAP 10143 with STARTTLS, IMAPS 10993, LMTP) and Postfix
#                     (SMTP 10025, submission 10587 with STARTTLS + AUTH) on 127.0.0.1,
#                     for any address @example.test (password "password"; each test
#                     makes its own mailboxes). Exports FRONTDESK_TEST_MAIL_* variables.
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

# Mail servers for the email channel's tests: Debian's Dovecot and Postfix, started
# in their own folder on loopback ports, stopped by stop_services.
ensure_mail() {
  need_packages dovecot-imapd dovecot-lmtpd postfix openssl
  local d=$SVC_DIR/mail imap=10143 imaps=10993 lmtp=10024 auth=10026 smtp=10025 subm=10587
  # A previous run's servers, if any, go first.
  [ -f "$d/postfix/spool/pid/master.pid" ] && postfix -c "$d/postfix/conf" stop >/dev/null 2>&1 || true
  [ -f "$d/dovecot/run/master.pid" ] && doveadm -c "$d/dovecot/dovecot.conf" stop >/dev/null 2>&1 || true
  rm -rf "$d"
  mkdir -p "$d"/{dovecot/run,dovecot/state,mail,ssl,log,postfix/conf,postfix/spool,postfix/data}
  # The dovecot and postfix users must be able to walk to $d.
  chmod 755 "$SVC_DIR" "$d"
  # A test CA and a server certificate it signs (rustls refuses a CA certificate used
  # as the server's own).
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Frontdesk test CA" \
    -keyout "$d/ssl/ca-key.pem" -out "$d/ssl/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout "$d/ssl/key.pem" -out "$d/ssl/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ssl/ext.cnf"
  openssl x509 -req -in "$d/ssl/server.csr" -CA "$d/ssl/ca.pem" -CAkey "$d/ssl/ca-key.pem" \
    -CAcreateserial -days 3650 -extfile "$d/ssl/ext.cnf" -out "$d/ssl/cert.pem" 2>/dev/null
  chmod 600 "$d/ssl/key.pem" "$d/ssl/ca-key.pem"
  chown 65534:65534 "$d/mail"
  cat >"$d/dovecot/dovecot.conf" <<EOF
base_dir = $d/dovecot/run
state_dir = $d/dovecot/state
log_path = $d/log/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$d/ssl/cert.pem
ssl_key = <$d/ssl/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}
# Any address at example.test, one password: tests make their own mailboxes.
passdb {
  driver = static
  args = password=password
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=$d/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
}
service auth {
  inet_listener auth-smtp {
    address = 127.0.0.1
    port = $auth
  }
}
EOF
  dovecot -c "$d/dovecot/dovecot.conf" </dev/null >/dev/null 2>&1
  STARTED+=("doveadm -c $d/dovecot/dovecot.conf stop")
  chown postfix:postfix "$d/postfix/data"
  cat >"$d/postfix/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/postfix/spool
data_directory = $d/postfix/data
maillog_file = $d/log/postfix.log
maillog_file_prefixes = $d/log
myhostname = mail.example.test
mydomain = example.test
myorigin = example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:127.0.0.1:$lmtp
default_transport = error:external delivery disabled in tests
relay_transport = error:external delivery disabled in tests
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
message_size_limit = 52428800
biff = no
smtpd_tls_cert_file = $d/ssl/cert.pem
smtpd_tls_key_file = $d/ssl/key.pem
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:$auth
EOF
  cat >"$d/postfix/conf/master.cf" <<EOF
127.0.0.1:$smtp inet n - n - - smtpd
127.0.0.1:$subm inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
EOF
  postfix -c "$d/postfix/conf" start >/dev/null 2>&1
  STARTED+=("postfix -c $d/postfix/conf stop")
  local port
  for port in $imap $imaps $lmtp $smtp $subm; do wait_port "$port"; done
  export FRONTDESK_TEST_MAIL_IMAP=imap://127.0.0.1:$imap
  export FRONTDESK_TEST_MAIL_IMAPS=imaps://127.0.0.1:$imaps
  export FRONTDESK_TEST_MAIL_SMTP=smtp://127.0.0.1:$smtp
  export FRONTDESK_TEST_MAIL_SUBMISSION=smtp://127.0.0.1:$subm
  export FRONTDESK_TEST_MAIL_CA=$d/ssl/ca.pem
  # Mailboxes are Maildirs under $d/mail/example.test/<name>/Maildir.
  export FRONTDESK_TEST_MAIL_DIR=$d/mail
  log "mail servers up (IMAP $imap, IMAPS $imaps, SMTP $smtp, submission $subm)"
}

stop_services() {
  local cmd
  for cmd in "${STARTED[@]}"; do
    eval "$cmd" >/dev/null 2>&1 || true
  done
}
