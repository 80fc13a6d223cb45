#!/usr/bin/env bash
# chan_moq test harness: a real Asterisk 22 (Debian sid) in a chroot, run in
# private namespaces, for loading and driving chan_moq.so. Root only; needs
# nothing but Debian's package mirror.
#
#   asterisk.sh build                  host packages (mmdebstrap, iproute2) if missing;
#                                      sid chroot with asterisk into $ROOT (reused once complete);
#                                      asterisk-dev headers from the same apt run into $DEV
#   asterisk.sh conf [FILE|DIR]        minimal fast-booting config in $ROOT/opt/$INSTANCE
#                                      (autoload=no, explicit module list incl. chan_moq.so).
#                                      Dialplan: context [moq-test] gets its body from $MOQ_DIALPLAN
#                                      (else a default, below). FILE: appended verbatim to
#                                      extensions.conf (may hold any contexts). DIR: each *.conf in
#                                      it is copied over the defaults (extensions.conf, chan_moq.conf, ...).
#   asterisk.sh install-module SO      install -m644 SO as chan_moq.so (a new inode: never cp over a loaded .so)
#   asterisk.sh start                  create network namespace $NETNS (only lo, up), run Asterisk in it
#                                      (plus private mount+pid namespaces, private /proc), wait for
#                                      'core waitfullybooted' (bounded), print "pid=<host pid>"
#   asterisk.sh cli 'COMMAND'          asterisk -rx 'COMMAND' (works from the host: the control socket is a file)
#   asterisk.sh netns-exec CMD ARGS..  run a host program (moq-relay, moq-phone, ...) in Asterisk's network
#                                      namespace, so 127.0.0.1 there is shared with Asterisk;
#                                      same as: ip netns exec $NETNS CMD ARGS..
#   asterisk.sh stop                   'core stop now', bounded wait, then TERM/KILL whatever else still
#                                      runs in $NETNS and delete it. Exits 1 if Asterisk did not exit 0
#                                      (e.g. 139 = SIGSEGV at shutdown).
#   asterisk.sh status                 running or not; exit 0 if running
#   asterisk.sh info                   print the paths and names below as KEY=VALUE lines
#
# Environment (all optional):
#   MOQ_ASTERISK_ROOT      chroot dir            (default <repo>/target/asterisk/root)
#   MOQ_ASTERISK_DEV       extracted headers     (default <repo>/target/asterisk/dev; headers in usr/include)
#   MOQ_ASTERISK_INSTANCE  name of one Asterisk instance: its files live in $ROOT/opt/<name> and its
#                          network namespace is named after it (default moqtest). Distinct names let
#                          several instances (e.g. parallel tests) share one chroot.
#   MOQ_NETNS              network namespace name (default: the instance name)
#   MOQ_DIALPLAN           body of [moq-test] in extensions.conf (conf)
#   MOQ_ASTERISK_MODULES   extra modules to load, space or comma separated (conf)
#   MOQ_ASTERISK_TIMEOUT   seconds to wait for boot and for exit (default 30)
#   MOQ_DEBIAN_MIRROR, MOQ_DEBIAN_SUITE   (default http://deb.debian.org/debian, sid)
#
# Networking: Asterisk runs under `ip netns exec $NETNS`, so its network is the
# named namespace's, which has only lo. Processes that must talk to Asterisk
# over 127.0.0.1 (moq-relay, moq-phone) join it with `asterisk.sh netns-exec` or
# `ip netns exec $NETNS`. They run on the host's filesystem, not in the chroot.
#
# Files of an instance (host paths): $ROOT/opt/$INSTANCE/etc (config),
#   log/messages.log (logger), log/console.log (Asterisk's stdout/stderr),
#   run/asterisk.pid.host, run/exit-status (written when Asterisk exits).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROOT=${MOQ_ASTERISK_ROOT:-$REPO/target/asterisk/root}
DEV=${MOQ_ASTERISK_DEV:-$REPO/target/asterisk/dev}
INSTANCE=${MOQ_ASTERISK_INSTANCE:-moqtest}
NETNS=${MOQ_NETNS:-$INSTANCE}
TIMEOUT=${MOQ_ASTERISK_TIMEOUT:-30}
MIRROR=${MOQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${MOQ_DEBIAN_SUITE:-sid}
PKGS=asterisk,asterisk-modules,asterisk-core-sounds-en

[[ $INSTANCE =~ ^[A-Za-z0-9_-]+$ ]] || { echo "bad MOQ_ASTERISK_INSTANCE '$INSTANCE'" >&2; exit 2; }
[[ $NETNS =~ ^[A-Za-z0-9_-]+$ ]] || { echo "bad MOQ_NETNS '$NETNS'" >&2; exit 2; }

T=/opt/$INSTANCE          # instance dir as seen inside the chroot
HT=$ROOT$T                # the same dir on the host
CONF=$T/etc/asterisk.conf
STAMP=$ROOT/.moq-chroot-complete
DEV_STAMP=$DEV/.moq-dev-complete
DEB_DIR=/var/cache/moq    # inside the chroot: where asterisk-dev_*.deb is kept

say() { printf '[asterisk.sh] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (chroot, namespaces): sudo $0 $*"; }
now() { date +%s.%N; }
# deadline_passed START SECONDS
deadline_passed() { awk -v s="$1" -v n="$(now)" -v t="$2" 'BEGIN { exit !(n - s > t) }'; }
ast() { chroot "$ROOT" /usr/sbin/asterisk -C "$CONF" "$@"; }
netns_exists() { ip netns list | awk -v n="$NETNS" '$1 == n { f = 1 } END { exit !f }'; }
# Host pid of the asterisk process in $NETNS (there is one per namespace).
netns_asterisk_pid() {
  local p
  for p in $(ip netns pids "$NETNS" 2>/dev/null); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = asterisk ] && { echo "$p"; return 0; }
  done
  return 1
}
moddir() {
  local d
  for d in "$ROOT"/usr/lib/*/asterisk/modules; do [ -d "$d" ] && { echo "$d"; return; }; done
  die "no asterisk module dir under $ROOT/usr/lib (run: $0 build)"
}
chroot_ready() { [ -f "$STAMP" ] || die "chroot $ROOT is not built (run: $0 build)"; }

host_pkgs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} = 0 ] && return
  say "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }
}

cmd_build() {
  need_root build
  case "$(realpath -m "$ROOT")" in / | /usr | /opt | /var | /tmp | "$REPO") die "refusing ROOT=$ROOT" ;; esac
  mkdir -p "$(dirname "$ROOT")"
  # One build at a time (parallel tests may all call build on a fresh machine).
  exec 9>"$ROOT.lock"
  flock 9
  host_pkgs mmdebstrap iproute2
  if [ -f "$STAMP" ]; then
    say "chroot $ROOT is complete ($(cat "$STAMP")); reusing it"
  else
    say "building Debian $SUITE chroot with $PKGS in $ROOT (about 80-120 s)"
    local t0; t0=$(date +%s)
    rm -rf "$ROOT"
    # --variant=apt: Essential + apt only. No recommends; no docs/man/locales.
    # Check-Valid-Until false: this machine's clock can be later than the
    # mirror's sid Release file, which then looks expired.
    # asterisk-dev is downloaded (not installed: it drags in gcc/perl) by the
    # same apt run, so the headers always match the installed asterisk.
    nice mmdebstrap --variant=apt --mode=root \
      --aptopt='APT::Install-Recommends "false"' \
      --aptopt='Acquire::Check-Valid-Until "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --include="$PKGS" \
      --customize-hook="mkdir -p \"\$1$DEB_DIR\" && chmod 1777 \"\$1$DEB_DIR\" && chroot \"\$1\" sh -c 'cd $DEB_DIR && apt-get download -q asterisk-dev'" \
      "$SUITE" "$ROOT" "$MIRROR"
    local v; v=$(chroot "$ROOT" dpkg-query -W -f='${Version}' asterisk)
    chroot "$ROOT" /usr/sbin/asterisk -V >&2
    say "chroot built in $(($(date +%s) - t0)) s, $(du -sh "$ROOT" | cut -f1)"
    echo "asterisk $v" >"$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP" # written last
  fi
  extract_dev
  say "build done: $(cat "$STAMP"); headers in $DEV/usr/include"
}

extract_dev() {
  local want deb
  want=$(chroot "$ROOT" dpkg-query -W -f='${Version}' asterisk)
  if [ -f "$DEV_STAMP" ] && [ "$(cat "$DEV_STAMP")" = "$want" ]; then
    say "asterisk-dev $want headers already in $DEV"
    return
  fi
  deb=$(ls "$ROOT$DEB_DIR"/asterisk-dev_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    # Chroot made without the download hook: fetch it now from the chroot's apt source.
    say "downloading asterisk-dev inside the chroot"
    mkdir -p "$ROOT$DEB_DIR"
    local rc=0 had_resolv=0
    [ -e "$ROOT/etc/resolv.conf" ] && had_resolv=1
    [ $had_resolv = 1 ] || cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    chroot "$ROOT" sh -c "apt-get update -q && cd $DEB_DIR && apt-get download -q asterisk-dev" || rc=$?
    [ $had_resolv = 1 ] || rm -f "$ROOT/etc/resolv.conf"
    [ $rc = 0 ] || die "apt-get download asterisk-dev failed in the chroot"
    deb=$(ls "$ROOT$DEB_DIR"/asterisk-dev_*.deb | head -n1)
  fi
  local got; got=$(dpkg-deb -f "$deb" Version)
  [ "$got" = "$want" ] || die "asterisk-dev $got does not match asterisk $want in the chroot"
  say "extracting $(basename "$deb") to $DEV"
  rm -rf "$DEV"
  mkdir -p "$DEV"
  dpkg -x "$deb" "$DEV"
  echo "$got" >"$DEV/DEB_VERSION"
  echo "$want" >"$DEV_STAMP.tmp" && mv "$DEV_STAMP.tmp" "$DEV_STAMP"
}

# Modules of the test config. Local channels and the bridging core are built in.
BASE_MODULES="res_timing_timerfd pbx_config res_clioriginate
  app_dial app_echo app_playback app_milliwatt app_verbose app_senddtmf app_read
  bridge_simple bridge_native_rtp bridge_softmix
  codec_ulaw codec_alaw codec_gsm codec_resample codec_opus_open_source res_format_attr_opus
  format_gsm format_wav format_pcm format_sln format_ogg_opus_open_source
  func_channel func_callerid func_strings func_logic func_cut"

DEFAULT_DIALPLAN='exten => echo,1,Answer()
 same => n,Echo()
 same => n,Hangup()
exten => playback,1,Answer()
 same => n,Playback(demo-congrats)
 same => n,Hangup()
exten => milliwatt,1,Answer()
 same => n,Milliwatt()
 same => n,Hangup()'

cmd_conf() {
  need_root conf
  chroot_ready
  local src=${1:-} md; md=$(moddir)
  mkdir -p "$HT"/{etc,run,log,lib,spool,cache}
  rm -f "$HT"/etc/*.conf
  cat >"$HT/etc/asterisk.conf" <<EOF
[directories]
astetcdir => $T/etc
astmoddir => ${md#"$ROOT"}
astvarlibdir => $T/lib
astdbdir => $T/lib
astkeydir => $T/lib
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => $T/spool
astrundir => $T/run
astlogdir => $T/log
astcachedir => $T/cache
astsbindir => /usr/sbin
[options]
verbose = 3
debug = 0
nocolor = yes
EOF
  {
    echo "[modules]"
    echo "autoload = no"
    local m
    local extra=${MOQ_ASTERISK_MODULES:-}
    for m in $BASE_MODULES ${extra//,/ }; do
      m=${m%.so}
      if [ -e "$md/$m.so" ]; then echo "load => $m.so"; else say "warning: module $m.so not in the chroot; not loaded"; fi
    done
    echo "load => chan_moq.so"
  } >"$HT/etc/modules.conf"
  cat >"$HT/etc/logger.conf" <<'EOF'
[general]
[logfiles]
console => notice,warning,error,verbose
messages.log => notice,warning,error,verbose,debug
EOF
  {
    printf '[general]\nstatic = yes\nwriteprotect = yes\n\n[moq-test]\n'
    printf '%s\n' "${MOQ_DIALPLAN:-$DEFAULT_DIALPLAN}"
    if [ -n "$src" ] && [ -f "$src" ]; then printf '\n'; cat "$src"; fi
  } >"$HT/etc/extensions.conf"
  # Debian's tone tables (ringing etc.); the rest empty, which silences
  # "config file not found" noise of core subsystems.
  cp "$ROOT/etc/asterisk/indications.conf" "$HT/etc/indications.conf" 2>/dev/null || touch "$HT/etc/indications.conf"
  local f
  for f in cdr cel features acl udptl ccss stasis manager musiconhold; do touch "$HT/etc/$f.conf"; done
  if [ -n "$src" ] && [ -d "$src" ]; then
    for f in "$src"/*.conf; do [ -e "$f" ] && cp "$f" "$HT/etc/"; done
  elif [ -n "$src" ] && [ ! -f "$src" ]; then
    die "conf: $src is neither a file nor a directory"
  fi
  say "config written to $HT/etc"
}

cmd_install_module() {
  need_root install-module
  chroot_ready
  local so=${1:?usage: $0 install-module path/to/libchan_moq.so}
  [ -f "$so" ] || die "no such file: $so"
  # A new inode, renamed into place (atomic for a concurrent dlopen): overwriting
  # a dlopen'ed .so in place makes Asterisk crash (SIGSEGV at shutdown).
  local md; md=$(moddir)
  install -m 0644 "$so" "$md/.chan_moq.so.$$"
  mv -f "$md/.chan_moq.so.$$" "$md/chan_moq.so"
  say "installed $so as $(moddir)/chan_moq.so"
}

running_pid() {
  local p
  p=$(cat "$HT/run/asterisk.pid.host" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -d "/proc/$p" ] && [ ! -e "$HT/run/exit-status" ] && echo "$p"
}

cmd_start() {
  need_root start
  chroot_ready
  [ -f "$HT/etc/asterisk.conf" ] || die "no config in $HT (run: $0 conf)"
  if p=$(running_pid); then die "instance $INSTANCE already running (pid $p); run: $0 stop"; fi
  if ast -rx 'core show version' >/dev/null 2>&1; then die "an Asterisk already answers on $HT/run; run: $0 stop"; fi
  if netns_exists; then
    [ -z "$(ip netns pids "$NETNS" 2>/dev/null)" ] || die "netns $NETNS exists and has processes; run: $0 stop"
    ip netns del "$NETNS"
  fi
  ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up
  echo "$NETNS" >"$HT/run/netns"
  rm -f "$HT/run/exit-status" "$HT/run/asterisk.pid.host" "$HT/run/asterisk.ctl"
  local log=$HT/log/console.log
  : >"$log"
  : >"$HT/log/messages.log" # fresh per start: tests grep it
  # Run as plain root: with -U/-G Asterisk drops CAP_DAC_OVERRIDE and then
  # can't read Debian's 0640 config files. Private pid+mount namespaces with a
  # private /proc; --kill-child takes Asterisk down if unshare is killed.
  (
    ip netns exec "$NETNS" unshare --mount --pid --fork --kill-child --mount-proc="$ROOT/proc" \
      chroot "$ROOT" /usr/sbin/asterisk -C "$CONF" -f &
    rc=0
    wait $! || rc=$?
    echo "$rc" >"$HT/run/exit-status"
    echo "asterisk exit=$rc"
  ) </dev/null >>"$log" 2>&1 &
  local t0 pid=
  t0=$(now)
  while :; do
    pid=$(netns_asterisk_pid) && break
    [ -e "$HT/run/exit-status" ] && break
    deadline_passed "$t0" "$TIMEOUT" && break
    sleep 0.05
  done
  [ -n "$pid" ] || { tail -n 40 "$log" >&2; die "Asterisk did not start"; }
  echo "$pid" >"$HT/run/asterisk.pid.host"
  while ! ast -rx 'core waitfullybooted' >/dev/null 2>&1; do
    if [ -e "$HT/run/exit-status" ]; then
      tail -n 40 "$log" >&2
      die "Asterisk exited during boot (status $(cat "$HT/run/exit-status")); see $log"
    fi
    deadline_passed "$t0" "$TIMEOUT" && { tail -n 40 "$log" >&2; die "Asterisk not booted after $TIMEOUT s; see $log"; }
    sleep 0.1
  done
  say "Asterisk booted in $(awk -v s="$t0" -v n="$(now)" 'BEGIN { printf "%.2f", n - s }') s: netns=$NETNS log=$HT/log/messages.log console=$log"
  echo "pid=$pid"
}

cmd_stop() {
  need_root stop
  local rc=0 pid st t0
  if pid=$(running_pid); then
    ast -rx 'core stop now' >/dev/null 2>&1 || true
    t0=$(now)
    while [ ! -e "$HT/run/exit-status" ] && ! deadline_passed "$t0" "$TIMEOUT"; do sleep 0.05; done
    if [ ! -e "$HT/run/exit-status" ]; then
      say "Asterisk (pid $pid) did not exit within $TIMEOUT s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      rc=1
      t0=$(now)
      while [ ! -e "$HT/run/exit-status" ] && ! deadline_passed "$t0" 5; do sleep 0.05; done
    fi
  else
    say "instance $INSTANCE is not running"
  fi
  if [ -e "$HT/run/exit-status" ]; then
    st=$(cat "$HT/run/exit-status")
    say "Asterisk exit status $st"
    [ "$st" = 0 ] || rc=1
  fi
  if netns_exists; then
    # Leftovers of the test in the namespace (relays, phones): TERM, then KILL.
    local left
    left=$(ip netns pids "$NETNS" 2>/dev/null | tr '\n' ' ')
    if [ -n "${left// /}" ]; then
      say "terminating processes left in netns $NETNS: $left"
      # shellcheck disable=SC2086
      kill -TERM $left 2>/dev/null || true
      t0=$(now)
      while [ -n "$(ip netns pids "$NETNS" 2>/dev/null)" ] && ! deadline_passed "$t0" 5; do sleep 0.05; done
      left=$(ip netns pids "$NETNS" 2>/dev/null | tr '\n' ' ')
      # shellcheck disable=SC2086
      [ -z "${left// /}" ] || kill -KILL $left 2>/dev/null || true
    fi
    ip netns del "$NETNS"
  fi
  rm -f "$HT/run/asterisk.pid.host"
  return $rc
}

cmd_netns_exec() {
  need_root netns-exec
  [ $# -gt 0 ] || die "usage: $0 netns-exec CMD [ARGS..]"
  netns_exists || die "netns $NETNS does not exist (run: $0 start)"
  exec ip netns exec "$NETNS" "$@"
}

cmd_info() {
  cat <<EOF
ROOT=$ROOT
DEV=$DEV
INSTANCE=$INSTANCE
NETNS=$NETNS
ETC=$HT/etc
MESSAGES_LOG=$HT/log/messages.log
CONSOLE_LOG=$HT/log/console.log
MODULE=$(moddir 2>/dev/null)/chan_moq.so
EOF
}

sub=${1:-}
[ $# -gt 0 ] && shift
case "$sub" in
build) cmd_build ;;
conf) cmd_conf "$@" ;;
install-module) cmd_install_module "$@" ;;
start) cmd_start ;;
cli)
  chroot_ready
  [ $# -gt 0 ] || die "usage: $0 cli 'COMMAND'"
  ast -rx "$*"
  ;;
netns-exec) cmd_netns_exec "$@" ;;
stop) cmd_stop ;;
status)
  if p=$(running_pid); then echo "running pid=$p netns=$NETNS"; else echo "stopped"; exit 1; fi
  ;;
info) cmd_info ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
  exit 2
  ;;
esac
