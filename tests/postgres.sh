#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (the image's version, or Debian's if missing) in a temporary folder, listening
# on 127.0.0.1 only. Sourced by test.sh: exports GATEHOUSE_TEST_POSTGRES (admin connection string),
# GATEHOUSE_TEST_POSTGRES_RESTART (a command that restarts it, for the failover test) and stop_postgres.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

pg_root=$(mktemp -d /tmp/gatehouse-pg.XXXXXX)
# PostgreSQL refuses to run as root: the cluster belongs to the postgres account when we are root.
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$pg_root"
  as_pg=(runuser -u postgres --)
else
  as_pg=()
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_root/data" -A trust -U postgres >/dev/null
# A port below the kernel's ephemeral range (32768 and up), so no outgoing connection can be holding it;
# the next ones are tried if another server has it.
started=""
for pg_port in ${GATEHOUSE_TEST_POSTGRES_PORT:-15432 15433 15434 15435 15436}; do
  pg_options="-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_root -c fsync=on"
  if "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_root/data" -l "$pg_root/log" -o "$pg_options" -w start >/dev/null 2>&1; then
    started=yes
    break
  fi
done
if [ -z "$started" ]; then
  echo "PostgreSQL did not start:" >&2
  cat "$pg_root/log" >&2
  exit 1
fi

export GATEHOUSE_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres;Timeout=5;Command Timeout=10"
export GATEHOUSE_TEST_POSTGRES_RESTART="${as_pg[*]} $pg_bin/pg_ctl -D $pg_root/data -l $pg_root/log -o '$pg_options' -m fast -w restart"

stop_postgres() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_root/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_root"
}
