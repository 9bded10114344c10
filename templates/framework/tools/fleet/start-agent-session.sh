#!/usr/bin/env bash
# start-agent-session.sh: start, or reuse, one agent's tmux session on the
# fleet's named tmux server. Idempotent: a live session named exactly <agent>
# is reused, never replaced.
#
# Settings come from the environment (systemd's EnvironmentFile=) or, when
# MOSAIC_AGENT_RUNTIME is unset, from the agent's env file
# ~/.config/mosaic/fleet/agents/<agent>.env and then the operator's
# <agent>.local.env beside it; every variable <agent>.local.env sets is
# passed into the agent's pane. With --supervise the script then watches
# the session and exits 1 once it is gone, so that systemd restarts the
# agent; it exits 0 on SIGTERM. With --pidfile too (how
# mosaic-agent@.service runs it, Type=forking) the watcher runs in the
# background, its pid in the file, and the script returns once the session
# exists.
#
# Exit codes: 0 started or reused (or stopped by SIGTERM under --supervise);
# 1 the supervised session ended; 2 usage error, invalid agent name or
# settings; 3 no tmux server on the socket (holder not running); 4 the
# workdir or tmux failed. See README.md next to this script.
set -euo pipefail

readonly PROG=${0##*/}
readonly EXIT_GONE=1 EXIT_USAGE=2 EXIT_NO_HOLDER=3 EXIT_FAILED=4

usage() {
    cat <<EOF
usage: $PROG [--supervise [--pidfile FILE]] <agent>

Start the tmux session <agent> on the fleet's named tmux server, or reuse it.

  --supervise       then watch the session: exit 1 when it is gone (systemd
                    then restarts the unit), 0 on SIGTERM
  --pidfile FILE    with --supervise: watch in the background, write the
                    watcher's pid to FILE and return (systemd's Type=forking)
  -h, --help        this help

Environment (else read from the agent's env file when MOSAIC_AGENT_RUNTIME is unset):
  MOSAIC_AGENT_RUNTIME   claude, codex, opencode, pi, ...
  MOSAIC_AGENT_MODEL     optional model passed as --model
  MOSAIC_AGENT_WORKDIR   working directory (default ~/src; created if missing)
  MOSAIC_AGENT_COMMAND   command to run (default: mosaic yolo <runtime> [--model <model>])
  MOSAIC_TMUX_SOCKET     tmux socket name (default mosaic-fleet)
  MOSAIC_CONFIG_DIR      Mosaic tree (default \${XDG_CONFIG_HOME:-~/.config}/mosaic)
EOF
}

die() {
    local code=$1
    shift
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit "$code"
}

# The roster's rule: a name that is at once a valid tmux session, systemd
# instance and file name, and that tmux keeps exactly as given. Sets
# `problem` (empty when the name is fine) rather than printing it: no
# subshell, on a path every agent start takes.
name_problem() {
    local name=$1 LC_ALL=C
    problem=
    case $name in
    '') problem="is empty" ;;
    *.*) problem="contains '.': tmux silently renames a session called 'a.b' to 'a_b', so the exact-match stop (kill-session -t =NAME) would miss it" ;;
    *:*) problem="contains ':', which tmux reads as the session:window separator in targets" ;;
    -*) problem="starts with '-', which tmux and systemctl would read as an option" ;;
    *)
        if ((${#name} > 64)); then
            problem="is ${#name} characters long; at most 64 are allowed"
        elif [[ ! $name =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$ ]]; then
            problem="may only contain ASCII letters, digits, '_' and '-'"
        fi
        ;;
    esac
}

supervise=0
pidfile=
agent=
while (($# > 0)); do
    case $1 in
    --supervise) supervise=1 ;;
    --pidfile)
        (($# > 1)) || die "$EXIT_USAGE" "--pidfile needs a file (see --help)"
        pidfile=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        break
        ;;
    -?*) die "$EXIT_USAGE" "unknown option '$1' (see --help)" ;;
    *) break ;;
    esac
    shift
done
(($# == 1)) || die "$EXIT_USAGE" "expected exactly one agent name (see --help)"
[[ -z $pidfile ]] || ((supervise)) || die "$EXIT_USAGE" "--pidfile only goes with --supervise (see --help)"
agent=$1
name_problem "$agent"
[[ -z $problem ]] || die "$EXIT_USAGE" "invalid agent name '$agent': it $problem"

agents_dir="${MOSAIC_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/mosaic}/fleet/agents"
# The operator's overrides: read after the generated file (as the unit's
# second EnvironmentFile= does), and every variable they set reaches the pane.
local_file="$agents_dir/$agent.local.env"
if [[ -z ${MOSAIC_AGENT_RUNTIME:-} ]]; then
    env_file="$agents_dir/$agent.env"
    for file in "$env_file" "$local_file"; do
        if [[ -f $file ]]; then
            # shellcheck source=/dev/null
            source "$file" || die "$EXIT_USAGE" "cannot read $file"
        fi
    done
fi
local_names=()
if [[ -f $local_file ]]; then
    while IFS= read -r line; do
        if [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)= ]]; then
            local_names+=("${BASH_REMATCH[2]}")
        fi
    done <"$local_file"
fi

socket=${MOSAIC_TMUX_SOCKET:-mosaic-fleet}
[[ $socket != */* ]] || die "$EXIT_USAGE" "invalid MOSAIC_TMUX_SOCKET '$socket': a socket name, not a path"
runtime=${MOSAIC_AGENT_RUNTIME:-}
model=${MOSAIC_AGENT_MODEL:-}
command=${MOSAIC_AGENT_COMMAND:-}
if [[ -z $command ]]; then
    [[ -n $runtime ]] ||
        die "$EXIT_USAGE" "no MOSAIC_AGENT_RUNTIME (or MOSAIC_AGENT_COMMAND) for agent '$agent'; set it in its env file ${env_file:-(environment given)}"
    command="mosaic yolo $(printf '%q' "$runtime")"
    if [[ -n $model ]]; then
        command+=" --model $(printf '%q' "$model")"
    fi
fi

workdir=${MOSAIC_AGENT_WORKDIR:-~/src}
case $workdir in
\~) workdir=$HOME ;;
\~/*) workdir="$HOME/${workdir#\~/}" ;;
esac
if [[ ! -d $workdir ]]; then
    mkdir -p -- "$workdir" 2>/dev/null ||
        die "$EXIT_FAILED" "cannot create the workdir '$workdir' of agent '$agent' (MOSAIC_AGENT_WORKDIR)"
fi

session_env=(-e "MOSAIC_AGENT_NAME=$agent" -e "MOSAIC_TMUX_SOCKET=$socket")
if [[ -n $runtime ]]; then
    session_env+=(-e "MOSAIC_AGENT_RUNTIME=$runtime")
fi
if [[ -n $model ]]; then
    session_env+=(-e "MOSAIC_AGENT_MODEL=$model")
fi
for name in "${local_names[@]}"; do
    if [[ -n ${!name+set} ]]; then
        session_env+=(-e "$name=${!name}")
    fi
done
# One tmux call on the usual path: -N (tmux 3.2 and later) never starts a
# server, so without the holder this fails rather than start a stray server
# outside it. When it fails, the server's session names tell why: no server
# (the holder is not running), the session is there (reused), or a tmux
# without -N (now that a server is known to run, created without it).
if tmux -L "$socket" -N new-session -d -s "$agent" -c "$workdir" "${session_env[@]}" "$command" 2>/dev/null; then
    echo "started session $agent on tmux socket $socket in $workdir"
else
    sessions=$(tmux -L "$socket" list-sessions -F '#{session_name}' 2>/dev/null) ||
        die "$EXIT_NO_HOLDER" "no tmux server on socket '$socket': start the holder first with: systemctl --user start mosaic-tmux-holder.service"
    if [[ $'\n'$sessions$'\n' == *$'\n'$agent$'\n'* ]]; then
        echo "reusing session $agent on tmux socket $socket"
    elif tmux -L "$socket" new-session -d -s "$agent" -c "$workdir" "${session_env[@]}" "$command"; then
        echo "started session $agent on tmux socket $socket in $workdir"
    elif tmux -L "$socket" has-session -t "=$agent" 2>/dev/null; then
        # Another start won the race; the session is there all the same.
        echo "reusing session $agent on tmux socket $socket"
    else
        die "$EXIT_FAILED" "tmux could not create session '$agent' on socket '$socket'"
    fi
fi

((supervise)) || exit 0

# Supervision: poll once a second. On SIGTERM (systemctl stop) leave quietly;
# when the session is gone, wait one more second first, because a stop runs
# ExecStop (which kills the session) just before it sends SIGTERM. systemd
# signals the sleeper too, so it may be gone already: that is no error.
watch() {
    local sleeper=
    trap '[[ -z $sleeper ]] || kill "$sleeper" 2>/dev/null || true; exit 0' TERM
    pause() {
        sleep 1 &
        sleeper=$!
        wait "$sleeper" || true
        sleeper=
    }
    pause
    while tmux -L "$socket" has-session -t "=$agent" 2>/dev/null; do
        pause
    done
    pause
    if tmux -L "$socket" list-sessions >/dev/null 2>&1; then
        die "$EXIT_GONE" "session $agent on tmux socket $socket is gone (its program exited or the session was killed); exiting so that the service restarts it"
    fi
    die "$EXIT_GONE" "the tmux server on socket $socket is gone, and with it session $agent; exiting so that the service restarts it"
}

[[ -n $pidfile ]] || watch
watch </dev/null &
watcher=$!
if ! printf '%s\n' "$watcher" >"$pidfile"; then
    kill "$watcher" 2>/dev/null || true
    die "$EXIT_FAILED" "cannot write the watcher's pid to '$pidfile'"
fi
