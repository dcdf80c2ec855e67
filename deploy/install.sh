#!/bin/sh
# Installs or upgrades edge-agent from an unpacked offline archive (`make wheelhouse`), with no
# network: see README "Offline install". Run it as root from the archive's folder.
set -eu

usage() {
    cat <<'EOF'
Usage: sudo ./install.sh [--python PATH] [--root DIR]

Installs or upgrades edge-agent from this folder's wheels, without network:
  - checks the archive (SHA256SUMS), this PC's architecture, C library and Python
  - creates the system user and group edge-agent (no login, no home; in dialout for serial ports)
  - /etc/edge-agent (0750 root:edge-agent), /var/lib/edge-agent (0700 edge-agent)
  - the venv /opt/edge-agent with exactly the versions in wheels/
  - /etc/systemd/system/edge-agent.service (a changed one is kept as edge-agent.service.old)
  - /etc/edge-agent/agent.yaml and env from the samples, only where none exists
  - checks the configuration with `edge-agent validate --offline` and says what is missing
A running agent is stopped for the upgrade and started again if its configuration passes.
Running it again upgrades in place; your agent.yaml and env are never overwritten.

Options:
  --python PATH  the Python to build the venv from (default: python3.X of this archive, else
                 python3); it must be the version the archive was built for
  --root DIR     a trial install with every path under DIR instead of /: no user or group is
                 created, nothing is chowned, systemctl is not run; root is not needed
  -h, --help     this text

Exit status: 0 installed; 1 failed; 2 wrong usage; 3 installed, but the agent that was running
before is left stopped because its configuration does not pass the check (printed).
EOF
}

say() { printf '%s\n' "$*"; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

root=/
python=
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --root) [ $# -ge 2 ] || { usage >&2; exit 2; }; root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        --python) [ $# -ge 2 ] || { usage >&2; exit 2; }; python=$2; shift 2 ;;
        --python=*) python=${1#--python=}; shift ;;
        *) printf 'install.sh: unknown argument: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
{ [ -f "$here/BUILD-INFO" ] && [ -d "$here/wheels" ]; } ||
    die "no BUILD-INFO or wheels/ beside install.sh: run it from the unpacked archive that \`make wheelhouse\` builds"

info() { sed -n "s/^$1=//p" "$here/BUILD-INFO"; }
version=$(info version)
want_python=$(info python)
want_arch=$(info arch)

mkdir -p "$root" || die "cannot create $root"
root=$(CDPATH='' cd -- "$root" && pwd)
if [ "$root" = / ]; then
    system=yes
    prefix=
    [ "$(id -u)" = 0 ] || die "run it as root: sudo $0 (or try it out with --root DIR)"
else
    system=no
    prefix=$root
    say "Trial install under $root: no user or group, no chown, no systemctl."
fi
etc=$prefix/etc/edge-agent
state=$prefix/var/lib/edge-agent
venv=$prefix/opt/edge-agent
unitdir=$prefix/etc/systemd/system
share=$venv/share/edge-agent

# The venv must be readable by the agent's user whatever umask root has; files that hold
# configuration or secrets get their modes explicitly below.
umask 022

# A bad USB copy shows here, not as a broken wheel halfway through the upgrade.
if command -v sha256sum >/dev/null 2>&1; then
    (cd "$here" && sha256sum --quiet -c SHA256SUMS) ||
        die "the archive's files do not match SHA256SUMS: copy the archive again"
else
    say "warning: no sha256sum here; the archive's checksums were not verified"
fi

arch=$(uname -m)
[ "$arch" = "$want_arch" ] ||
    die "this archive is for $want_arch, this PC is $arch: build one on an $arch machine"

if [ -z "$python" ]; then
    if command -v "python$want_python" >/dev/null 2>&1; then
        python=python$want_python
    elif command -v python3 >/dev/null 2>&1; then
        python=python3
    else
        die "no python3 here: install Python $want_python from the OS (apt-get install python3), or name one with --python"
    fi
fi
have_python=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
    die "cannot run $python"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    die "edge-agent needs Python 3.11 or newer; $python is $have_python"
fi
[ "$have_python" = "$want_python" ] ||
    die "this archive is for Python $want_python, but $python is $have_python: use --python with a Python $want_python, or build an archive for $have_python (make wheelhouse WHEEL_PYTHONS=$have_python)"

# The interpreter itself, behind links and venvs: the one the agent's venv will run on.
base='import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'
base_python=$("$python" -c "$base")

# Binary wheels name the oldest glibc they run on; pip alone would only say that it found no
# matching version of, say, cryptography.
"$python" - "$here/wheels" <<'EOF' || exit 1
import os, re, sys
need, needed_by = (0, 0), ""
for name in os.listdir(sys.argv[1]):
    tags = [(int(a), int(b)) for a, b in re.findall(r"manylinux_(\d+)_(\d+)_", name)]
    tags += [(2, {"1": 5, "2010": 12, "2014": 17}[v]) for v in re.findall(r"manylinux(1|2010|2014)_", name)]
    if tags and min(tags) > need:
        need, needed_by = min(tags), name
have = os.confstr("CS_GNU_LIBC_VERSION") or ""
if need > (0, 0):
    m = re.match(r"glibc (\d+)\.(\d+)", have)
    if not m or (int(m[1]), int(m[2])) < need:
        sys.exit(f"install.sh: {needed_by} needs glibc {need[0]}.{need[1]} or newer, this PC has "
                 f"{have or 'none'}: build the archive on this PC's OS release or an older one")
EOF

pip_wheel=
for f in "$here"/wheels/pip-*.whl; do [ -f "$f" ] && pip_wheel=$f; done
[ -n "$pip_wheel" ] || die "no pip wheel in $here/wheels"

# --- user, group, folders --------------------------------------------------------------------
if [ "$system" = yes ]; then
    getent group edge-agent >/dev/null || groupadd --system edge-agent
    if ! getent passwd edge-agent >/dev/null; then
        nologin=/usr/sbin/nologin
        [ -x $nologin ] || nologin=/sbin/nologin
        [ -x $nologin ] || nologin=/bin/false
        useradd --system --gid edge-agent --no-create-home --home-dir /nonexistent \
            --shell "$nologin" --comment "edge-agent service" edge-agent
        say "Created the system user edge-agent."
    fi
    # The unit adds dialout itself (SupplementaryGroups=); this is for commands run by hand as
    # the user, e.g. sudo -u edge-agent edge-agent opcua browse ...
    if getent group dialout >/dev/null; then usermod -a -G dialout edge-agent; fi
    # Checked before anything is stopped: a Python under a home folder (pyenv, conda) is one the
    # service's user may not run.
    runuser -u edge-agent -- "$base_python" -c '' 2>/dev/null ||
        die "the user edge-agent cannot run $base_python (under a home folder?): use the OS's Python, e.g. --python /usr/bin/python$want_python"
fi

# /etc/edge-agent: root writes, the agent's group reads (the agent must read agent.yaml and
# ${file:...} secrets kept here; it need not be able to change them), others nothing. 0700 would
# lock the agent out unless it owned the folder, and then it could rewrite its own configuration.
mkdir -p "$etc" "$state" "$unitdir" "$prefix/opt"
chmod 0750 "$etc"
chmod 0700 "$state"
if [ "$system" = yes ]; then
    chown root:edge-agent "$etc"
    chown edge-agent:edge-agent "$state"
fi

# --- stop a running agent ----------------------------------------------------------------------
was_active=no
have_systemd=no
if [ "$system" = yes ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    have_systemd=yes
fi
# Stopped before its files change: the agent imports some modules only when it first needs them,
# and must not mix two versions.
if [ "$have_systemd" = yes ] && systemctl is-active --quiet edge-agent; then
    was_active=yes
    say "Stopping edge-agent for the upgrade."
    systemctl stop edge-agent
fi

# --- the venv ----------------------------------------------------------------------------------
old_version=
if [ -x "$venv/bin/python" ] &&
    [ "$("$venv/bin/python" -c "$base" 2>/dev/null)" = "$base_python" ]; then
    old_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("edge-agent"))' 2>/dev/null) || true
else
    # Missing, or made from another Python (an OS upgrade, another --python): made anew.
    # --without-pip: pip comes from the archive, so Debian's python3-venv (ensurepip) is not needed.
    "$python" -m venv --clear --without-pip "$venv"
fi
if [ "$old_version" = "$version" ]; then
    say "Reinstalling edge-agent $version in $venv."
elif [ -n "$old_version" ]; then
    say "Upgrading edge-agent $old_version to $version in $venv."
else
    say "Installing edge-agent $version in $venv."
fi
# Every wheel of the archive, reinstalled: the venv holds exactly these versions (an older
# archive rolls back). pip runs from its wheel and reads no pip.conf or PIP_* variable of this PC:
# --no-index and the archive's wheels are the only source.
PIP_CONFIG_FILE=/dev/null "$venv/bin/python" "$pip_wheel/pip" --isolated --disable-pip-version-check \
    install --quiet --no-index --no-cache-dir --force-reinstall --find-links "$here/wheels" \
    "$here"/wheels/*.whl ||
    die "pip could not install the wheels into $venv (see above)"
mkdir -p "$share"
cp "$here/agent.yaml.example" "$here/env.example" "$here/edge-agent.service" "$share/"

# --- systemd unit ------------------------------------------------------------------------------
unit=$unitdir/edge-agent.service
if [ -f "$unit" ] && ! cmp -s "$here/edge-agent.service" "$unit"; then
    cp -p "$unit" "$unit.old"
    say "The installed unit differed from this version's: kept it as $unit.old. Put local"
    say "changes in a drop-in instead (systemctl edit edge-agent), which upgrades leave alone."
fi
install -m 0644 "$here/edge-agent.service" "$unit"
if [ "$have_systemd" = yes ]; then systemctl daemon-reload; fi

# --- configuration -----------------------------------------------------------------------------
# Only where none exists: an integrator's agent.yaml and env are never overwritten.
place() { # sample target
    if [ -e "$2" ]; then
        say "Kept your $2."
        return 1
    fi
    if [ "$system" = yes ]; then
        install -m 0640 -o root -g edge-agent "$1" "$2"
    else
        install -m 0640 "$1" "$2"
    fi
    say "Placed a sample $2 (from $(basename "$1")): fill it in."
}
new_config=no
if place "$here/agent.yaml.example" "$etc/agent.yaml"; then new_config=yes; fi
place "$here/env.example" "$etc/env" || true
if [ -e "$etc/env" ] && [ -n "$(find "$etc/env" -perm -004)" ]; then
    say "warning: $etc/env is readable by every user; it holds secrets: chmod 640 $etc/env"
fi

# --- check the configuration as the unit will ----------------------------------------------
# With what the unit gets: /etc/edge-agent/env read as systemd reads plain KEY=value lines (quotes
# around a value dropped, nothing expanded; never sourced as a script) and no variable of this
# shell. --offline: credentials under /run/credentials exist only while the unit runs.
clean_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
validate() {
    set --
    if [ -r "$etc/env" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in '' | '#'* | ';'*) continue ;; esac
            key=${line%%=*}
            [ "$key" != "$line" ] || continue
            key=$(printf '%s' "$key" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
            case $key in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
            value=$(printf '%s' "${line#*=}" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
            case $value in
                \"*\") value=${value#\"}; value=${value%\"} ;;
                \'*\') value=${value#\'}; value=${value%\'} ;;
            esac
            set -- "$@" "$key=$value"
        done <"$etc/env"
    fi
    if [ "$system" = yes ]; then
        # As the agent's user, in its working folder: also shows a file it could not read.
        (cd "$state" && runuser -u edge-agent -- env -i PATH="$clean_path" "$@" "$venv/bin/edge-agent" validate --offline "$etc/agent.yaml") 2>&1
    else
        (cd "$state" && env -i PATH="$clean_path" "$@" "$venv/bin/edge-agent" validate --offline "$etc/agent.yaml") 2>&1
    fi
}
say ""
say "Checking $etc/agent.yaml (with the variables of $etc/env):"
if validate; then config_ok=yes; else config_ok=no; fi

# --- start again, next steps -------------------------------------------------------------------
say ""
if [ "$was_active" = yes ]; then
    if [ "$config_ok" = yes ]; then
        systemctl start edge-agent
        say "edge-agent $version is installed and running again: systemctl status edge-agent"
        exit 0
    fi
    say "edge-agent $version is installed, but NOT started again: the configuration above does"
    say "not pass the check. Fix it, then: systemctl start edge-agent"
    exit 3
fi

say "edge-agent $version is installed."
if [ "$config_ok" = no ] && [ "$new_config" = yes ]; then
    say "The sample configuration does not pass the check yet (above): it needs your values."
elif [ "$config_ok" = no ]; then
    say "Your configuration does not pass the check (above): fix it before the agent starts."
fi
say "Next:"
if [ "$new_config" = yes ] || [ "$config_ok" = no ]; then
    say "  1. Edit $etc/agent.yaml (devices, tags, machines, sinks) and $etc/env"
    say "     (broker and database, every change-me), or keep secrets in /etc/credstore"
    say "     (README \"Security\"). A secret or CA file you put into $etc:"
    say "     chgrp edge-agent FILE; chmod 640 FILE."
    n=2
else
    n=1
fi
if [ "$system" = yes ]; then
    say "  $n. systemctl enable --now edge-agent"
    say "  $((n + 1)). systemctl status edge-agent; journalctl -u edge-agent -f (the unit checks the"
    say "     configuration before each start and logs what is wrong)"
else
    say "  $n. (a trial under $root: nothing was registered with systemd)"
fi
