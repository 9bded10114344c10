#!/usr/bin/env bash
# test-send-message-socket.sh: drive send-message.sh and agent-send.sh (next
# to this script) against a real tmux server on a throwaway named socket.
#
# Self-contained and safe to run anywhere: it makes its own TMUX_TMPDIR and
# socket, never talks to any other tmux server, and kills only its own server
# on exit. Prints "ok - <name>" per check and stops at the first failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stand_ins="$here/../selftest"
# shellcheck source=SCRIPTDIR/../selftest/lib.sh
source "$stand_ins/lib.sh"
selftest_begin
unset MOSAIC_TMUX_SOCKET
# The recorder's prompt: checks that are not about readiness wait for it
# instead of for a still screen and a program 2 s old.
ready=(-P '^ready> ')
# ssh, for the remote path: the stand-in, first on PATH.
mkdir -p "$work/bin"
ln -s "$stand_ins/ssh.sh" "$work/bin/ssh"
export SSH_STAND_IN_LOG="$work/ssh-args"

pane_shows() {
    tmux -L "$socket" capture-pane -p -t "$1" | grep -qF -- "$2"
}

start_recorder() {
    tmux -L "$socket" -f /dev/null new-session -d -s "$1" -x 120 -y 30 "$stand_ins/recorder.sh" "$work/$1.rec"
    wait_until pane_shows "=$1:0.0" 'ready>' || fail "recorder in session $1 did not start"
}

recorded() {
    cat -- "$work/$1.rec"
}

# Waits until session $1 recorded a marker sent after everything else, then
# compares the whole record with the expected lines ($2...). The marker makes
# "exactly once" exact: a stray extra Enter would show up before it.
expect_record() {
    local session=$1 expected
    shift
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=$session" "end-of-test" ||
        fail "the end marker was not delivered to $session"
    wait_until grep -qx 'end-of-test' "$work/$session.rec" ||
        fail "the end marker never reached $session"
    expected=$(printf '%s\n' "$@" end-of-test)
    [[ $(recorded "$session") == "$expected" ]] ||
        fail "session $session recorded:"$'\n'"$(recorded "$session")"$'\n'"expected:"$'\n'"$expected"
}

this_host() {
    local name
    name=$(hostname -s 2>/dev/null) || name=$(uname -n)
    printf '%s' "${name%%.*}"
}

tricky=$'it\'s "quoted" $HOME `date` \\n ünïcødé ✓ 日本語 100%'
long=
for ((chunk = 0; chunk < 64; chunk++)); do
    printf -v piece '%-63s|' "chunk $chunk \"q\" \$x \`b\`"
    long+=$piece
done

t_quotes_unicode() {
    start_recorder rec1
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=rec1" "$tricky" || fail "send-message failed"
    expect_record rec1 "$tricky"
}

t_four_kib() {
    ((${#long} == 4096)) || fail "test message is ${#long} bytes"
    start_recorder rec2
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=rec2" "$long" || fail "send-message failed"
    expect_record rec2 "$long"
}

t_base64_and_stdin() {
    start_recorder rec3
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=rec3" -b "$(printf '%s' "$tricky" | base64 | tr -d '\n')" ||
        fail "send-message -b failed"
    printf '%s\n' "from stdin" | "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=rec3" ||
        fail "send-message from stdin failed"
    expect_record rec3 "$tricky" "from stdin"
}

t_session_means_first_pane() {
    start_recorder rec4
    : >"$work/rec4-right.rec"
    # The new pane becomes the active one: '=rec4' alone would mean it.
    tmux -L "$socket" split-window -t "=rec4:0.0" "$stand_ins/recorder.sh" "$work/rec4-right.rec"
    wait_until pane_shows "=rec4:0.1" 'ready>' || fail "second recorder did not start"
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=rec4" "to the first pane" || fail "send-message failed"
    expect_record rec4 "to the first pane"
    [[ ! -s $work/rec4-right.rec ]] || fail "the active pane =rec4:0.1 received: $(cat "$work/rec4-right.rec")"
}

t_exact_match() {
    start_recorder agent-10
    local status=0
    "$here/send-message.sh" -L "$socket" -t "=agent-1" "for agent-1" 2>/dev/null || status=$?
    ((status == 3)) || fail "sending to missing =agent-1 exited $status, expected 3"
    start_recorder agent-1
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=agent-1" "for agent-1" || fail "send-message failed"
    expect_record agent-1 "for agent-1"
    expect_record agent-10
}

t_missing_target() {
    local status=0 err
    err=$("$here/send-message.sh" -L "$socket" -t "=no-such-session" "hello" 2>&1) || status=$?
    ((status == 3)) || fail "exit $status, expected 3"
    [[ $err == *"no pane '=no-such-session:0.0'"* ]] || fail "unexpected error: $err"
    status=0
    err=$("$here/send-message.sh" -L "$socket-none" -t "=rec1" "hello" 2>&1) || status=$?
    ((status == 3)) || fail "exit $status without a server, expected 3"
    [[ $err == *"no tmux server on socket"* ]] || fail "unexpected error: $err"
}

t_draft_detected() {
    tmux -L "$socket" -f /dev/null new-session -d -s sink -x 120 -y 30 "$stand_ins/sink.sh"
    wait_until pane_shows "=sink:0.0" 'sink>' || fail "sink did not start"
    local status=0 err
    err=$("$here/send-message.sh" -L "$socket" -r 2 -t "=sink" "never submitted" 2>&1) || status=$?
    ((status == 1)) || fail "exit $status, expected 1"
    [[ $err == *"still an unsubmitted draft"* ]] || fail "unexpected error: $err"
    pane_shows "=sink:0.0" "never submitted" || fail "the draft is not on the sink's input line"
}

t_agent_send_inside_tmux() {
    start_recorder rec5
    tmux -L "$socket" -f /dev/null new-session -d -s sender \
        "$here/agent-send.sh" -L "$socket" "${ready[@]}" -s rec5 -n far -m "hello from inside"
    # It runs on its own: let it finish before the end marker goes in.
    wait_until grep -qF 'hello from inside' "$work/rec5.rec" ||
        fail "nothing arrived from the sender session"
    expect_record rec5 "[$(this_host):sender -> far:rec5] hello from inside"
}

t_agent_send_outside_tmux() {
    start_recorder rec6
    USER=alice "$here/agent-send.sh" -L "$socket" "${ready[@]}" -s rec6 -m "- plain shell" ||
        fail "agent-send failed"
    "$here/agent-send.sh" -L "$socket" "${ready[@]}" -s rec6 -S "ops:console" -n far -m "$tricky" ||
        fail "agent-send -S failed"
    expect_record rec6 "[$(this_host):operator -> $(this_host):rec6] - plain shell" \
        "[ops:console -> far:rec6] $tricky"
}

t_control_characters() {
    start_recorder rec8
    local status=0 err
    err=$("$here/send-message.sh" -L "$socket" -t "=rec8" $'ok\e[201~\rrm -rf ~' 2>&1) || status=$?
    ((status == 2)) || fail "exit $status, expected 2"
    [[ $err == *"contains ESC (0x1b) at byte 2"* ]] || fail "unexpected error: $err"
    status=0
    err=$(printf 'a\0b' | "$here/send-message.sh" -L "$socket" -t "=rec8" 2>&1) || status=$?
    ((status == 2)) || fail "NUL: exit $status, expected 2"
    [[ $err == *"contains NUL (0x00) at byte 1"* ]] || fail "unexpected error: $err"
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -x -t "=rec8" $'ok\e[201~ and\r\nmore' ||
        fail "send-message -x failed"
    expect_record rec8 "ok[201~ and" "more"
}

t_concurrent_senders() {
    start_recorder rec9
    local n pids=()
    for n in 1 2 3 4; do
        "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=rec9" "sender $n, one whole line" &
        pids+=($!)
    done
    for n in "${pids[@]}"; do
        wait "$n" || fail "a concurrent sender failed"
    done
    "$here/send-message.sh" -L "$socket" "${ready[@]}" -t "=rec9" "end-of-test" || fail "end marker"
    wait_until grep -qx 'end-of-test' "$work/rec9.rec" || fail "the end marker never arrived"
    [[ $(sort "$work/rec9.rec") == "$({
        printf 'sender %s, one whole line\n' 1 2 3 4
        echo end-of-test
    } | sort)" ]] ||
        fail "rec9 recorded:"$'\n'"$(cat "$work/rec9.rec")"
}

t_waits_for_a_slow_start() {
    tmux -L "$socket" -f /dev/null new-session -d -s rec10 -x 120 -y 30 \
        "$stand_ins/slow-recorder.sh" "$work/rec10.rec"
    "$here/send-message.sh" -L "$socket" -t "=rec10" "typed once it reads keys" ||
        fail "send-message to a starting program failed"
    # Typed while it was loading, the text would have been thrown away.
    expect_record rec10 "typed once it reads keys"
}

t_line_reader() {
    : >"$work/reader.rec"
    tmux -L "$socket" -f /dev/null new-session -d -s reader -x 120 -y 30 \
        "$stand_ins/line-reader.sh" "$work/reader.rec" 'line mode> '
    wait_until pane_shows "=reader:0.0" 'line mode>' || fail "the line-mode program did not start"
    "$here/send-message.sh" -L "$socket" -l -t "=reader" "one line" || fail "send-message -l failed"
    local status=0 err
    err=$("$here/send-message.sh" -L "$socket" -l -t "=reader" $'two\nlines' 2>&1) || status=$?
    ((status == 2)) || fail "several lines: exit $status, expected 2"
    [[ $err == *"line reader (-l)"* ]] || fail "unexpected error: $err"
    "$here/send-message.sh" -L "$socket" -l -t "=reader" "end-of-test" || fail "end marker"
    wait_until grep -qx 'end-of-test' "$work/reader.rec" || fail "the end marker never arrived"
    [[ $(cat "$work/reader.rec") == $'one line\nend-of-test' ]] ||
        fail "reader recorded:"$'\n'"$(cat "$work/reader.rec")"
}

t_not_ready_and_busy() {
    : >"$work/lines.rec"
    tmux -L "$socket" -f /dev/null new-session -d -s lines -x 120 -y 30 \
        "$stand_ins/line-reader.sh" "$work/lines.rec" 'line mode> '
    wait_until pane_shows "=lines:0.0" 'line mode>' || fail "the line-mode program did not start"
    local status=0 err
    err=$("$here/send-message.sh" -L "$socket" -R 3 -t "=lines" "never typed" 2>&1) || status=$?
    ((status == 5)) || fail "exit $status, expected 5 (not ready)"
    [[ $err == *"NOT-READY"*"line mode"* ]] || fail "unexpected error: $err"
    ! pane_shows "=lines:0.0" "never typed" || fail "the text was typed into a program that was not ready"
    start_recorder rec11
    local queue
    queue="$TMUX_TMPDIR/tmux-$(id -u)/mosaic-send.$socket/rec11"
    mkdir -p "$queue"
    # A sender that holds the queue: a process with the first file locked.
    (
        exec {fd}>"$queue/w.00000000000000000000"
        flock -x "$fd"
        echo "$BASHPID test-holder" >&"$fd"
        exec sleep 30
    ) </dev/null >/dev/null 2>&1 &
    local holder=$!
    wait_until grep -q test-holder "$queue/w.00000000000000000000" || fail "no holder"
    status=0
    err=$("$here/send-message.sh" -L "$socket" -w 1 -t "=rec11" "behind the holder" 2>&1) || status=$?
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    ((status == 6)) || fail "exit $status, expected 6 (busy)"
    [[ $err == *"BUSY: 1 sender(s) ahead"*"test-holder"* ]] || fail "unexpected error: $err"
    rm -f -- "$queue/w.00000000000000000000"
    expect_record rec11
}

t_agent_send_remote() {
    start_recorder rec7
    printf '%s' "$tricky" >"$work/body"
    PATH="$work/bin:$PATH" "$here/agent-send.sh" -H bob@remote.example -L "$socket" "${ready[@]}" \
        -s rec7 -S "me:here" -f "$work/body" || fail "agent-send -H failed"
    expect_record rec7 "[me:here -> remote.example:rec7] $tricky"
    grep -qx 'bob@remote.example' "$work/ssh-args" || fail "ssh was not aimed at bob@remote.example"
    grep -qx 'BatchMode=yes' "$work/ssh-args" || fail "ssh may prompt: no BatchMode=yes"
}

check "send-message submits quotes, \$, backticks and unicode exactly once" t_quotes_unicode
check "send-message delivers 4 KiB whole, once" t_four_kib
check "send-message -b base64 and stdin deliver the same bytes" t_base64_and_stdin
check "=session is the pane =session:0.0, not the active pane" t_session_means_first_pane
check "=agent-1 never reaches agent-10" t_exact_match
check "a missing pane or server exits 3" t_missing_target
check "a message left as a draft exits 1" t_draft_detected
check "agent-send preamble names the sender's own tmux session" t_agent_send_inside_tmux
check "agent-send outside tmux is the operator; -S overrides the source" t_agent_send_outside_tmux
check "agent-send -H ships send-message.sh over ssh" t_agent_send_remote
check "control characters are refused with exit 2; -x strips them" t_control_characters
check "concurrent senders take turns: every message whole, once" t_concurrent_senders
check "a program still starting is typed into only once it is ready" t_waits_for_a_slow_start
check "not ready exits 5 and types nothing; a held queue exits 6" t_not_ready_and_busy
check "-l: a line reader gets one line, never several" t_line_reader
