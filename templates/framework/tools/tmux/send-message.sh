#!/usr/bin/env bash
# send-message.sh: submit a text into one tmux pane exactly once, whole, as
# one submission, or say why not.
#
# One sender at a time per session (a queue of flock(1) lock files shared
# with mosaic-fleet), a wait until the program can take input, control
# characters refused, then one bracketed paste (through a uniquely named
# tmux buffer, deleted after use) and Enter, pressed again only while the
# text still sits on the input line. Only the named tmux server given by -L
# (or $MOSAIC_TMUX_SOCKET, or mosaic-fleet) is ever addressed.
#
# Exit codes: 0 accepted; 1 still a draft, or unconfirmed; 2 usage or bad
# input; 3 no tmux server, pane or program; 4 a tmux command failed; 5 not
# ready for input in time; 6 busy (other senders for longer than -w). See
# README.md next to this script.
set -euo pipefail

readonly PROG=${0##*/}
readonly EXIT_UNSUBMITTED=1 EXIT_USAGE=2 EXIT_NO_TARGET=3 EXIT_TMUX=4
readonly EXIT_NOT_READY=5 EXIT_BUSY=6
readonly MAX_BYTES=65536

usage() {
    cat <<EOF
usage: $PROG [options] -t target [message...]
       $PROG [options] -t target -b base64
       command | $PROG [options] -t target

Submit a message into a tmux pane: wait for the other senders to the same
session and for the program to be ready, then paste it and press Enter until
it has left the pane's input line.

  -t target   tmux target pane; '=session' means the exact pane '=session:0.0'
  -b base64   the message, base64-encoded (safe through ssh and any quoting)
  -p prefix   text put before the message (agent-send.sh's preamble)
  -L socket   tmux socket name (default: \$MOSAIC_TMUX_SOCKET, else mosaic-fleet)
  -r N        Enter attempts before giving up (default 3)
  -w SECS     wait at most SECS for other senders to the session (default 60)
  -R SECS     wait at most SECS for the program to be ready (default 30)
  -P regex    the program is ready when its screen matches this extended
              regular expression (grep -E, one line); else when its screen
              is still, it has run 2 s and its terminal is out of line mode
  -l          the program is a plain line reader (a terminal in line mode):
              no bracketed paste, one line of at most 4095 bytes
  -x          strip control characters instead of refusing the message
  -v          report each step on stderr
  -h          this help

Without -b the message is the arguments joined by spaces, or else stdin.
CRLF and CR become LF; trailing newlines are dropped (Enter is what
submits). Control characters other than LF and TAB (ESC, NUL, ...) are
refused, naming their byte offset, unless -x. At most 64 KiB.

Exit codes: 0 accepted, 1 still a draft or unconfirmed, 2 usage or bad
input, 3 no server, pane or program, 4 tmux failed, 5 not ready, 6 busy.
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

# Milliseconds since the epoch, from bash's own clock.
now_ms() {
    local micros=${EPOCHREALTIME//[!0-9]/}
    printf '%s' "$((micros / 1000))"
}

work=
buffer=
lock_file=
# shellcheck disable=SC2317 # run by the EXIT trap (shellcheck 0.9 misses that)
cleanup() {
    if [[ -n $buffer ]]; then
        tmux -L "$socket" delete-buffer -b "$buffer" >/dev/null 2>&1 || true
    fi
    if [[ -n $lock_file ]]; then
        rm -f -- "$lock_file"
    fi
    if [[ -n $work ]]; then
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT

socket=${MOSAIC_TMUX_SOCKET:-mosaic-fleet}
attempts=3
lock_wait=60
ready_timeout=30
ready_pattern=
strip=0
line_reader=0
prefix=
target=
encoded=
have_encoded=0

while getopts ':L:b:p:r:t:w:R:P:lxvh' opt; do
    case $opt in
    L) socket=$OPTARG ;;
    b)
        encoded=$OPTARG
        have_encoded=1
        ;;
    p) prefix=$OPTARG ;;
    r) attempts=$OPTARG ;;
    t) target=$OPTARG ;;
    w) lock_wait=$OPTARG ;;
    R) ready_timeout=$OPTARG ;;
    P) ready_pattern=$OPTARG ;;
    l) line_reader=1 ;;
    x) strip=1 ;;
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
[[ $lock_wait =~ ^[0-9]{1,5}$ ]] ||
    die "$EXIT_USAGE" "invalid -w '$lock_wait': give whole seconds to wait for other senders"
[[ $ready_timeout =~ ^[0-9]{1,5}$ ]] ||
    die "$EXIT_USAGE" "invalid -R '$ready_timeout': give whole seconds to wait for the program"
if [[ -n $ready_pattern ]]; then
    status=0
    grep -Eq -- "$ready_pattern" </dev/null 2>/dev/null || status=$?
    ((status != 2)) || die "$EXIT_USAGE" "invalid -P '$ready_pattern': not an extended regular expression"
    ((status != 0)) || die "$EXIT_USAGE" "invalid -P '$ready_pattern': it matches an empty screen, so it would never wait"
fi
command -v flock >/dev/null || die "$EXIT_USAGE" "flock(1) is required (Debian: util-linux)"
work=$(mktemp -d "${TMPDIR:-/tmp}/send-message.XXXXXX")


# The message's raw bytes go to a file first: a shell variable cannot hold
# NUL, which must be found, not silently dropped.
if ((have_encoded)); then
    (($# == 0)) || die "$EXIT_USAGE" "give the message either with -b or as arguments, not both"
    printf '%s' "$encoded" | base64 -d >"$work/message" 2>/dev/null ||
        die "$EXIT_USAGE" "-b: the message is not valid base64"
elif (($# > 0)); then
    printf '%s' "$*" >"$work/message"
elif [[ ! -t 0 ]]; then
    cat >"$work/message"
else
    die "$EXIT_USAGE" "no message: pass it as arguments, on stdin, or with -b"
fi
printf '%s' "$prefix" >"$work/prefix"

c0_name() {
    local names=(NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2
        DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US)
    printf '%s' "${names[$1]}"
}

# Clean the text of file $1 ($2 names it for errors) into $1.clean: valid
# UTF-8 only; control characters other than LF, TAB and CR refused with the
# byte offset of the first (or stripped with -x); CRLF and CR made LF.
clean_text() {
    local file=$1 what=$2 offsets offset count hex code name more=
    iconv -f UTF-8 -t UTF-8 "$file" >/dev/null 2>&1 ||
        die "$EXIT_USAGE" "$what is not valid UTF-8 text; nothing was sent"
    offsets=$(LC_ALL=C grep -obaP '[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]' "$file" |
        cut -d: -f1) || offsets=
    if [[ -n $offsets && $strip == 0 ]]; then
        offset=${offsets%%$'\n'*}
        count=$(printf '%s\n' "$offsets" | wc -l)
        hex=$(od -An -tx1 -j "$offset" -N 2 "$file" | tr -d ' \n')
        code=$((16#${hex:0:2}))
        if ((code == 0xc2)); then
            name="U+00$(printf '%s' "${hex:2:2}" | tr a-f A-F) (a C1 control)"
        elif ((code == 0x7f)); then
            name="DEL (0x7f)"
        else
            name="$(c0_name "$code") (0x${hex:0:2})"
        fi
        ((count < 2)) || more=" (and $((count - 1)) more)"
        die "$EXIT_USAGE" "$what contains $name at byte $offset$more: control characters act as keystrokes in the agent's terminal (ESC can end the paste early and type the rest as commands), so nothing was sent; remove them, or pass -x to strip them"
    fi
    LC_ALL=C tr -d '\000-\010\013\014\016-\037\177' <"$file" |
        LC_ALL=C sed 's/\xc2[\x80-\x9f]//g' >"$file.clean"
}

# The contents of file $1, trailing newlines kept.
contents() {
    local text
    text=$(cat -- "$1" && printf x)
    printf '%s' "${text%x}"
}

clean_text "$work/message" "the message"
clean_text "$work/prefix" "the prefix (-p)"
body=$(contents "$work/message.clean" && printf x)
body=${body%x}
body=${body//$'\r\n'/$'\n'}
body=${body//$'\r'/$'\n'}
while [[ $body == *$'\n' ]]; do body=${body%$'\n'}; done
[[ -n ${body//[[:space:]]/} ]] || die "$EXIT_USAGE" "the message is empty"
bytes=$(printf '%s' "$body" | wc -c)
((bytes <= MAX_BYTES)) ||
    die "$EXIT_USAGE" "the message is $bytes bytes; one submission is at most $MAX_BYTES bytes (64 KiB): write the text to a file the agent can read and send its path instead"
prefix=$(contents "$work/prefix.clean" && printf x)
prefix=${prefix%x}
prefix=${prefix//$'\r'/ }
prefix=${prefix//$'\n'/ }
message=$prefix$body
if ((line_reader)); then
    [[ $message != *$'\n'* ]] ||
        die "$EXIT_USAGE" "the message has several lines, but a line reader (-l) takes each line as a separate submission; nothing was sent: send one line at a time (mosaic-fleet agent send --lines does)"
    bytes=$(printf '%s' "$message" | wc -c)
    ((bytes <= 4095)) ||
        die "$EXIT_USAGE" "the line is $bytes bytes with the prefix, but a terminal in line mode passes at most 4095 bytes per line, dropping the rest; nothing was sent: shorten it, or send the path of a file"
fi

# '=session' alone would mean the session's *current* pane; the fleet's
# convention is its first pane, addressed exactly.
if [[ $target == =* && $target != *[:.]* ]]; then
    target="$target:0.0"
fi

tmux -L "$socket" list-sessions >/dev/null 2>&1 ||
    die "$EXIT_NO_TARGET" "no tmux server on socket '$socket' (is mosaic-tmux-holder.service running?)"
found=$(tmux -L "$socket" display-message -p -t "$target" '#{pane_id} #{session_name}' 2>/dev/null) || found=
pane=${found%% *}
session=${found#* }
[[ -n $pane && -n $session ]] || die "$EXIT_NO_TARGET" "no pane '$target' on tmux socket '$socket'"
log "socket $socket, target $target is pane $pane of session $session, ${#message} characters"

# --- One sender at a time: the session's queue (the same as mosaic-fleet's) ---
# In the tmux socket directory: mosaic-send.<socket>/<session>/. Each sender
# creates w.<seq> (one above the highest present, under .guard), holds its
# flock while it lives, and waits on the flock of the sender just ahead. A
# file whose flock is free but which is still there was left by a sender
# that died, and is removed.
queue="${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/mosaic-send.$socket/$session"
seq_of() {
    local name=${1##*/w.}
    printf '%s' "$((10#$name))"
}
take_lock() {
    local deadline=$(($(now_ms) + lock_wait * 1000)) guard_fd last=-1 file seq
    (umask 077 && mkdir -p -- "$queue") ||
        die "$EXIT_TMUX" "cannot create the send queue $queue"
    exec {guard_fd}>>"$queue/.guard"
    flock -x -w 10 "$guard_fd" || die "$EXIT_BUSY" "the send queue's guard $queue/.guard stayed locked"
    for file in "$queue"/w.*; do
        [[ -e $file ]] || continue
        seq=$(seq_of "$file")
        ((seq <= last)) || last=$seq
    done
    my_seq=$((last + 1))
    lock_file=$queue/w.$(printf '%020d' "$my_seq")
    set -o noclobber
    exec {lock_fd}>"$lock_file"
    set +o noclobber
    flock -x -n "$lock_fd" || die "$EXIT_TMUX" "cannot lock $lock_file"
    printf '%s send-message.sh\n' "$$" >&"$lock_fd"
    exec {guard_fd}>&-
    log "queued as $lock_file"
    local ahead next next_fd remaining
    while :; do
        ahead=()
        for file in "$queue"/w.*; do
            [[ -e $file ]] || continue
            seq=$(seq_of "$file")
            ((seq >= my_seq)) || ahead+=("$file")
        done
        ((${#ahead[@]} > 0)) || return 0
        next=${ahead[${#ahead[@]} - 1]}
        remaining=$((deadline - $(now_ms)))
        ((remaining > 0)) || remaining=0
        { exec {next_fd}<"$next"; } 2>/dev/null || continue
        if ! flock -x -w "$((remaining / 1000)).$(printf '%03d' $((remaining % 1000)))" "$next_fd"; then
            exec {next_fd}<&-
            local holder
            holder=$(head -n 1 -- "${ahead[0]}" 2>/dev/null) || holder=unknown
            die "$EXIT_BUSY" "BUSY: ${#ahead[@]} sender(s) ahead for session $session after waiting $lock_wait s (held by '$holder'; queue $queue); nothing was typed"
        fi
        exec {next_fd}<&-
        rm -f -- "$next"
    done
}
take_lock
log "it is our turn"

# --- What the pane shows: cursor, input line (the logical line under the
# cursor, wrapped rows joined), screen. Fails when the pane is gone. ---
read_view() {
    local out head dead start
    out=$(tmux -L "$socket" display-message -p -t "$pane" '#{pane_dead} #{cursor_x} #{cursor_y}' \; \
        capture-pane -p -t "$pane" 2>/dev/null) || return 1
    head=${out%%$'\n'*}
    v_screen=${out#"$head"}
    read -r dead v_x v_y <<<"$head" || return 1
    [[ $dead == 0 ]] || return 1
    start=$((v_y > 3 ? v_y - 3 : 0))
    # Keep the trailing newlines: an empty cursor row is the last line.
    v_line=$(tmux -L "$socket" capture-pane -p -J -t "$pane" -S "$start" -E "$v_y" 2>/dev/null &&
        printf x) || return 1
    v_line=${v_line%x}
    v_line=${v_line%$'\n'}
    v_line=${v_line##*$'\n'}
}

# --- Ready for input? ---
# Field $2 of /proc/$1/stat (the command name, field 2, may hold spaces).
stat_field() {
    local stat fields
    stat=$(<"/proc/$1/stat") || return 1
    read -r -a fields <<<"${stat##*) }"
    printf '%s' "${fields[$2 - 3]}"
}
# How long process $1 has run, in hundredths of a second.
age_cs() {
    local start hz up
    start=$(stat_field "$1" 22) || return 1
    hz=$(getconf CLK_TCK) || return 1
    read -r up _ </proc/uptime || return 1
    printf '%s' "$((10#${up//./} - start * 100 / hz))"
}
pane_ready() {
    local info dead pid tty activity fg age now mode
    if [[ -n $ready_pattern ]]; then
        screen_now=$(tmux -L "$socket" capture-pane -p -J -t "$pane" 2>/dev/null) ||
            die "$EXIT_NO_TARGET" "pane $pane ($target) is gone"
        grep -Eq -- "$ready_pattern" <<<"$screen_now" && return 0
        why_not="the screen does not match -P '$ready_pattern'"
        return 1
    fi
    info=$(tmux -L "$socket" display-message -p -t "$pane" '#{pane_dead} #{pane_pid} #{pane_tty} #{window_activity}' 2>/dev/null) ||
        die "$EXIT_NO_TARGET" "pane $pane ($target) is gone"
    read -r dead pid tty activity <<<"$info"
    [[ $dead == 0 ]] || die "$EXIT_NO_TARGET" "the program in pane $pane ($target) has exited"
    mode=$(stty -F "$tty" -a 2>/dev/null) || mode=
    if ((!line_reader)) && [[ " ${mode//[$'\n;']/ } " == *" icanon "* ]]; then
        why_not="its terminal is still in line mode (the program has not started reading keys)"
        return 1
    fi
    fg=$(stat_field "$pid" 8) || fg=
    [[ $fg =~ ^[1-9][0-9]*$ ]] || fg=$pid
    age=$(age_cs "$fg") || age=
    if [[ $age =~ ^[0-9]+$ ]] && ((age < 200)); then
        why_not="its program has run for less than 2 s"
        return 1
    fi
    now=$(($(now_ms) / 1000))
    ((now - activity < 2)) || return 0
    screen_now=$(tmux -L "$socket" capture-pane -p -J -t "$pane" 2>/dev/null) || screen_now=
    if [[ $screen_now != "${screen_seen-}" ]]; then
        screen_seen=$screen_now
        screen_since=$(now_ms)
    fi
    (($(now_ms) - screen_since >= 500)) && return 0
    why_not="its screen has not been still for 0.5 s"
    return 1
}
ready_deadline=$(($(now_ms) + ready_timeout * 1000))
why_not=
until pane_ready; do
    (($(now_ms) < ready_deadline)) ||
        die "$EXIT_NOT_READY" "NOT-READY: pane $target ($pane) was not ready for input after $ready_timeout s: $why_not; nothing was typed"
    sleep 0.05
done
log "the program is ready for input"

# The draft marker: the end of the message's last line, up to 16 characters,
# without trailing whitespace and anything up to the last tab.
draft_tail=$message
while [[ $draft_tail == *[[:space:]] ]]; do
    draft_tail=${draft_tail%[[:space:]]}
done
if ((${#draft_tail} > 64)); then draft_tail=${draft_tail:${#draft_tail}-64}; fi
draft_tail=${draft_tail##*$'\n'}
if ((${#draft_tail} > 16)); then draft_tail=${draft_tail:${#draft_tail}-16}; fi
draft_tail=${draft_tail##*[[:cntrl:]]}

# How often the end of the message shows on screen $1 (rows joined, so that
# a marker the terminal wrapped counts).
marker_count() {
    local rest=${1//$'\n'/} n=0
    if [[ -n $draft_tail ]]; then
        while [[ $rest == *"$draft_tail"* ]]; do
            rest=${rest#*"$draft_tail"}
            n=$((n + 1))
        done
    fi
    printf '%s' "$n"
}

read_view || die "$EXIT_NO_TARGET" "pane $pane ($target) is gone"
before_x=$v_x before_y=$v_y before_line=$v_line before_screen=$v_screen
before_count=$(marker_count "$v_screen")

buffer="mosaic-send-$$-$RANDOM$RANDOM"
printf '%s' "$message" | tmux -L "$socket" load-buffer -b "$buffer" - ||
    die "$EXIT_TMUX" "cannot load the message into tmux buffer $buffer"
bracketed=(-p)
((!line_reader)) || bracketed=()
tmux -L "$socket" paste-buffer "${bracketed[@]}" -d -b "$buffer" -t "$pane" ||
    die "$EXIT_TMUX" "cannot paste into pane $pane ($target)"
buffer=
log "pasted"

# Wait for the paste to show and settle. It shows when the end of the
# message appears on the input line (the cursor's) or once more on the
# screen (settle 50 ms), when the input line changes without it (a summary
# of a long paste; 300 ms), or, weakest, when the screen changes (300 ms).
# Never press Enter when nothing showed: the program dropped the text.
echo_deadline=$(($(now_ms) + 5000))
settled_echo=''
settled_at=0
while :; do
    read_view || die "$EXIT_NO_TARGET" "pane $pane ($target) is gone after the paste"
    count=$(marker_count "$v_screen")
    input_changed=0
    if [[ $v_x != "$before_x" || $v_y != "$before_y" || $v_line != "$before_line" ]]; then
        input_changed=1
    fi
    # The end of the message on the input line counts when it was not there
    # before, or the input line changed since.
    on_line=0
    if [[ -n $draft_tail && $v_line == *"$draft_tail"* ]]; then
        if [[ $before_line != *"$draft_tail"* ]] || ((input_changed)); then
            on_line=1
        fi
    fi
    if ((on_line || count > before_count)); then
        echo_now="seen $v_x $v_y $count|$v_line" settle=50
    elif ((input_changed)); then
        echo_now="input $v_x $v_y|$v_line" settle=300
    elif [[ $v_screen != "$before_screen" ]]; then
        echo_now="screen $v_x $v_y|$v_line|$v_screen" settle=300
    else
        echo_now=''
    fi
    now=$(now_ms)
    if [[ -z $echo_now ]]; then
        settled_echo=''
        ((now < echo_deadline)) ||
            die "$EXIT_UNSUBMITTED" "UNCONFIRMED: the text did not show on the input line of pane $target within 5 s, so Enter was not pressed; the program may have dropped it"
    elif ((now >= echo_deadline + 300)); then
        break # it changed, and never stopped changing
    elif [[ $echo_now == "$settled_echo" ]]; then
        ((now - settled_at < settle)) || break
    else
        settled_echo=$echo_now
        settled_at=$now
    fi
    sleep 0.02
done
pasted_x=$v_x pasted_y=$v_y pasted_line=$v_line
# The input region: the input line, and the rows the paste changed.
mapfile -t before_rows <<<"$before_screen"
mapfile -t pasted_rows <<<"$v_screen"
region=()
for ((row = 0; row < ${#before_rows[@]} || row < ${#pasted_rows[@]}; row++)); do
    [[ ${before_rows[row]-} == "${pasted_rows[row]-}" ]] || region+=("$row")
done
log "the paste shows (input region: cursor line and ${#region[@]} changed row(s))"

# The text is still there: its end on the input line, or the input region
# exactly as the paste left it.
still_there() {
    local row now_rows
    # The end of the message on the input line says nothing when it was
    # there before the paste already.
    if [[ -n $draft_tail && $before_line != *"$draft_tail"* && $v_line == *"$draft_tail"* ]]; then
        return 0
    fi
    [[ $v_x == "$pasted_x" && $v_y == "$pasted_y" && $v_line == "$pasted_line" ]] || return 1
    mapfile -t now_rows <<<"$v_screen"
    for row in "${region[@]}"; do
        [[ ${now_rows[row]-} == "${pasted_rows[row]-}" ]] || return 1
    done
    return 0
}

for ((attempt = 1; attempt <= attempts; attempt++)); do
    tmux -L "$socket" send-keys -t "$pane" Enter ||
        die "$EXIT_TMUX" "cannot press Enter in pane $pane ($target)"
    deadline=$(($(now_ms) + attempt * 2000))
    while :; do
        if ! read_view; then
            log "the pane closed after Enter #$attempt: the program took the text"
            exit 0
        fi
        if ! still_there && [[ -n ${v_screen//[[:space:]]/} ]]; then
            log "accepted (Enter pressed $attempt time(s))"
            exit 0
        fi
        (($(now_ms) < deadline)) || break
        sleep 0.05
    done
    still_there ||
        die "$EXIT_UNSUBMITTED" "UNCONFIRMED: pane $target went blank after Enter, so the submit cannot be confirmed"
    log "still a draft after Enter #$attempt"
done
die "$EXIT_UNSUBMITTED" "DRAFT: the message is still an unsubmitted draft in pane $target ($pane) after $attempts Enter attempts; the program there is not accepting input"
