#!/usr/bin/env bash
# agent-send.sh: send a message to an agent's tmux session, with the
# addressing preamble "[<src_host>:<src_session> -> <dst_host>:<dst_session>] ".
#
# Delivery is send-message.sh (next to this script) on the exact pane
# =<session>:0.0 of the named tmux server: one sender at a time per session
# (the queue mosaic-fleet shares), a wait until the program is ready,
# control characters refused, a verified paste and Enter. With -H
# user@host, send-message.sh itself is shipped over ssh (base64, no file is
# installed there) and run on that host, next to the target pane, where it
# takes that host's queue. Exit codes are send-message.sh's (2 for a usage
# error here; ssh's own failures come back as 255).
set -euo pipefail

readonly PROG=${0##*/}
readonly EXIT_USAGE=2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SEND_MESSAGE="$here/send-message.sh"

usage() {
    cat <<EOF
usage: $PROG -s session [-m text | -f file | text...] [-H user@host] [-n host]
       [-S source] [-L socket] [-r attempts] [-w secs] [-R secs] [-P regex]
       [-l] [-x] [-v]

Send "[<src_host>:<src_session> -> <dst_host>:<dst_session>] <message>" to the
pane =<session>:0.0 through send-message.sh. Without -m, -f or text words the
message is read from stdin. The sender is the agent this runs in (a pane on
the fleet's socket), else "operator".

  -s session  destination tmux session (required)
  -m text     the message
  -f file     read the message from file
  -H u@host   deliver on another host over ssh (send-message.sh is shipped along)
  -n host     destination host label (default: the host of -H, else this host)
  -S source   source label, replacing "<src_host>:<src_session>"
  -L socket   tmux socket name (default: \$MOSAIC_TMUX_SOCKET, else mosaic-fleet)
  -r N        Enter attempts (default 3)
  -w SECS     wait at most SECS for other senders to the session (default 60)
  -R SECS     wait at most SECS for the program to be ready (default 30)
  -P regex    ready when the screen matches this extended regex (grep -E)
  -l          the program is a plain line reader (one line, at most 4095 bytes)
  -x          strip control characters instead of refusing the message
  -v          report each step on stderr
  -h          this help
EOF
}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit "$EXIT_USAGE"
}

# POSIX single-quoting, for the command line ssh hands to the remote shell.
shell_quote() {
    local quoted=${1//\'/\'\\\'\'}
    printf "'%s'" "$quoted"
}

this_host() {
    local name
    name=$(hostname -s 2>/dev/null) || name=$(uname -n)
    printf '%s' "${name%%.*}"
}

# The agent this runs in: the session of the caller's pane when $TMUX is the
# fleet's own socket (-L) on this host; else "operator", so that an
# operator never speaks as an agent.
source_session() {
    local name='' fleet_socket
    fleet_socket="${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$socket"
    if [[ -n ${TMUX:-} && ${TMUX%%,*} -ef $fleet_socket ]]; then
        local query=(tmux -L "$socket" display-message -p)
        if [[ -n ${TMUX_PANE:-} ]]; then
            query+=(-t "$TMUX_PANE")
        fi
        name=$("${query[@]}" '#S' 2>/dev/null) || name=
    fi
    printf '%s' "${name:-operator}"
}

session=
text=
have_text=0
file=
remote=
dst_host=
source_label=
socket=${MOSAIC_TMUX_SOCKET:-mosaic-fleet}
attempts=3
passed=()
verbose=0

while getopts ':s:m:f:H:n:S:L:r:w:R:P:lxvh' opt; do
    case $opt in
    s) session=$OPTARG ;;
    m)
        text=$OPTARG
        have_text=1
        ;;
    f) file=$OPTARG ;;
    H) remote=$OPTARG ;;
    n) dst_host=$OPTARG ;;
    S) source_label=$OPTARG ;;
    L) socket=$OPTARG ;;
    r) attempts=$OPTARG ;;
    w | R | P) passed+=("-$opt" "$OPTARG") ;;
    l | x) passed+=("-$opt") ;;
    v) verbose=1 ;;
    h)
        usage
        exit 0
        ;;
    :) die "option -$OPTARG needs a value (see -h)" ;;
    *) die "unknown option -$OPTARG (see -h)" ;;
    esac
done
shift $((OPTIND - 1))

[[ -n $session ]] || die "missing -s session (see -h)"
[[ $session != *[:.]* ]] ||
    die "invalid session '$session': tmux session names cannot contain ':' or '.'"

sources=$((have_text + ($# > 0 ? 1 : 0)))
[[ -z $file ]] || sources=$((sources + 1))
((sources <= 1)) || die "give the message once: -m, -f or text words"
# The body goes to send-message.sh as base64 of its exact bytes: it checks
# them (control characters, NUL included, empty, size) and reports byte
# offsets in the body, not in the preamble.
if ((have_text)); then
    encoded=$(printf '%s' "$text" | base64 | tr -d '\n')
elif [[ -n $file ]]; then
    [[ -r $file ]] || die "cannot read message file '$file'"
    encoded=$(base64 <"$file" | tr -d '\n')
elif (($# > 0)); then
    encoded=$(printf '%s' "$*" | base64 | tr -d '\n')
elif [[ ! -t 0 ]]; then
    encoded=$(base64 | tr -d '\n')
else
    die "no message: use -m, -f, text words or stdin"
fi

if [[ -z $dst_host ]]; then
    if [[ -n $remote ]]; then
        dst_host=${remote##*@}
    else
        dst_host=$(this_host)
    fi
fi
if [[ -z $source_label ]]; then
    source_label="$(this_host):$(source_session)"
fi

args=(-L "$socket" -r "$attempts" "${passed[@]}" -t "=$session"
    -p "[$source_label -> $dst_host:$session] " -b "$encoded")
if ((verbose)); then
    args+=(-v)
    printf '%s: %s\n' "$PROG" "to =$session:0.0 on socket $socket${remote:+ at $remote}" >&2
fi

if [[ -z $remote ]]; then
    exec "$SEND_MESSAGE" "${args[@]}"
fi

script=$(base64 <"$SEND_MESSAGE" | tr -d '\n')
remote_command="bash -c \"\$(printf %s $(shell_quote "$script") | base64 -d)\" send-message.sh"
for arg in "${args[@]}"; do
    remote_command+=" $(shell_quote "$arg")"
done
exec ssh -n -T -o BatchMode=yes -- "$remote" "$remote_command"
