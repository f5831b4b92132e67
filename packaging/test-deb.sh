#!/usr/bin/env bash
# CI test of the Debian package, as a user meets it. Run by `make test-deb` after `make deb`, as
# root, on Debian 12 (amd64). Stages:
#  1. lintian (no errors; only the warnings justified in packaging/README.md) and the generated
#     maintainer scripts;
#  2. on this machine, which runs no systemd: install with apt; the files, user, conffiles and
#     units it leaves (`systemd-analyze verify`); the installed binary's `validate` and `check`
#     against `streampulse demo` cameras (RTSP and MJPEG on loopback); the services' commands
#     started directly as the `streampulse` user with the units' environment (not their sandbox);
#     an upgrade over a locally edited config; remove; purge;
#  3. a minimal Debian (debootstrap minbase, in a chroot): the package's Depends: pull in every
#     library and GStreamer plugin the probes load;
#  4. that Debian booted with systemd-nspawn: the units enabled and started by the postinst and
#     running in their sandbox, ExecStartPre stopping an invalid config, restart on upgrade,
#     stop on remove, data gone on purge.
#
# Environment: DEB_OUT (where `make deb` put the package, default target/debian); CARGO;
# TEST_DEB_MINIMAL=0 skips stages 3 and 4 (they download ~175 MB from the Debian archive);
# TEST_DEB_SYSTEMD=0 skips stage 4, =1 fails if the container cannot boot (default: skip with a
# message); DEBIAN_MIRROR.
# Leaves the machine as it found it: the package purged, demo servers and container stopped,
# temp files gone (the `streampulse` system user stays, as after any purge).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_OUT=${DEB_OUT:-target/debian}
CARGO=${CARGO:-cargo}
TEST_DEB_MINIMAL=${TEST_DEB_MINIMAL:-1}
TEST_DEB_SYSTEMD=${TEST_DEB_SYSTEMD:-auto}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export DEBIAN_FRONTEND=noninteractive

# Lintian warnings we accept; each is justified in packaging/README.md ("Lintian").
# (Tags that are overridden in packaging/lintian-overrides do not show up at all.)
ACCEPTED_LINTIAN_WARNINGS=(
    initial-upload-closes-no-bugs # the package is not uploaded to Debian: no ITP bug to close
    no-manual-page                # `streampulse help` / `--help` per command are the reference
)

WORK=$(mktemp -d /tmp/streampulse-test-deb.XXXXXX)
NETNS=
IN_NS=()
DEMO_PID=
SERVICE_PIDS=()
CHROOT=
NSPAWN_PID=
CT_INIT=

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '  ok: %s\n' "$*"; }
fail() {
    printf '  FAIL: %s\n' "$*" >&2
    exit 1
}
# expect DESCRIPTION COMMAND...: the command must succeed.
expect() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what  [$*]"; fi
}
stat_is() { [ "$(stat -c '%U:%G %a' "$1")" = "$2" ] || { echo "  $1 is $(stat -c '%U:%G %a' "$1"), want $2" >&2; return 1; }; }
installed() { dpkg-query -W -f='${Status}' streampulse 2>/dev/null | grep -q 'install ok installed'; }
port_open() { "${IN_NS[@]}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
free_port() {
    local port
    for port in $(seq 18000 18099); do
        port_open "$port" || { echo "$port"; return; }
    done
    fail "no free port in 18000-18099"
}
# stop_child PID: SIGTERM, SIGKILL after 10 s; returns the child's exit status.
stop_child() {
    local pid=$1 killer status=0
    kill -TERM "$pid" 2>/dev/null || true
    (sleep 10 && kill -KILL "$pid" 2>/dev/null) &
    killer=$!
    wait "$pid" || status=$?
    kill "$killer" 2>/dev/null || true
    wait "$killer" 2>/dev/null || true
    return "$status"
}

# in_ct COMMAND...: run in the booted container (its init is CT_INIT).
in_ct() {
    nsenter -t "$CT_INIT" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
}
wait_active() {
    for _ in $(seq 40); do
        in_ct systemctl -q is-active "$1" && return 0
        sleep 0.25
    done
    in_ct systemctl status "$1" --no-pager | tail -n 20
    return 1
}
stop_container() {
    [ -n "$NSPAWN_PID" ] || return 0
    [ -n "$CT_INIT" ] && { in_ct systemctl poweroff >/dev/null 2>&1 || true; }
    local killer
    (sleep 20 && kill -KILL "$NSPAWN_PID" 2>/dev/null) &
    killer=$!
    wait "$NSPAWN_PID" 2>/dev/null || true
    kill "$killer" 2>/dev/null || true
    wait "$killer" 2>/dev/null || true
    NSPAWN_PID=
    CT_INIT=
    return 0
}

cleanup() {
    local status=$?
    set +e
    for pid in "${SERVICE_PIDS[@]}"; do stop_child "$pid"; done
    [ -n "$DEMO_PID" ] && stop_child "$DEMO_PID"
    stop_container
    if [ -n "$CHROOT" ]; then
        umount "$CHROOT/proc" "$CHROOT/dev" 2>/dev/null || umount -l "$CHROOT/proc" "$CHROOT/dev" 2>/dev/null
    fi
    [ -n "$NETNS" ] && ip netns delete "$NETNS"
    if dpkg-query -W streampulse >/dev/null 2>&1; then
        dpkg --purge streampulse >/dev/null 2>&1
    fi
    # --one-file-system: never into a mount (the chroot's /dev is this machine's /dev).
    rm -rf --one-file-system "$WORK"
    if [ "$status" = 0 ]; then echo "test-deb: all checks passed"; else echo "test-deb: FAILED" >&2; fi
    exit "$status"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root: it installs and purges the package"
# Every server and probe of the test lives in a network namespace of its own, with its own
# loopback: the demo's fixed ports cannot clash with anything else running on this machine, and
# nothing of the test is reachable from outside. Package downloads use the normal network.
NETNS=streampulse-test-$$
ip netns add "$NETNS"
IN_NS=(ip netns exec "$NETNS")
"${IN_NS[@]}" ip link set lo up
# "${AS_SERVICE[@]}" COMMAND...: as the service user, with the environment and umask the systemd
# units give (not their sandbox: that needs a running systemd). Every step execs the next, so
# `$!` of a background start is the streampulse process itself.
AS_SERVICE=("${IN_NS[@]}" setpriv --reuid=streampulse --regid=streampulse --init-groups --
    env -i PATH=/usr/bin:/bin HOME=/var/lib/streampulse USER=streampulse LOGNAME=streampulse
    STREAMPULSE_CONFIG=/etc/streampulse/config.yaml
    /bin/sh -c 'umask 0027 && exec "$@"' sh)
ARCH=$(dpkg --print-architecture)

step "Packages"
PKG1=$(ls -t "$DEB_OUT"/streampulse_*_"$ARCH".deb 2>/dev/null | head -n1 || true)
[ -n "$PKG1" ] || fail "no $DEB_OUT/streampulse_*_$ARCH.deb: run \`make deb\` first"
# cargo-deb deletes every streampulse_*.deb in target/debian when it runs, so the upgrade build
# below would take the first package away: test a copy and put it back afterwards.
PKG1_BUILT=$(realpath "$PKG1")
cp "$PKG1" "$WORK/"
PKG1=$WORK/$(basename "$PKG1")
VERSION1=$(dpkg-deb -f "$PKG1" Version)
ok "first build: $PKG1 ($VERSION1, $(du -k "$PKG1" | cut -f1) KiB)"
# The upgrade: the same binary packaged again with a higher version, as a second release would be.
VERSION2="$VERSION1+upgradetest"
mkdir -p "$WORK/upgrade"
"$CARGO" deb --locked --no-build --deb-version "$VERSION2" --output "$WORK/upgrade/" >/dev/null
PKG2=$(ls "$WORK"/upgrade/streampulse_*.deb)
cp "$PKG1" "$PKG1_BUILT"
expect "second build $VERSION2 sorts after $VERSION1" dpkg --compare-versions "$VERSION2" gt "$VERSION1"
dpkg-deb -f "$PKG1" Depends | tr ',' '\n' | sed 's/^ */  depends: /'

step "Lintian"
lintian --version
lintian_out=$(lintian --fail-on none --display-level '>=pedantic' "$PKG1" 2>&1 || true)
printf '%s\n' "${lintian_out:-  (no tags)}"
if grep -q '^E: ' <<<"$lintian_out"; then fail "lintian reports errors"; fi
unexpected=$(grep '^W: ' <<<"$lintian_out" | awk '{print $3}' | sort -u |
    grep -vxF -f <(printf '%s\n' "${ACCEPTED_LINTIAN_WARNINGS[@]%% *}") || true)
[ -z "$unexpected" ] || fail "lintian warnings not justified in packaging/README.md: $unexpected"
ok "no lintian errors; warnings all justified"

step "Maintainer scripts (what systemd would do; no systemd runs here)"
dpkg-deb -e "$PKG1" "$WORK/control"
for unit in streampulse-monitor streampulse-web; do
    expect "postinst enables $unit" grep -q "deb-systemd-helper enable $unit.service" "$WORK/control/postinst"
    expect "postinst starts or restarts $unit" grep -qE "deb-systemd-invoke (\\\$_dh_action|restart|start) .*$unit.service" "$WORK/control/postinst"
    expect "prerm stops $unit on remove" grep -q "deb-systemd-invoke stop .*$unit.service" "$WORK/control/prerm"
    expect "postrm purges $unit's enablement" grep -q "deb-systemd-helper purge .*$unit.service" "$WORK/control/postrm"
done
expect "postinst creates the user before starting the services" \
    bash -c "grep -n -e 'adduser --system' -e 'deb-systemd-invoke' '$WORK/control/postinst' | head -n1 | grep -q adduser"

step "Install $PKG1 with apt"
if installed; then
    echo "  streampulse was already installed: purging it first"
    dpkg --purge streampulse
fi
start=$(date +%s%N)
apt-get install -y --no-install-recommends "$PKG1" </dev/null >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; fail "apt-get install"; }
echo "  installed in $(( ($(date +%s%N) - start) / 1000000 )) ms (dependencies already present)"
expect "package is installed" installed
expect "postinst tells how to create a web login" grep -q 'streampulse user add admin' "$WORK/install.log"

step "Files, user, conffiles, units"
expect "/usr/bin/streampulse runs" /usr/bin/streampulse --version
for template in pipelines/*.pipeline; do
    expect "template /usr/share/streampulse/$template" cmp -s "$template" "/usr/share/streampulse/$template"
done
web_files=$(find web -type f | wc -l)
installed_web=$(find /usr/share/streampulse/web -type f 2>/dev/null | wc -l)
expect "web assets: $web_files in web/, $installed_web installed" [ "$web_files" = "$installed_web" ]
expect "/usr/share/doc/streampulse/copyright" test -s /usr/share/doc/streampulse/copyright
expect "/usr/share/doc/streampulse/README.Debian" test -s /usr/share/doc/streampulse/README.Debian
expect "/etc/streampulse/config.yaml is the packaged one" cmp -s packaging/config.yaml /etc/streampulse/config.yaml
expect "/etc/default/streampulse is the packaged one" cmp -s packaging/default /etc/default/streampulse
conffiles=$(dpkg-query -W -f='${Conffiles}\n' streampulse)
expect "config.yaml is a conffile" grep -q ' /etc/streampulse/config.yaml ' <<<"$conffiles"
expect "/etc/default/streampulse is a conffile" grep -q ' /etc/default/streampulse ' <<<"$conffiles"
passwd_entry=$(getent passwd streampulse) || fail "no streampulse user"
IFS=: read -r _ _ sp_uid _ _ sp_home sp_shell <<<"$passwd_entry"
expect "streampulse is a system user (uid $sp_uid)" [ "$sp_uid" -lt 1000 ]
expect "its home is /var/lib/streampulse" [ "$sp_home" = /var/lib/streampulse ]
expect "it cannot log in ($sp_shell)" [ "$sp_shell" = /usr/sbin/nologin ]
expect "streampulse group" bash -c 'getent group streampulse >/dev/null'
expect "/etc/streampulse streampulse:streampulse 750" stat_is /etc/streampulse "streampulse:streampulse 750"
expect "config.yaml streampulse:streampulse 640" stat_is /etc/streampulse/config.yaml "streampulse:streampulse 640"
expect "/etc/streampulse/pipelines root:streampulse 755" stat_is /etc/streampulse/pipelines "root:streampulse 755"
expect "/var/lib/streampulse streampulse:streampulse 750" stat_is /var/lib/streampulse "streampulse:streampulse 750"
for unit in streampulse-monitor streampulse-web; do
    file=/usr/lib/systemd/system/$unit.service
    expect "$file" cmp -s "packaging/$unit.service" "$file"
    expect "$unit enabled (multi-user.target.wants)" test -L "/etc/systemd/system/multi-user.target.wants/$unit.service"
    for setting in 'ExecStartPre=/usr/bin/streampulse validate' 'Restart=on-failure' 'ProtectSystem=strict' \
        'ProtectHome=true' 'PrivateTmp=true' 'NoNewPrivileges=true' 'StateDirectory=streampulse'; do
        expect "$unit: $setting" grep -qx "$setting" "$file"
    done
done
expect "monitor writes only /var/lib/streampulse" \
    grep -qx 'ReadWritePaths=/var/lib/streampulse' /usr/lib/systemd/system/streampulse-monitor.service
expect "web writes /var/lib/streampulse and /etc/streampulse" \
    grep -qx 'ReadWritePaths=/var/lib/streampulse /etc/streampulse' /usr/lib/systemd/system/streampulse-web.service
if command -v systemd-analyze >/dev/null; then
    # Offline check of syntax, settings and that ExecStart's binary exists; no running systemd needed.
    verify_out=$(systemd-analyze verify /usr/lib/systemd/system/streampulse-monitor.service \
        /usr/lib/systemd/system/streampulse-web.service 2>&1) ||
        { printf '%s\n' "$verify_out"; fail "systemd-analyze verify"; }
    # Lines about other units (the host's own) are not ours to fix.
    ours=$(grep -i 'streampulse' <<<"$verify_out" || true)
    [ -z "$ours" ] || { printf '%s\n' "$ours"; fail "systemd-analyze verify reports problems in our units"; }
    ok "systemd-analyze verify: both units"
    # systemd's own score of the sandbox: 0 (locked down) to 10 (none). Both units scored <= 1.8
    # when written; more than 2.5 means a hardening setting was lost.
    for unit in streampulse-monitor streampulse-web; do
        exposure=$(systemd-analyze security --offline=true "/usr/lib/systemd/system/$unit.service" 2>/dev/null |
            sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        expect "$unit: systemd-analyze security exposure ${exposure:-?} <= 2.5" \
            awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.5) }'
    done
else
    echo "  skipped: systemd-analyze verify (systemd is not installed here)"
fi

step "Installed binary: validate, check against demo cameras"
expect "validate the packaged config as root" streampulse validate --config /etc/streampulse/config.yaml
expect "validate it as the service user, as ExecStartPre does" "${AS_SERVICE[@]}" /usr/bin/streampulse validate
for port in 8554 8081; do
    port_open "$port" && fail "port $port is taken in the test's own network namespace?"
done
# The demo's own web server takes any free port: 8000 belongs to the packaged web service.
mkdir -p "$WORK/demo"
"${IN_NS[@]}" /usr/bin/streampulse demo --dir "$WORK/demo" --listen 127.0.0.1:0 >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
for _ in $(seq 100); do
    port_open 8554 && port_open 8081 && break
    kill -0 "$DEMO_PID" 2>/dev/null || { cat "$WORK/demo.log"; fail "streampulse demo exited"; }
    sleep 0.2
done
expect "check rtsp://127.0.0.1:8554/test (rtspsrc, decodebin, avdec_h264)" \
    "${IN_NS[@]}" streampulse check --timeout-ms 10000 rtsp://127.0.0.1:8554/test
expect "check http://127.0.0.1:8081/ (souphttpsrc, multipartdemux, jpegparse, jpegdec)" \
    "${IN_NS[@]}" streampulse check --timeout-ms 10000 http://127.0.0.1:8081/
if "${IN_NS[@]}" streampulse check --timeout-ms 3000 rtsp://127.0.0.1:8555/silent >/dev/null; then
    fail "check of the silent camera says up"
else
    ok "check of the silent camera says down (exit 1)"
fi

step "The local edit a user makes: a camera, another web port"
WEB_PORT=$(free_port)
sed -i \
    -e "s|^streams: \[\]|# edited by test-deb\nstreams:\n  - name: Demo RTSP\n    url: rtsp://127.0.0.1:8554/test|" \
    -e "s|^  listen: 127.0.0.1:8000|  listen: 127.0.0.1:$WEB_PORT|" \
    -e "s|^heartbeat_seconds: 15|heartbeat_seconds: 2|" \
    -e "s|^probe_timeout_seconds: 10|probe_timeout_seconds: 1.5|" \
    -e "s|^ntp_server: pool.ntp.org|ntp_server: 127.0.0.1:1123|" \
    /etc/streampulse/config.yaml
cp -p /etc/streampulse/config.yaml "$WORK/config.edited"
expect "edited config validates" "${AS_SERVICE[@]}" /usr/bin/streampulse validate

step "Services started directly (no systemd here): monitor and web as the streampulse user"
"${AS_SERVICE[@]}" /usr/bin/streampulse monitor >"$WORK/monitor.log" 2>&1 &
MONITOR_PID=$!
SERVICE_PIDS+=("$MONITOR_PID")
up=
for _ in $(seq 30); do
    sleep 1
    kill -0 "$MONITOR_PID" 2>/dev/null || { cat "$WORK/monitor.log"; fail "monitor exited"; }
    # up, or degraded (a frame arrived, e.g. a picture that did not change): video flows.
    if streampulse status --config /etc/streampulse/config.yaml --json 2>/dev/null | grep -qE '"state": *"(up|degraded)"'; then
        up=yes
        break
    fi
done
[ -n "$up" ] || { cat "$WORK/monitor.log"; streampulse status --config /etc/streampulse/config.yaml || true; fail "monitor never recorded the camera as up"; }
ok "monitor recorded frames from Demo RTSP in /var/lib/streampulse/streams.db"
streampulse status --config /etc/streampulse/config.yaml | sed 's/^/  /'
expect "database owned by streampulse" stat_is /var/lib/streampulse/streams.db "streampulse:streampulse 640"
if /usr/bin/streampulse help 2>/dev/null | grep -qE '^ +web '; then
    "${AS_SERVICE[@]}" /usr/bin/streampulse web >"$WORK/web.log" 2>&1 &
    WEB_PID=$!
    SERVICE_PIDS+=("$WEB_PID")
    code=
    for _ in $(seq 50); do
        sleep 0.2
        kill -0 "$WEB_PID" 2>/dev/null || { cat "$WORK/web.log"; fail "web exited"; }
        code=$("${IN_NS[@]}" curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEB_PORT/" || true)
        [ "$code" != 000 ] && break
    done
    expect "web answers on 127.0.0.1:$WEB_PORT (HTTP $code)" test "${code:-000}" != 000 -a "${code:-000}" -lt 500
    web_status=0
    stop_child "$WEB_PID" || web_status=$?
    expect "web exits 0 on SIGTERM (got $web_status)" [ "$web_status" = 0 ]
    SERVICE_PIDS=("$MONITOR_PID")
else
    echo "  skipped: this build has no \`streampulse web\` subcommand yet"
fi
monitor_status=0
stop_child "$MONITOR_PID" || monitor_status=$?
expect "monitor exits 0 on SIGTERM (got $monitor_status)" [ "$monitor_status" = 0 ]
SERVICE_PIDS=()

with_users=
if /usr/bin/streampulse help 2>/dev/null | grep -qE '^ +user '; then
    with_users=yes
    # The password from a pipe, as a script would do it; as the service user, as the hint says.
    printf 'test-deb password\n' | "${AS_SERVICE[@]}" /usr/bin/streampulse user add admin 2>/dev/null ||
        fail "streampulse user add admin (as the service user)"
    users=$("${AS_SERVICE[@]}" /usr/bin/streampulse user list)
    # `user list` prints one "NAME<TAB>ROLE" line per user; the first user is an admin.
    expect "web login admin exists" grep -qP '^admin\tadmin$' <<<"$users"
else
    echo "  skipped: this build has no \`streampulse user\` subcommand yet"
fi

step "Upgrade to $VERSION2 over the edited config"
apt-get install -y --no-install-recommends "$PKG2" </dev/null >"$WORK/upgrade.log" 2>&1 ||
    { cat "$WORK/upgrade.log"; fail "apt-get install (upgrade); a conffile prompt would fail here too"; }
if [ -n "$with_users" ]; then
    expect "no login hint once a login exists" bash -c "! grep -q 'user add admin' '$WORK/upgrade.log'"
fi
expect "version is now $VERSION2" [ "$(dpkg-query -W -f='${Version}' streampulse)" = "$VERSION2" ]
expect "the edited config.yaml is kept" cmp -s "$WORK/config.edited" /etc/streampulse/config.yaml
expect "no .dpkg-dist/.dpkg-new left" bash -c '! ls /etc/streampulse/config.yaml.dpkg-* 2>/dev/null'
expect "config.yaml still streampulse:streampulse 640" stat_is /etc/streampulse/config.yaml "streampulse:streampulse 640"
expect "database kept" test -s /var/lib/streampulse/streams.db
expect "same streampulse uid" [ "$(id -u streampulse)" = "$sp_uid" ]
expect "monitor still enabled" test -L /etc/systemd/system/multi-user.target.wants/streampulse-monitor.service
expect "data still readable after upgrade" bash -c 'streampulse status --config /etc/streampulse/config.yaml | grep -q "Demo RTSP"'

step "Remove: program gone, config and data kept"
apt-get remove -y streampulse </dev/null >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; fail "apt-get remove"; }
expect "/usr/bin/streampulse gone" test ! -e /usr/bin/streampulse
expect "unit files gone" test ! -e /usr/lib/systemd/system/streampulse-monitor.service
expect "config.yaml kept (with the edit)" cmp -s "$WORK/config.edited" /etc/streampulse/config.yaml
expect "database kept" test -s /var/lib/streampulse/streams.db
expect "dpkg state is config-files" bash -c "dpkg-query -W -f='\${Status}' streampulse | grep -q config-files"

step "Purge: config and data gone"
dpkg --purge streampulse >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "dpkg --purge"; }
expect "/etc/streampulse gone" test ! -e /etc/streampulse
expect "/etc/default/streampulse gone" test ! -e /etc/default/streampulse
expect "/var/lib/streampulse gone" test ! -e /var/lib/streampulse
expect "units no longer enabled" bash -c '! ls /etc/systemd/system/multi-user.target.wants/streampulse-* 2>/dev/null'
expect "package unknown to dpkg" bash -c '! dpkg-query -W -f="\${Status}" streampulse 2>/dev/null | grep -q "installed"'

if [ "$TEST_DEB_MINIMAL" != 1 ]; then
    echo "  skipped: minimal Debian and systemd stages (TEST_DEB_MINIMAL=0)"
    exit 0
fi

step "Minimal Debian (debootstrap minbase): Depends: pull in everything the probes load"
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap </dev/null >/dev/null
CHROOT=$WORK/minimal
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
start=$(date +%s)
debootstrap --variant=minbase "$codename" "$CHROOT" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap.log"; fail "debootstrap"; }
mount -t proc proc "$CHROOT/proc"
mount --bind /dev "$CHROOT/dev"
# /root, not /tmp: a booted container mounts a fresh /tmp.
cp "$PKG1" "$PKG2" "$CHROOT/root/"
chroot "$CHROOT" apt-get update -qq >/dev/null
start_install=$(date +%s)
chroot "$CHROOT" apt-get install -y --no-install-recommends "/root/$(basename "$PKG1")" </dev/null \
    >"$WORK/minimal-install.log" 2>&1 || { tail -n 40 "$WORK/minimal-install.log"; fail "apt-get install in minbase"; }
echo "  minbase $((start_install - start)) s; install with dependencies $(($(date +%s) - start_install)) s;" \
    "$(grep -oE '[0-9]+ newly installed' "$WORK/minimal-install.log")," \
    "$(grep -oE 'After this operation, .* disk space will be used' "$WORK/minimal-install.log")"
# In the test's network namespace, where the demo cameras are.
expect "minimal: validate" chroot "$CHROOT" streampulse validate --config /etc/streampulse/config.yaml
expect "minimal: check RTSP" "${IN_NS[@]}" chroot "$CHROOT" streampulse check --timeout-ms 10000 rtsp://127.0.0.1:8554/test
expect "minimal: check MJPEG" "${IN_NS[@]}" chroot "$CHROOT" streampulse check --timeout-ms 10000 http://127.0.0.1:8081/
expect "minimal: purge" bash -c "chroot '$CHROOT' dpkg --purge streampulse >/dev/null"
umount "$CHROOT/proc" "$CHROOT/dev"

if [ "$TEST_DEB_SYSTEMD" = 0 ]; then
    echo "  skipped: systemd stage (TEST_DEB_SYSTEMD=0)"
    exit 0
fi
step "Real systemd: the same Debian booted with systemd-nspawn, the units run sandboxed"
command -v systemd-nspawn >/dev/null ||
    apt-get install -y -qq --no-install-recommends systemd-container </dev/null >/dev/null
chroot "$CHROOT" apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus </dev/null \
    >"$WORK/minimal-systemd.log" 2>&1 || { tail -n 20 "$WORK/minimal-systemd.log"; fail "systemd in the container"; }
# The test's network namespace (the demo cameras); no registration with a host systemd (there is
# none). The packages the container needs were installed in the minimal stage.
systemd-nspawn -q -D "$CHROOT" -b --register=no --keep-unit --console=passive \
    --network-namespace-path="/run/netns/$NETNS" >"$WORK/nspawn.log" 2>&1 &
NSPAWN_PID=$!
state=
for _ in $(seq 60); do
    sleep 0.5
    CT_INIT=$(ps -o pid= --ppid "$NSPAWN_PID" | head -n1 | tr -d ' ')
    [ -n "$CT_INIT" ] && state=$(in_ct systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
done
case $state in
running | degraded) ok "container booted ($state)" ;;
*)
    cat "$WORK/nspawn.log"
    if [ "$TEST_DEB_SYSTEMD" = 1 ]; then fail "the container did not boot"; fi
    echo "  SKIPPED: systemd-nspawn cannot boot a container on this machine (state '$state');" \
        "set TEST_DEB_SYSTEMD=1 to make that an error"
    exit 0
    ;;
esac
in_ct apt-get install -y --no-install-recommends "/root/$(basename "$PKG1")" </dev/null >"$WORK/ct-install.log" 2>&1 ||
    { cat "$WORK/ct-install.log"; fail "install under systemd"; }
for unit in streampulse-monitor streampulse-web; do
    expect "$unit enabled" in_ct systemctl -q is-enabled "$unit"
done
expect "postinst started the monitor" wait_active streampulse-monitor
with_web=
if in_ct streampulse help 2>/dev/null | grep -qE '^ +web '; then
    with_web=yes
    expect "postinst started the web dashboard" wait_active streampulse-web
fi
CT_CONFIG=$CHROOT/etc/streampulse/config.yaml
# cat, not cp -p: keep the container's owner (its streampulse uid may differ from this machine's).
cat "$WORK/config.edited" >"$CT_CONFIG"
in_ct systemctl restart streampulse-monitor
up=
for _ in $(seq 30); do
    sleep 1
    if in_ct streampulse status --config /etc/streampulse/config.yaml --json 2>/dev/null | grep -qE '"state": *"(up|degraded)"'; then
        up=yes
        break
    fi
done
[ -n "$up" ] || { in_ct journalctl -u streampulse-monitor --no-pager | tail -n 30; fail "sandboxed monitor never got a frame"; }
ok "sandboxed monitor probes the demo camera and writes its database"
in_ct streampulse status --config /etc/streampulse/config.yaml | sed 's/^/  /'
# Type=notify: systemd saw READY (the unit is active) and the watchdog pings (every 10 s).
expect "the monitor unit is Type=notify with a watchdog" \
    bash -c "[ \"\$(nsenter -t $CT_INIT -a systemctl show -p Type -p WatchdogUSec streampulse-monitor | sort | tr '\n' ' ')\" = 'Type=notify WatchdogUSec=1min ' ]"
pinged=
for _ in $(seq 30); do
    stamp=$(in_ct systemctl show -p WatchdogTimestampMonotonic --value streampulse-monitor)
    [ -n "$stamp" ] && [ "$stamp" != 0 ] && { pinged=1; break; }
    sleep 1
done
expect "the monitor pings the systemd watchdog" test -n "$pinged"
if [ -n "$with_web" ]; then
    in_ct systemctl restart streampulse-web
    code=000
    for _ in $(seq 50); do
        sleep 0.2
        code=$("${IN_NS[@]}" curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEB_PORT/" || true)
        [ "$code" != 000 ] && break
    done
    expect "sandboxed web answers on 127.0.0.1:$WEB_PORT (HTTP $code)" test "$code" != 000 -a "$code" -lt 500
    # The dashboard edits the config (ReadWritePaths=/etc/streampulse): log in, add a stream.
    printf 'test-deb password\n' | in_ct setpriv --reuid=streampulse --regid=streampulse --init-groups -- \
        env HOME=/var/lib/streampulse STREAMPULSE_CONFIG=/etc/streampulse/config.yaml \
        streampulse user add admin 2>/dev/null || fail "user add in the container"
    base=http://127.0.0.1:$WEB_PORT
    web() { "${IN_NS[@]}" curl -s -c "$WORK/cookies" -b "$WORK/cookies" "$@"; }
    csrf_of() { sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n1; }
    csrf=$(web "$base/login" | csrf_of)
    code=$(web -o /dev/null -w '%{http_code}' --data-urlencode "csrf=$csrf" --data-urlencode user=admin \
        --data-urlencode 'password=test-deb password' --data-urlencode next=/ "$base/login")
    expect "log in to the sandboxed dashboard (HTTP $code)" test "$code" = 303
    csrf=$(web "$base/config" | csrf_of)
    code=$(web -o /dev/null -w '%{http_code}' --data-urlencode "csrf=$csrf" --data-urlencode reveal=0 \
        --data-urlencode 'name=Added on the dashboard' --data-urlencode url=http://127.0.0.1:8081/ \
        --data-urlencode pipeline= "$base/config/streams/add")
    expect "add a stream on the dashboard (HTTP $code)" test "$code" -lt 400
    expect "the sandboxed web wrote /etc/streampulse/config.yaml" grep -q 'Added on the dashboard' "$CT_CONFIG"
    expect "and kept the previous version as config.yaml.bak" cmp -s "$WORK/config.edited" "$CT_CONFIG.bak"
    expect "config.yaml still streampulse:streampulse 640" \
        bash -c "[ \"\$(nsenter -t $CT_INIT -a stat -c '%U:%G %a' /etc/streampulse/config.yaml)\" = 'streampulse:streampulse 640' ]"
    # Back to the edited config, so the upgrade below checks that edit.
    cat "$WORK/config.edited" >"$CT_CONFIG"
else
    echo "  skipped: this build has no \`streampulse web\` subcommand yet"
fi
sed -i 's/^heartbeat_seconds: .*/heartbeat_seconds: -1/' "$CT_CONFIG"
in_ct systemctl restart streampulse-monitor 2>/dev/null || true
sleep 1
expect "an invalid config keeps the monitor from starting (ExecStartPre)" \
    bash -c "! nsenter -t $CT_INIT -a systemctl -q is-active streampulse-monitor"
expect "the journal says why" bash -c \
    "nsenter -t $CT_INIT -a journalctl -u streampulse-monitor --no-pager | grep -q heartbeat_seconds"
cat "$WORK/config.edited" >"$CT_CONFIG"
in_ct systemctl restart streampulse-monitor
expect "fixed config: monitor runs again" wait_active streampulse-monitor
pid_before=$(in_ct systemctl show -p MainPID --value streampulse-monitor)
in_ct apt-get install -y --no-install-recommends "/root/$(basename "$PKG2")" </dev/null >"$WORK/ct-upgrade.log" 2>&1 ||
    { cat "$WORK/ct-upgrade.log"; fail "upgrade under systemd"; }
expect "upgrade restarted the monitor" wait_active streampulse-monitor
pid_after=$(in_ct systemctl show -p MainPID --value streampulse-monitor)
expect "monitor has a new process after the upgrade ($pid_before -> $pid_after)" test "$pid_before" != "$pid_after"
expect "upgrade kept the edited config" cmp -s "$WORK/config.edited" "$CT_CONFIG"
in_ct apt-get remove -y streampulse </dev/null >"$WORK/ct-remove.log" 2>&1 || { cat "$WORK/ct-remove.log"; fail "remove under systemd"; }
expect "remove stopped the monitor" bash -c "! nsenter -t $CT_INIT -a systemctl -q is-active streampulse-monitor"
expect "no streampulse process left" bash -c "! nsenter -t $CT_INIT -a pgrep -x streampulse"
expect "remove kept the data" test -s "$CHROOT/var/lib/streampulse/streams.db"
in_ct dpkg --purge streampulse >/dev/null
expect "purge removed the data" test ! -e "$CHROOT/var/lib/streampulse"
stop_container
exit 0
