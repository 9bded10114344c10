#!/usr/bin/env bash
# agent-send.sh: send a message to an agent's tmux session, with the
# addressing preamble "[<src_host>:<src_session> -> <dst_host>:<dst_session>] ".
#
# Delivery is send-message.sh (next to this script) on the exact pane
# =<session>:0.0 of the named tmux server. With -H user@host, send-message.sh
# itself is shipped over ssh (base64, no file is installed there) and run on
# that host, next to the target pane. Exit codes are send-message.sh's (2 for
# a usage error here; ssh's own failures come back as 255).
set -euo pipefail

readonly PROG=${0##*/}
readonly EXIT_USAGE=2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SEND_MESSAGE="$here/send-message.sh"

usage() {
    cat <<EOF
usage: $PROG -s session [-m text | -f file | text...] [-H user@host] [-n host]
       [-S source] [-L socket] [-r attempts] [-v]

Send "[<src_host>:<src_session> -> <dst_host>:<dst_session>] <message>" to the
pane =<session>:0.0 through send-message.sh. Without -m, -f or text words the
message is read from stdin.

  -s session  destination tmux session (required)
  -m text     the message
  -f file     read the message from file
  -H u@host   deliver on another host over ssh (send-message.sh is shipped along)
  -n host     destination host label (default: the host of -H, else this host)
  -S source   source label, replacing "<src_host>:<src_session>"
  -L socket   tmux socket name (default: \$MOSAIC_TMUX_SOCKET, else mosaic-fleet)
  -r N        Enter attempts (default 3)
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

# The caller's own tmux session when it runs inside tmux (its server is the
# one $TMUX names, whatever socket that is), else the user name.
source_session() {
    local name=
    if [[ -n ${TMUX:-} ]]; then
        local query=(tmux -S "${TMUX%%,*}" display-message -p)
        if [[ -n ${TMUX_PANE:-} ]]; then
            query+=(-t "$TMUX_PANE")
        fi
        name=$("${query[@]}" '#S' 2>/dev/null) || name=
    fi
    if [[ -z $name ]]; then
        name=${USER:-${LOGNAME:-$(id -un 2>/dev/null || printf shell)}}
    fi
    printf '%s' "$name"
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
verbose=0

while getopts ':s:m:f:H:n:S:L:r:vh' opt; do
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
if ((have_text)); then
    body=$text
elif [[ -n $file ]]; then
    [[ -r $file ]] || die "cannot read message file '$file'"
    body=$(<"$file")
elif (($# > 0)); then
    body="$*"
elif [[ ! -t 0 ]]; then
    body=$(cat)
else
    die "no message: use -m, -f, text words or stdin"
fi
[[ -n ${body//[[:space:]]/} ]] || die "the message is empty"

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

message="[$source_label -> $dst_host:$session] $body"
encoded=$(printf '%s' "$message" | base64 | tr -d '\n')
args=(-L "$socket" -r "$attempts" -t "=$session" -b "$encoded")
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
