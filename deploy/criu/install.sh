#!/usr/bin/env bash
# deploy/criu/install.sh — make a CRIU that works on this host available to lifeboat.
#
# Uses the system's criu when it is >= 4.2 and `criu check` passes; otherwise unpacks Debian
# testing's criu and its whole library closure (own glibc) into a private prefix, without
# registering anything with dpkg, and runs it through a loader wrapper. See README.md.
#
# stdout: exactly one line, the path of the criu to use (also in $PREFIX/.installed).
# stderr: progress and errors, prefixed "criu-install:".
#
# Environment:
#   LIFEBOAT_CRIU_PREFIX   private prefix (default /opt/lifeboat/criu)
#   LIFEBOAT_CRIU_LINK     well-known symlink (default /usr/local/libexec/lifeboat/criu)
#   LIFEBOAT_CRIU_SUITES   Debian suites to try, in order (default "testing unstable")
#   LIFEBOAT_CRIU_MIRROR   Debian mirror URL (default: taken from the system's apt sources)
#   LIFEBOAT_CRIU_FORCE=1  ignore the stamp and the system criu; reinstall the private copy
set -Eeuo pipefail

readonly MIN_VERSION=4.2
readonly PIPE_MAX=4194304 # lazy pages: page-pipe tee() needs pipes this big
readonly SYSCTL_FILE=/etc/sysctl.d/60-lifeboat-criu.conf
readonly DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

PREFIX=${LIFEBOAT_CRIU_PREFIX:-/opt/lifeboat/criu}
LINK=${LIFEBOAT_CRIU_LINK:-/usr/local/libexec/lifeboat/criu}
SUITES=${LIFEBOAT_CRIU_SUITES:-testing unstable}
FORCE=${LIFEBOAT_CRIU_FORCE:-0}
PREFIX=${PREFIX%/}
WRAPPER=$PREFIX/bin/criu
STAMP=$PREFIX/.installed
WORK=

# ip, iptables, nft live in sbin; sudo/cron may hand us a PATH without it.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export LC_ALL=C

log() { printf 'criu-install: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
# shellcheck disable=SC2317 # called by the ERR trap
on_err() {
	local rc=$?
	log "error: unexpected failure (exit $rc) at line $1: $2"
	exit "$rc"
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { if [ -n "$WORK" ] && [ -d "$WORK" ]; then rm -rf -- "$WORK"; fi; }
trap cleanup EXIT

usage() {
	sed -n '2,16s/^# \{0,1\}//p' "$0"
}

# version_ge A B: A >= B (dotted versions).
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# criu_version PATH: prints "4.2.1" or fails.
criu_version() {
	local out v
	out=$("$1" --version 2>/dev/null) || return 1
	v=$(sed -n 's/^Version: *//p' <<<"$out" | head -n1)
	[ -n "$v" ] || return 1
	printf '%s\n' "$v"
}

stamp_get() { sed -n "s/^$1=//p" "$STAMP" 2>/dev/null | head -n1; }

# --- host settings --------------------------------------------------------------------------

apply_sysctl() {
	local cur
	cur=$(cat /proc/sys/fs/pipe-max-size 2>/dev/null || echo 0)
	if [ "$cur" -lt "$PIPE_MAX" ]; then
		if sysctl -q -w fs.pipe-max-size="$PIPE_MAX" >/dev/null 2>&1 ||
			echo "$PIPE_MAX" >/proc/sys/fs/pipe-max-size 2>/dev/null; then
			log "raised fs.pipe-max-size from $cur to $PIPE_MAX (needed by lazy pages)"
		else
			log "warning: cannot raise fs.pipe-max-size to $PIPE_MAX (read-only /proc/sys?);" \
				"lazy-pages restores will fail with 'page-pipe: tee: ... Operation not permitted'"
		fi
	fi
	local want="# lifeboat (deploy/criu/install.sh): CRIU lazy pages need pipes of 4 MiB.
fs.pipe-max-size = $PIPE_MAX"
	if [ "$(cat "$SYSCTL_FILE" 2>/dev/null)" != "$want" ]; then
		if mkdir -p "${SYSCTL_FILE%/*}" && printf '%s\n' "$want" >"$SYSCTL_FILE"; then
			log "wrote $SYSCTL_FILE (keeps fs.pipe-max-size after reboot)"
		else
			log "warning: cannot write $SYSCTL_FILE; fs.pipe-max-size will drop back on reboot"
		fi
	fi
}

apt_lists_fresh() {
	local lists=/var/lib/apt/lists
	eval "$(apt-config shell lists Dir::State::Lists/d 2>/dev/null)" || true
	[ -n "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]
}

# Tools CRIU execs from the system: ip (network namespaces), iptables/nft (network lock),
# tar (tmpfs contents), sh. Installed from the system's normal apt sources.
ensure_system_tools() {
	local need=() out
	command -v ip >/dev/null 2>&1 || need+=(iproute2)
	command -v nft >/dev/null 2>&1 || need+=(nftables)
	{ command -v iptables >/dev/null 2>&1 && command -v iptables-restore >/dev/null 2>&1; } ||
		need+=(iptables)
	command -v tar >/dev/null 2>&1 || need+=(tar)
	[ ${#need[@]} -gt 0 ] || return 0

	log "installing system tools CRIU runs: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	local apt=(apt-get -q -y -o DPkg::Lock::Timeout=300)
	local updated=0
	if ! apt_lists_fresh; then
		log "system apt lists missing or older than a day: apt-get update"
		out=$("${apt[@]}" update 2>&1) || die "apt-get update failed:
$(tail -n 15 <<<"$out")
  fix the system's apt sources or network, then re-run $0"
		updated=1
	fi
	if ! out=$("${apt[@]}" install --no-install-recommends "${need[@]}" 2>&1); then
		if [ "$updated" = 0 ]; then
			log "apt-get install failed; retrying after apt-get update"
			out=$("${apt[@]}" update 2>&1) || die "apt-get update failed:
$(tail -n 15 <<<"$out")"
			out=$("${apt[@]}" install --no-install-recommends "${need[@]}" 2>&1) ||
				die "apt-get install ${need[*]} failed:
$(tail -n 15 <<<"$out")
  install them by hand (apt-get install ${need[*]}) and re-run $0"
		else
			die "apt-get install ${need[*]} failed:
$(tail -n 15 <<<"$out")
  install them by hand (apt-get install ${need[*]}) and re-run $0"
		fi
	fi
}

set_link() {
	local target=$1
	if [ "$(readlink "$LINK" 2>/dev/null)" != "$target" ]; then
		mkdir -p "${LINK%/*}" || die "cannot create ${LINK%/*}"
		ln -sfn "$target" "$LINK" || die "cannot create symlink $LINK"
		log "$LINK -> $target"
	fi
}

write_stamp() { # source path version package
	mkdir -p "$PREFIX"
	printf 'source=%s\ncriu=%s\nversion=%s\npackage=%s\nkernel=%s\ninstalled=%s\n' \
		"$1" "$2" "$3" "$4" "$(uname -r)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAMP.tmp"
	mv -f "$STAMP.tmp" "$STAMP"
}

finish() { # path version what
	set_link "$1"
	ensure_system_tools
	apply_sysctl
	log "$3 criu $2: $1"
	printf '%s\n' "$1"
	exit 0
}

# --- fast path: a previous run left a stamp and the criu it names still answers -------------

fast_path() {
	[ -f "$STAMP" ] || return 1
	local path version got
	path=$(stamp_get criu)
	version=$(stamp_get version)
	[ -n "$path" ] && [ -n "$version" ] || return 1
	if ! got=$(criu_version "$path"); then
		log "stamp $STAMP names $path, but '$path --version' fails: reinstalling"
		return 1
	fi
	if [ "$got" != "$version" ] || ! version_ge "$got" "$MIN_VERSION"; then
		log "criu at $path is now $got (stamp says $version): deciding again"
		return 1
	fi
	CHOSEN=("$path" "$got" "already installed:")
}

# --- the system's criu ----------------------------------------------------------------------

try_system_criu() {
	local path real v out
	path=$(command -v criu 2>/dev/null) || {
		log "no criu on PATH"
		return 1
	}
	real=$(readlink -f "$path")
	case $real in "$PREFIX"/*) return 1 ;; esac # our own wrapper on PATH
	if ! v=$(criu_version "$path"); then
		log "$path --version fails; not using it"
		return 1
	fi
	if ! version_ge "$v" "$MIN_VERSION"; then
		log "system criu $path is $v; lifeboat needs >= $MIN_VERSION on kernel $(uname -r)"
		return 1
	fi
	if ! out=$("$path" check 2>&1); then
		log "system criu $v: 'criu check' fails: $(grep -m1 -iE 'error|fail' <<<"$out" || tail -n1 <<<"$out")"
		return 1
	fi
	CHOSEN=("$path" "$v" "using the system's")
}

# --- the private copy -----------------------------------------------------------------------

# Prints "URI<TAB>SIGNED_BY<TAB>FILE" for each enabled "deb" source of the system, deb822 and
# one-line formats, main-archive suites (no -security/-updates/-backports) first.
apt_sources() {
	local codename=
	# shellcheck disable=SC1091
	codename=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}") || true
	local f files=()
	for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && files+=("$f"); done
	if [ ${#files[@]} -gt 0 ]; then
		awk -v cn="$codename" '
			function flush() {
				if (uri != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
					n = split(suites, s, /[ \t]+/)
					rank = 2
					for (i = 1; i <= n; i++) {
						if (s[i] == cn || s[i] ~ /^(stable|testing|unstable|sid|oldstable)$/) rank = 0
						else if (s[i] !~ /[-\/](security|updates|backports|proposed-updates)$/ && rank > 1) rank = 1
					}
					if (uri ~ /security/) rank = 3
					print rank "\t" uri "\t" signed "\t" file
				}
				uri = types = suites = signed = enabled = ""
			}
			FNR == 1 { flush(); file = FILENAME }
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { next }    # continuation line (e.g. an inline key)
			{
				key = tolower($0); sub(/:.*/, "", key)
				val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
				if (key == "types") types = val
				else if (key == "uris") { split(val, u, /[ \t]+/); uri = u[1] }
				else if (key == "suites") suites = val
				else if (key == "signed-by") signed = val
				else if (key == "enabled") enabled = val
			}
			END { flush() }
		' "${files[@]}"
	fi
	files=()
	[ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && files+=("$f"); done
	if [ ${#files[@]} -gt 0 ]; then
		awk -v cn="$codename" '
			/^[ \t]*deb[ \t]/ {
				line = $0; signed = ""
				if (match(line, /\[[^]]*\]/)) {
					opts = substr(line, RSTART + 1, RLENGTH - 2)
					line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
					if (match(opts, /signed-by=[^ \t]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
				}
				n = split(line, w, /[ \t]+/)
				j = 0; for (i = 1; i <= n; i++) if (w[i] != "") v[++j] = w[i]
				uri = v[2]; suite = v[3]
				rank = 2
				if (suite == cn || suite ~ /^(stable|testing|unstable|sid|oldstable)$/) rank = 0
				else if (suite !~ /[-\/](security|updates|backports|proposed-updates)$/) rank = 1
				if (uri ~ /security/) rank = 3
				print rank "\t" uri "\t" signed "\t" FILENAME
			}
		' "${files[@]}"
	fi
}

pick_mirror() { # sets MIRROR, KEYRING, MIRROR_FROM
	KEYRING=
	MIRROR_FROM=
	if [ -n "${LIFEBOAT_CRIU_MIRROR:-}" ]; then
		MIRROR=$LIFEBOAT_CRIU_MIRROR
		MIRROR_FROM=LIFEBOAT_CRIU_MIRROR
	else
		local line uri signed file
		line=$(apt_sources | awk -F'\t' '$2 ~ /^https?:\/\// && $1 < 3' | sort -s -t$'\t' -k1,1n | head -n1)
		[ -n "$line" ] || die "found no Debian mirror (an http(s) 'deb' source of the main archive) in
  /etc/apt/sources.list or /etc/apt/sources.list.d/; set LIFEBOAT_CRIU_MIRROR=<Debian mirror URL>"
		IFS=$'\t' read -r _ uri signed file <<<"$line"
		MIRROR=$uri
		MIRROR_FROM=$file
		case $signed in /*) [ -f "$signed" ] && KEYRING=$signed ;; esac
	fi
	[ -n "$KEYRING" ] || { [ -f "$DEFAULT_KEYRING" ] && KEYRING=$DEFAULT_KEYRING; } || true
	MIRROR=${MIRROR%/}
}

# Multiarch triplet and dynamic loader of this architecture.
arch_layout() { # sets ARCH, TRIPLET, LOADER
	ARCH=$(dpkg --print-architecture)
	case $ARCH in
	amd64) TRIPLET=x86_64-linux-gnu LOADER=ld-linux-x86-64.so.2 ;;
	arm64) TRIPLET=aarch64-linux-gnu LOADER=ld-linux-aarch64.so.1 ;;
	*) die "architecture $ARCH is not supported by this installer (amd64, arm64)" ;;
	esac
}

# private_apt SUITE ARGS...: apt-get against SUITE only, with its own lists, cache and an empty
# dpkg status, so that the whole dependency closure is resolved and downloaded.
write_apt_config() {
	local suite=$1 a=$WORK/apt
	rm -rf "$a"
	mkdir -p "$a"/{lists/partial,archives/partial,cache,sources.list.d,preferences.d,state}
	: >"$a/status"
	local opts="arch=$ARCH targets=Packages pdiffs=no"
	[ -n "$KEYRING" ] && opts="$opts signed-by=$KEYRING"
	printf 'deb [%s] %s %s main\n' "$opts" "$MIRROR" "$suite" >"$a/sources.list"
	cat >"$a/apt.conf" <<EOF
Dir::Etc::SourceList "$a/sources.list";
Dir::Etc::SourceParts "$a/sources.list.d";
Dir::Etc::Preferences "$a/preferences";
Dir::Etc::PreferencesParts "$a/preferences.d";
Dir::State "$a/state";
Dir::State::Lists "$a/lists";
Dir::State::Status "$a/status";
Dir::Cache "$a/cache";
Dir::Cache::Archives "$a/archives";
Dir::Log "$a";
APT::Architecture "$ARCH";
APT::Architectures { "$ARCH"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
	# _apt (apt's download sandbox user) must be able to write the partial dirs.
	chmod 755 "$WORK" "$a"
	chown -R _apt "$a/lists" "$a/archives" 2>/dev/null || true
}

private_apt() { APT_CONFIG=$WORK/apt/apt.conf apt-get -q -y "$@"; }

install_private() {
	arch_layout
	pick_mirror
	case $PREFIX in /?*) ;; *) die "LIFEBOAT_CRIU_PREFIX must be an absolute path other than / (got '$PREFIX')" ;; esac
	# Only ever replace a directory that is ours.
	if [ -e "$PREFIX" ] && [ ! -f "$STAMP" ] && [ ! -d "$PREFIX/root" ] &&
		[ -n "$(ls -A "$PREFIX" 2>/dev/null)" ]; then
		die "$PREFIX exists and is not a lifeboat CRIU prefix; remove it or set LIFEBOAT_CRIU_PREFIX"
	fi
	mkdir -p "${PREFIX%/*}"
	WORK=$(mktemp -d "${PREFIX%/*}/.criu-install.XXXXXX")

	log "fetching Debian's criu and its library closure (suites: $SUITES; mirror from $MIRROR_FROM)"
	local suite out='' cand='' chosen=''
	for suite in $SUITES; do
		write_apt_config "$suite"
		if ! out=$(private_apt update 2>&1); then
			log "apt-get update for suite '$suite' failed: $(grep -m1 -E '^(E|W):' <<<"$out" || tail -n1 <<<"$out")"
			continue
		fi
		if [ -z "$(find "$WORK/apt/lists" -maxdepth 1 -name '*_Packages*' -print -quit)" ]; then
			log "apt-get update for suite '$suite' fetched no package list: $(grep -m1 -E '^(E|W):' <<<"$out" || tail -n1 <<<"$out")"
			continue
		fi
		cand=$(APT_CONFIG=$WORK/apt/apt.conf apt-cache policy criu 2>/dev/null | sed -n 's/^ *Candidate: *//p')
		if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
			log "suite '$suite' has no criu package"
			continue
		fi
		if ! version_ge "${cand#*:}" "$MIN_VERSION"; then
			log "suite '$suite' has criu $cand (< $MIN_VERSION)"
			continue
		fi
		chosen=$suite
		break
	done
	[ -n "$chosen" ] || die "no usable criu (>= $MIN_VERSION) in suites '$SUITES' of $MIRROR${out:+; last apt output:
$(tail -n 8 <<<"$out")}
  check network access to the mirror, or set LIFEBOAT_CRIU_MIRROR / LIFEBOAT_CRIU_SUITES"

	log "downloading criu $cand from $chosen"
	out=$(private_apt install --download-only criu 2>&1) || die "downloading criu $cand failed:
$(tail -n 15 <<<"$out")"

	local stage=$WORK/stage R deb debs=() pkgs=
	R=$stage/root
	mkdir -p "$R" "$stage/bin"
	for deb in "$WORK"/apt/archives/*.deb; do [ -f "$deb" ] && debs+=("$deb"); done
	[ ${#debs[@]} -gt 0 ] || die "apt downloaded no .deb files (see $WORK/apt)"
	for deb in "${debs[@]}"; do
		dpkg-deb -x "$deb" "$R" || die "dpkg-deb -x $deb failed (disk full?)"
		# shellcheck disable=SC2016 # dpkg-query format, not shell
		pkgs+=$(dpkg-deb -W --showformat='${Package} ${Version}' "$deb")$'\n'
	done
	printf '%s' "$pkgs" >"$stage/PACKAGES"
	log "unpacked ${#debs[@]} packages: $(printf '%s' "$pkgs" | cut -d' ' -f1 | paste -sd' ')"

	local ld=$R/usr/lib/$TRIPLET/$LOADER
	if [ ! -x "$ld" ] || [ ! -x "$R/usr/sbin/criu" ]; then
		die "unpacked tree lacks usr/lib/$TRIPLET/$LOADER or usr/sbin/criu"
	fi
	local v
	v=$("$ld" --library-path "$R/usr/lib/$TRIPLET" "$R/usr/sbin/criu" --version 2>&1 | sed -n 's/^Version: *//p') ||
		true
	[ -n "$v" ] || die "the unpacked criu does not run: $("$ld" --library-path "$R/usr/lib/$TRIPLET" "$R/usr/sbin/criu" --version 2>&1 | tail -n 3)"

	# The wrapper: absolute paths, so it also works through symlinks (e.g. $LINK).
	local F=$PREFIX/root
	cat >"$stage/bin/criu" <<EOF
#!/bin/sh
# lifeboat's private CRIU: Debian $chosen criu $cand with its own glibc and libraries,
# run through their own dynamic loader. Written by deploy/criu/install.sh.
# CRIU execs ip, iptables/nft, tar and sh from the system; make sure sbin is on PATH.
case ":\$PATH:" in *:/usr/sbin:*) ;; *) PATH=\${PATH:+\$PATH:}/usr/sbin:/sbin; export PATH ;; esac
exec $F/usr/lib/$TRIPLET/$LOADER --library-path $F/usr/lib/$TRIPLET $F/usr/sbin/criu "\$@"
EOF
	chmod 755 "$stage/bin/criu"
	chmod 755 "$stage"

	# Swap the new tree in (same filesystem: two renames).
	if [ -e "$PREFIX" ]; then mv -- "$PREFIX" "$WORK/old"; fi
	mv -- "$stage" "$PREFIX"

	local got
	got=$(criu_version "$WRAPPER") || die "the installed wrapper $WRAPPER does not run:
$("$WRAPPER" --version 2>&1 | tail -n 3)"
	if ! out=$("$WRAPPER" check 2>&1); then
		set_link "$WRAPPER"
		die "criu $got is installed at $WRAPPER, but 'criu check' fails on kernel $(uname -r):
$(grep -vi 'kdat cache' <<<"$out" | tail -n 8)
  transparent (criu) checkpoints will not work on this host; 'app' and 'none' modes still do.
  (No stamp written: the next run retries.)"
	fi
	write_stamp private "$WRAPPER" "$got" "criu $cand (Debian $chosen)"
	finish "$WRAPPER" "$got" "installed private"
}

main() {
	case ${1:-} in
	-h | --help)
		usage
		exit 0
		;;
	--force) FORCE=1 ;;
	"") ;;
	*) die "unknown argument '$1' (usage: $0 [--force])" ;;
	esac
	[ "$(id -u)" = 0 ] || die "must run as root (it installs into $PREFIX, $LINK and /etc/sysctl.d); try: sudo $0"

	# One installer at a time (make deps may run in parallel with other targets).
	mkdir -p /run/lock 2>/dev/null || true
	exec 9>/run/lock/lifeboat-criu-install.lock
	flock -w 600 9 || die "another criu install holds /run/lock/lifeboat-criu-install.lock"

	CHOSEN=()
	if [ "$FORCE" != 1 ]; then
		if fast_path; then
			finish "${CHOSEN[@]}"
		elif try_system_criu; then
			write_stamp system "${CHOSEN[0]}" "${CHOSEN[1]}" "system"
			finish "${CHOSEN[@]}"
		fi
	fi
	install_private
}

main "$@"
