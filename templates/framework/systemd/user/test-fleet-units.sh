#!/usr/bin/env bash
# test-fleet-units.sh [UNIT_DIR]: check the installed fleet units and act out
# their Exec lines against a real tmux server on a throwaway named socket.
#
# UNIT_DIR defaults to ${XDG_CONFIG_HOME:-~/.config}/systemd/user. The units'
# %h is $HOME, so the start script they name must be installed there. Checks
# the holder and agent units' directives, runs `systemd-analyze --user verify`
# when it is installed, then starts the holder and agents agent-1 and agent-10
# the way the units do and stops agent-1 the way its unit does, to show that
# agent-10 survives. Safe to run anywhere: its own TMUX_TMPDIR and socket (it
# rewrites the units' socket to it), nothing else is touched, and only its own
# server is killed on exit. Prints "ok - <name>" per check, stops at the first
# failure.
set -euo pipefail

unit_dir=${1:-${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user}
holder="$unit_dir/mosaic-tmux-holder.service"
agent="$unit_dir/mosaic-agent@.service"
# The self-tests' harness, in the tools/selftest/ of the same tree.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../../tools/selftest/lib.sh
source "$here/../../tools/selftest/lib.sh"
selftest_begin
runtime_dir="$work/run"
mkdir -m 0700 "$runtime_dir"
declare -A supervisor=()

selftest_cleanup() {
    local pid
    for pid in "${supervisor[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}

# The values of `key=` in a unit file, one per line, in order.
directive() {
    sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1"
}

has_session() {
    tmux -L "$socket" has-session -t "=$1" 2>/dev/null
}

# A value with the specifiers systemd fills in for instance $2 (%i %I %h
# %t %%) substituted; %t, the runtime directory, is this test's.
specifiers() {
    local line=$1 instance=$2 rest=
    while [[ $line == *%* ]]; do
        rest+=${line%%%*}
        line=${line#*%}
        case ${line:0:1} in
        i | I) rest+=$instance ;;
        h) rest+=$HOME ;;
        t) rest+=$runtime_dir ;;
        %) rest+=% ;;
        *) fail "unsupported specifier %${line:0:1} in: $1" ;;
        esac
        line=${line:1}
    done
    printf '%s' "$rest$line"
}

# An Exec line as the words systemd would run for instance $2: prefixes
# (-@:+!) dropped, specifiers and ${MOSAIC_TMUX_SOCKET} substituted, and the
# socket of every `tmux -L` rewritten to this test's. Result in $words.
exec_words() {
    local line=$1 instance=$2
    while [[ $line == [-@:+!]* ]]; do
        line=${line:1}
    done
    line=$(specifiers "$line" "$instance")
    line=${line//"\${MOSAIC_TMUX_SOCKET}"/$socket}
    line=${line//"\$MOSAIC_TMUX_SOCKET"/$socket}
    [[ $line != *'$'* ]] || fail "unexpected variable in: $1"
    mapfile -d '' -t words < <(xargs printf '%s\0' <<<"$line")
    local i
    for ((i = 0; i < ${#words[@]}; i++)); do
        if [[ ${words[i]} == -L ]] && ((i + 1 < ${#words[@]})); then
            words[i + 1]=$socket
        fi
    done
}

# Every tmux command line of a unit names its server with -L.
tmux_lines_use_socket() {
    local line
    while IFS= read -r line; do
        [[ $line == *tmux\ -L\ * ]] || fail "$1: tmux without -L <socket>: $line"
    done < <(grep -E '^[[:space:]]*Exec[A-Za-z]*=.*tmux' "$1")
}

t_units_present() {
    [[ -f $holder ]] || fail "missing $holder"
    [[ -f $agent ]] || fail "missing $agent"
}

t_holder_named_socket() {
    tmux_lines_use_socket "$holder"
    directive "$holder" ExecStart | grep -Eq 'tmux -L [^ ]+( -f [^ ]+)? new-session -d' ||
        fail "holder ExecStart does not start a detached session on a named socket"
    directive "$holder" ExecStop | grep -q 'tmux -L [^ ]* kill-server' ||
        fail "holder ExecStop does not stop its named server"
    [[ $(directive "$holder" Restart) == always ]] ||
        fail "holder Restart= is not always: a server that ends cleanly (kill-server) would stay down"
}

t_agent_follows_holder() {
    local key
    for key in Requires After PartOf; do
        directive "$agent" "$key" | grep -qw 'mosaic-tmux-holder\.service' ||
            fail "agent unit lacks $key=mosaic-tmux-holder.service"
    done
}

t_agent_env_file() {
    directive "$agent" EnvironmentFile | grep -q '^-.*/fleet/agents/%i\.env$' ||
        fail "agent unit lacks EnvironmentFile=-.../fleet/agents/%i.env"
}

t_agent_exec() {
    tmux_lines_use_socket "$agent"
    directive "$agent" ExecStart | grep -q '/tools/fleet/start-agent-session\.sh .*%i$' ||
        fail "agent ExecStart does not run start-agent-session.sh for %i"
    directive "$agent" ExecStop | grep -qE 'tmux -L [^ ]+ kill-session -t "?=%i"?$' ||
        fail "agent ExecStop is not an exact-match kill-session -t \"=%i\" on a named socket"
    directive "$agent" Restart | grep -qE '^(always|on-failure)$' ||
        fail "agent unit has no Restart= policy"
    [[ $(directive "$agent" Type) == forking ]] ||
        fail "agent unit is not Type=forking: start-agent-session.sh --pidfile returns once the session exists"
    local pidfile
    pidfile=$(directive "$agent" PIDFile)
    directive "$agent" ExecStart | grep -qF -- "--pidfile $pidfile " ||
        fail "agent ExecStart does not write the PIDFile= ($pidfile) systemd reads"
}

t_systemd_verify() {
    local runtime=${XDG_RUNTIME_DIR:-}
    if [[ -z $runtime ]]; then
        runtime="$work/runtime"
        mkdir -m 0700 "$runtime"
    fi
    local out status=0
    out=$(XDG_RUNTIME_DIR=$runtime SYSTEMD_UNIT_PATH="$unit_dir:" \
        systemd-analyze --user verify "$holder" "$agent" 2>&1) || status=$?
    ((status == 0)) || fail "systemd-analyze --user verify failed ($status): $out"
    [[ -z $out ]] || fail "systemd-analyze --user verify warns: $out"
}

# Runs the agent's ExecStart as systemd would (Type=forking: it returns once
# the session exists) and notes its watcher, the pid in its PIDFile=.
start_agent() {
    exec_words "$(directive "$agent" ExecStart)" "$1"
    MOSAIC_TMUX_SOCKET=$socket MOSAIC_AGENT_RUNTIME=test MOSAIC_AGENT_WORKDIR=$work \
        MOSAIC_AGENT_COMMAND="sleep 3600" "${words[@]}" >"$work/$1.out" 2>&1 ||
        fail "ExecStart of $1 failed: $(cat "$work/$1.out")"
    has_session "$1" || fail "ExecStart of $1 returned before its session existed"
    local pidfile
    pidfile=$(specifiers "$(directive "$agent" PIDFile)" "$1")
    supervisor[$1]=$(<"$pidfile")
    kill -0 "${supervisor[$1]}" 2>/dev/null || fail "no watcher of $1 runs (pid file $pidfile)"
}

watcher_gone() {
    ! kill -0 "$1" 2>/dev/null
}

t_simulate_exact_stop() {
    exec_words "$(directive "$holder" ExecStart)" ""
    "${words[@]}" || fail "holder ExecStart failed"
    start_agent agent-1
    start_agent agent-10
    exec_words "$(directive "$agent" ExecStop)" agent-1
    "${words[@]}" || fail "ExecStop of agent-1 failed"
    ! has_session agent-1 || fail "agent-1 is still there after its ExecStop"
    has_session agent-10 || fail "stopping agent-1 killed agent-10"
    # systemd then sends SIGTERM to the stopped unit's watcher (its exit
    # status on SIGTERM is test-start-agent-session.sh's to check).
    kill -TERM "${supervisor[agent-1]}"
    wait_until watcher_gone "${supervisor[agent-1]}" || fail "agent-1's watcher ignored SIGTERM"
    kill -0 "${supervisor[agent-10]}" 2>/dev/null || fail "agent-10's watcher died"
    has_session agent-10 || fail "agent-10 did not survive"
}

t_simulate_holder_stop() {
    exec_words "$(directive "$holder" ExecStop)" ""
    "${words[@]}" || fail "holder ExecStop failed"
    ! tmux -L "$socket" list-sessions >/dev/null 2>&1 || fail "the named server survived the holder's stop"
    wait_until watcher_gone "${supervisor[agent-10]}" ||
        fail "agent-10's watcher still runs with the server gone"
    grep -q "the tmux server on socket $socket is gone" "$work/agent-10.out" ||
        fail "agent-10's watcher did not say why it exits: $(cat "$work/agent-10.out")"
}

check "holder and agent units are installed in $unit_dir" t_units_present
check "holder runs and stops only its named tmux server" t_holder_named_socket
check "agent unit requires, follows and is part of the holder" t_agent_follows_holder
check "agent unit reads the agent's env file, if any" t_agent_env_file
check "agent unit starts through start-agent-session.sh and stops =%i exactly" t_agent_exec
if command -v systemd-analyze >/dev/null 2>&1; then
    check "systemd-analyze --user verify passes without warnings" t_systemd_verify
else
    printf 'ok - systemd-analyze --user verify # SKIP systemd-analyze is not installed\n'
fi
check "ExecStop of agent-1 leaves agent-10 running" t_simulate_exact_stop
check "holder ExecStop ends the named server, and the watchers notice" t_simulate_holder_stop
