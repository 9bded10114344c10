#!/usr/bin/env bash
# start-agent-session.sh: start, or reuse, one agent's tmux session on the
# fleet's named tmux server. Idempotent: a live session named exactly <agent>
# is reused, never replaced.
#
# Settings come from the environment (systemd's EnvironmentFile=) or, when
# MOSAIC_AGENT_RUNTIME is unset, from the agent's env file
# ${MOSAIC_HOME:-~/.config/mosaic}/fleet/agents/<agent>.env and then the
# operator's <agent>.local.env beside it; every variable <agent>.local.env
# sets is passed into the agent's pane. The pane's PATH starts with the
# runtime directories (Mosaic #581: the user manager's PATH has no
# ~/.npm-global/bin), and a command whose program is not on it fails the
# start, naming the command and that PATH. With --supervise the script then
# watches the session and exits 1 once it is gone, so that systemd restarts
# the agent; it exits 0 on SIGTERM. With --pidfile too (how
# mosaic-agent@.service runs it, Type=forking) the watcher runs in the
# background, its pid in the file, and the script returns once the session
# exists.
#
# Exit codes: 0 started or reused (or stopped by SIGTERM under --supervise);
# 1 the supervised session ended; 2 usage error, invalid agent name or
# settings; 3 no tmux server on the socket (holder not running); 4 the
# workdir or tmux failed; 5 the command's program is not on the pane's PATH.
# See README.md next to this script.
set -euo pipefail

readonly PROG=${0##*/}
readonly EXIT_GONE=1 EXIT_USAGE=2 EXIT_NO_HOLDER=3 EXIT_FAILED=4 EXIT_NOT_FOUND=5

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
  MOSAIC_AGENT_CLASS     optional persona class, passed to the pane
  MOSAIC_AGENT_WORKDIR   working directory (default ~/src; created if missing)
  MOSAIC_AGENT_COMMAND   command to run (default: mosaic yolo <runtime> [--model <model>])
  MOSAIC_TMUX_SOCKET     tmux socket name (default mosaic-fleet)
  MOSAIC_RUNTIME_PATH    directories put first on the pane's PATH (mosaic-install
                         resolves them); MOSAIC_RUNTIME_BIN, ~/.npm-global/bin and
                         ~/.local/bin follow when they exist
  MOSAIC_HOME            Mosaic tree (default \${XDG_CONFIG_HOME:-~/.config}/mosaic)
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

agents_dir="${MOSAIC_HOME:-${XDG_CONFIG_HOME:-$HOME/.config}/mosaic}/fleet/agents"
env_file="$agents_dir/$agent.env"
# The operator's overrides: read after the generated file (as the unit's
# second EnvironmentFile= does), and every variable they set reaches the pane.
local_file="$agents_dir/$agent.local.env"
if [[ -z ${MOSAIC_AGENT_RUNTIME:-} ]]; then
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
        die "$EXIT_USAGE" "no MOSAIC_AGENT_RUNTIME (or MOSAIC_AGENT_COMMAND) for agent '$agent'; set it in its env file $env_file"
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

# The pane's PATH: the runtime directories mosaic-install resolved, then
# those that exist now (installed since), then this process's PATH.
pane_path=
path_add() {
    local existing_only=$1 dir
    local -a dirs
    IFS=: read -r -a dirs <<<"$2"
    for dir in "${dirs[@]}"; do
        [[ -n $dir ]] || continue
        ((!existing_only)) || [[ -d $dir ]] || continue
        case ":$pane_path:" in
        *":$dir:"*) ;;
        *) pane_path=${pane_path:+$pane_path:}$dir ;;
        esac
    done
}
path_add 1 "${MOSAIC_RUNTIME_PATH:-}"
path_add 1 "${MOSAIC_RUNTIME_BIN:-}"
path_add 1 "$HOME/.npm-global/bin:$HOME/.local/bin"
path_add 0 "${PATH:-}"

# Why the command's program cannot run, or nothing. The same rules as
# mosaic-fleet's check: a first word that is shell syntax or a shell builtin
# is left to the shell; one with a '/' must be an executable file; any other
# must be an executable file in a directory of the pane's PATH.
program_problem() {
    local word program dir
    local -a dirs
    read -r word _ <<<"$command"
    case $word in
    '' | exec | cd | . | : | eval | export | set | unset | trap | if | for | while | until | case | time | '!' | '{' | '(' | '[[' | command | builtin | source) return 0 ;;
    *[\$\'\"\`\\=\;\&\|\<\>\(\)\{\}\*\?\[\]\#]*) return 0 ;;
    esac
    program=$word
    case $program in
    \~) program=$HOME ;;
    \~/*) program="$HOME/${program#\~/}" ;;
    \~*) return 0 ;; # ~user: the shell's to expand
    esac
    if [[ $program == */* ]]; then
        [[ -f $program && -x $program ]] || echo "'$word', which is not an executable file"
        return 0
    fi
    IFS=: read -r -a dirs <<<"$pane_path"
    for dir in "${dirs[@]}"; do
        [[ -n $dir && -f $dir/$program && -x $dir/$program ]] && return 0
    done
    echo "'$program', which is not on the pane's PATH ($pane_path)"
}

session_env=(-e "MOSAIC_AGENT_NAME=$agent" -e "MOSAIC_TMUX_SOCKET=$socket" -e "PATH=$pane_path")
if [[ -n $runtime ]]; then
    session_env+=(-e "MOSAIC_AGENT_RUNTIME=$runtime")
fi
if [[ -n $model ]]; then
    session_env+=(-e "MOSAIC_AGENT_MODEL=$model")
fi
if [[ -n ${MOSAIC_AGENT_CLASS:-} ]]; then
    session_env+=(-e "MOSAIC_AGENT_CLASS=$MOSAIC_AGENT_CLASS")
fi
if [[ -n ${MOSAIC_HOME:-} ]]; then
    session_env+=(-e "MOSAIC_HOME=$MOSAIC_HOME")
fi
for name in "${local_names[@]}"; do
    if [[ -n ${!name+set} ]]; then
        session_env+=(-e "$name=${!name}")
    fi
done
# A live session is reused whatever its program; a new one needs its
# program on the pane's PATH.
problem=$(program_problem)
if [[ -n $problem ]] && ! tmux -L "$socket" has-session -t "=$agent" 2>/dev/null; then
    tmux -L "$socket" list-sessions >/dev/null 2>&1 ||
        die "$EXIT_NO_HOLDER" "no tmux server on socket '$socket': start the holder first with: systemctl --user start mosaic-tmux-holder.service"
    die "$EXIT_NOT_FOUND" "agent '$agent' cannot start: its command '$command' runs $problem; install it (the mosaic CLI: npm install -g @mosaicstack/mosaic), or name its directory in MOSAIC_RUNTIME_BIN and run mosaic-install again, or set MOSAIC_AGENT_COMMAND in $env_file"
fi
# One tmux call on the usual path: -N (tmux 3.2 and later) never starts a
# server, so without the holder this fails rather than start a stray server
# outside it. When it fails, the server's session names tell why: no server
# (the holder is not running), the session is there (reused), or a tmux
# without -N (now that a server is known to run, created without it). tmux
# gives a new pane the PATH of the client that creates it, over -e.
if PATH=$pane_path tmux -L "$socket" -N new-session -d -s "$agent" -c "$workdir" "${session_env[@]}" "$command" 2>/dev/null; then
    echo "started session $agent on tmux socket $socket in $workdir with PATH $pane_path"
else
    sessions=$(tmux -L "$socket" list-sessions -F '#{session_name}' 2>/dev/null) ||
        die "$EXIT_NO_HOLDER" "no tmux server on socket '$socket': start the holder first with: systemctl --user start mosaic-tmux-holder.service"
    if [[ $'\n'$sessions$'\n' == *$'\n'$agent$'\n'* ]]; then
        echo "reusing session $agent on tmux socket $socket"
    elif PATH=$pane_path tmux -L "$socket" new-session -d -s "$agent" -c "$workdir" "${session_env[@]}" "$command"; then
        echo "started session $agent on tmux socket $socket in $workdir with PATH $pane_path"
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
