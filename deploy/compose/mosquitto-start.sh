#!/bin/sh
# Starts the stack's broker (deploy/compose.yaml runs it as the mosquitto service's command, as
# root; mosquitto itself then drops to its own user). Before each start it writes, on the
# `mosquitto-auth` volume:
#   passwd          the accounts this stack manages, hashed, from the compose secrets:
#                     <EDGE_AGENT_ID>  the agent (deploy/mosquitto.acl: its own topics only)
#                     historian        a read-only account for people and tools (mosquitto_sub)
#                     healthcheck      for the container's health check, a new random password
#                                      at every start
#                   Accounts added by hand (mosquitto_passwd on the running broker, for the
#                   operator and engineer accounts of deploy/mosquitto.acl) are kept.
#   edge-agent.acl  deploy/mosquitto.acl, owned by mosquitto and 0600: mosquitto warns about an
#                   ACL file others can read or that it does not own, and says future versions
#                   will refuse one.
# Then it runs the command it was given (mosquitto). Changed passwords in deploy/compose/.env or
# a changed ACL take effect at the next start of the container.
# The paths can be moved with the variables below (tests/deploy/test_compose.py runs the script
# outside a container).
set -eu

auth_dir=${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}
secrets_dir=${MOSQUITTO_SECRETS_DIR:-/run/secrets}
acl_template=${MOSQUITTO_ACL_TEMPLATE:-/etc/mosquitto/edge-agent.acl}
agent=${EDGE_AGENT_ID:?EDGE_AGENT_ID (the agent id and its MQTT account) is not set}

fail() {
    echo "mosquitto-start: $*" >&2
    exit 1
}

# A secret as compose wrote it; an empty one or the placeholder is refused here, before the
# broker takes it as a password.
secret() {
    [ -r "$secrets_dir/$1" ] || fail "cannot read $secrets_dir/$1 (the compose secret from $2)"
    value=$(cat "$secrets_dir/$1")
    case "$value" in
        "" | change-me | CHANGE-ME | changeme) fail "$2 is empty or a placeholder: set it in deploy/compose/.env" ;;
    esac
    printf '%s' "$value"
}

case "$agent" in
    *:* | "") fail "EDGE_AGENT_ID '$agent' cannot be an MQTT account name" ;;
esac
agent_password=$(secret mqtt_password MQTT_PASSWORD)
reader_password=$(secret mqtt_reader_password MQTT_READER_PASSWORD)
health_password=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
[ -r "$acl_template" ] || fail "cannot read the ACL $acl_template (deploy/mosquitto.acl)"

umask 077
mkdir -p "$auth_dir"
work=$(mktemp -d)
# The plain-text passwords stay in the container's own /tmp, never on the volume, and only until
# mosquitto_passwd has hashed them.
printf '%s:%s\nhistorian:%s\nhealthcheck:%s\n' \
    "$agent" "$agent_password" "$reader_password" "$health_password" >"$work/managed"
mosquitto_passwd -U "$work/managed" >/dev/null
: >"$auth_dir/passwd.new"
if [ -f "$auth_dir/passwd" ]; then
    awk -F: -v agent="$agent" '$1 != agent && $1 != "historian" && $1 != "healthcheck"' \
        "$auth_dir/passwd" >>"$auth_dir/passwd.new"
fi
cat "$work/managed" >>"$auth_dir/passwd.new"
rm -rf "$work"
cp "$acl_template" "$auth_dir/edge-agent.acl.new"
printf '%s' "$health_password" >"$auth_dir/healthcheck.password"

# mosquitto reads both files after it has dropped root.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto:mosquitto "$auth_dir/passwd.new" "$auth_dir/edge-agent.acl.new"
fi
mv "$auth_dir/passwd.new" "$auth_dir/passwd"
mv "$auth_dir/edge-agent.acl.new" "$auth_dir/edge-agent.acl"

exec "$@"
