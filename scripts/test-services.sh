#!/usr/bin/env bash
# Installs and starts what the tests need, only where it is missing. Idempotent.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

"$(dirname "$0")/report-packages.sh"  # fonts-noto-cjk and what WeasyPrint needs

# PostgreSQL on 127.0.0.1:5432 with trust for local connections (tests create their own databases).
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "opsdesk-tests" "$hba"; then
    { echo "# opsdesk-tests: trust on loopback"; echo "host all all 127.0.0.1/32 trust"; echo "host all all ::1/128 trust"; cat "$hba"; } > "$hba.new"
    mv "$hba.new" "$hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

# nginx for the check-type tests: tests/nginx_fixture.py starts its own instance on free loopback ports.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "installing Debian packages: nginx"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nginx
fi

# Middleware and database monitors (tests/middleware_fixtures.py): the tests start their own php-fpm,
# tomcat, nginx and redis instances on free loopback ports; they use the running MariaDB and Redis.
mw=()
ls /usr/sbin/php-fpm* >/dev/null 2>&1 || mw+=(php-fpm)
[ -x /usr/share/tomcat10/bin/catalina.sh ] || mw+=(tomcat10)
[ -d /usr/share/tomcat10-admin/manager ] || mw+=(tomcat10-admin)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || mw+=(mariadb-server)
command -v redis-server >/dev/null || mw+=(redis-server)
if [ ${#mw[@]} -gt 0 ]; then
  echo "installing Debian packages: ${mw[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${mw[@]}"
fi
# MariaDB on 127.0.0.1:3306, root without password over TCP from loopback (the tests create their own user).
if ! mysqladmin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld
  (setsid $SUDO mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &)
  for _ in $(seq 60); do mysqladmin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
fi
mysqladmin --protocol=tcp -h 127.0.0.1 -u root ping
# Redis on 127.0.0.1:6379.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  (setsid $SUDO redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null 2>&1 &)
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping
