#!/usr/bin/env bash
# send-message.sh: submit a text into one tmux pane, reliably.
#
# The text goes in as one bracketed paste (through a uniquely named tmux
# buffer, deleted after use), then Enter is pressed, and pressed again with a
# growing pause for as long as the text still sits on the pane's input line
# as an unsubmitted draft. Only the named tmux server given by -L (or
# $MOSAIC_TMUX_SOCKET, or mosaic-fleet) is ever addressed.
#
# Exit codes: 0 submitted; 1 still a draft after the Enter attempts;
# 2 usage error; 3 no tmux server on the socket, or no such pane;
# 4 a tmux command failed. See README.md next to this script.
set -euo pipefail

readonly PROG=${0##*/}
readonly EXIT_DRAFT=1 EXIT_USAGE=2 EXIT_NO_TARGET=3 EXIT_TMUX=4

usage() {
    cat <<EOF
usage: $PROG [-L socket] [-r attempts] [-v] -t target [message...]
       $PROG [-L socket] [-r attempts] [-v] -t target -b base64
       command | $PROG [-L socket] [-r attempts] [-v] -t target

Submit a message into a tmux pane: bracketed paste, then Enter, retried
while the text is still an unsubmitted draft on the pane's input line.

  -t target   tmux target pane; '=session' means the exact pane '=session:0.0'
  -b base64   the message, base64-encoded (safe through ssh and any quoting)
  -L socket   tmux socket name (default: \$MOSAIC_TMUX_SOCKET, else mosaic-fleet)
  -r N        Enter attempts before giving up (default 3)
  -v          report each step on stderr
  -h          this help

Without -b the message is the arguments joined by spaces, or else stdin.
Trailing newlines are dropped: Enter is what submits.

Exit codes: 0 submitted, 1 still a draft, 2 usage, 3 no server or pane,
4 tmux failed.
EOF
}

die() {
    local code=$1
    shift
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit "$code"
}

verbose=0
log() {
    if ((verbose)); then
        printf '%s: %s\n' "$PROG" "$*" >&2
    fi
}

socket=${MOSAIC_TMUX_SOCKET:-mosaic-fleet}
attempts=3
target=
encoded=
have_encoded=0

while getopts ':L:b:r:t:vh' opt; do
    case $opt in
    L) socket=$OPTARG ;;
    b)
        encoded=$OPTARG
        have_encoded=1
        ;;
    r) attempts=$OPTARG ;;
    t) target=$OPTARG ;;
    v) verbose=1 ;;
    h)
        usage
        exit 0
        ;;
    :) die "$EXIT_USAGE" "option -$OPTARG needs a value (see -h)" ;;
    *) die "$EXIT_USAGE" "unknown option -$OPTARG (see -h)" ;;
    esac
done
shift $((OPTIND - 1))

[[ -n $target ]] || die "$EXIT_USAGE" "missing -t target (see -h)"
[[ -n $socket && $socket != */* ]] ||
    die "$EXIT_USAGE" "invalid socket name '$socket': -L takes a name, not a path"
[[ $attempts =~ ^[1-9][0-9]{0,2}$ ]] ||
    die "$EXIT_USAGE" "invalid -r '$attempts': give a number of Enter attempts from 1 to 999"

if ((have_encoded)); then
    (($# == 0)) || die "$EXIT_USAGE" "give the message either with -b or as arguments, not both"
    message=$(printf '%s' "$encoded" | base64 -d 2>/dev/null) ||
        die "$EXIT_USAGE" "-b: the message is not valid base64"
elif (($# > 0)); then
    message="$*"
elif [[ ! -t 0 ]]; then
    message=$(cat)
else
    die "$EXIT_USAGE" "no message: pass it as arguments, on stdin, or with -b"
fi
[[ -n ${message//[[:space:]]/} ]] || die "$EXIT_USAGE" "the message is empty"

# '=session' alone would mean the session's *current* pane; the fleet's
# convention is its first pane, addressed exactly.
if [[ $target == =* && $target != *[:.]* ]]; then
    target="$target:0.0"
fi

tmux -L "$socket" list-sessions >/dev/null 2>&1 ||
    die "$EXIT_NO_TARGET" "no tmux server on socket '$socket' (is mosaic-tmux-holder.service running?)"
pane=$(tmux -L "$socket" display-message -p -t "$target" '#{pane_id}' 2>/dev/null) || pane=
[[ -n $pane ]] || die "$EXIT_NO_TARGET" "no pane '$target' on tmux socket '$socket'"
log "socket $socket, target $target is pane $pane, ${#message} characters"

# The draft marker: the end of the message's last line, up to 16 characters
# and without control characters (the terminal shows those differently).
# Cut down to a short piece first: long-string patterns are slow in bash.
draft_tail=$message
while [[ $draft_tail == *[[:space:]] ]]; do
    draft_tail=${draft_tail%[[:space:]]}
done
if ((${#draft_tail} > 64)); then draft_tail=${draft_tail:${#draft_tail}-64}; fi
draft_tail=${draft_tail##*$'\n'}
if ((${#draft_tail} > 16)); then draft_tail=${draft_tail:${#draft_tail}-16}; fi
draft_tail=${draft_tail##*[[:cntrl:]]}

# True while the logical line under the cursor (wrapped rows joined) still
# holds the end of the message: the text is on the input line, unsubmitted.
# A pane that is gone holds no draft (a message such as /exit ends it).
is_draft() {
    local row line
    [[ -n $draft_tail ]] || return 1
    if ! row=$(tmux -L "$socket" display-message -p -t "$pane" '#{cursor_y}' 2>/dev/null); then
        log "pane $pane is gone"
        return 1
    fi
    line=$(tmux -L "$socket" capture-pane -p -J -t "$pane" -S "$((row - 2))" -E "$row" |
        tail -n 1) || die "$EXIT_TMUX" "cannot read pane $pane ($target)"
    [[ $line == *"$draft_tail"* ]]
}

buffer="mosaic-send-$$-$RANDOM$RANDOM"
trap 'tmux -L "$socket" delete-buffer -b "$buffer" >/dev/null 2>&1 || true' EXIT
printf '%s' "$message" | tmux -L "$socket" load-buffer -b "$buffer" - ||
    die "$EXIT_TMUX" "cannot load the message into tmux buffer $buffer"
tmux -L "$socket" paste-buffer -p -d -b "$buffer" -t "$pane" ||
    die "$EXIT_TMUX" "cannot paste into pane $pane ($target)"
log "pasted through buffer $buffer"

# Let the program take the paste in before Enter, so that Enter is not read
# as part of the paste. A program that does not echo is given one second.
for ((tick = 0; tick < 10; tick++)); do
    if is_draft; then
        sleep 0.15
        break
    fi
    sleep 0.1
done

for ((attempt = 1; attempt <= attempts; attempt++)); do
    tmux -L "$socket" send-keys -t "$pane" Enter ||
        die "$EXIT_TMUX" "cannot press Enter in pane $pane ($target)"
    for ((tick = 0; tick < attempt * 5; tick++)); do
        sleep 0.1
        if ! is_draft; then
            log "submitted (Enter pressed $attempt time(s))"
            exit 0
        fi
    done
    log "still a draft after Enter #$attempt"
done
die "$EXIT_DRAFT" "the message is still an unsubmitted draft in pane $target ($pane) after $attempts Enter attempts; the program there is not accepting input"
