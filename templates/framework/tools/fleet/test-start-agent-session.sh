#!/usr/bin/env bash
# test-start-agent-session.sh: drive start-agent-session.sh (next to this
# script) against a real tmux server on a throwaway named socket.
#
# Self-contained and safe to run anywhere: its own TMUX_TMPDIR, socket, HOME
# and Mosaic tree (MOSAIC_HOME); it never talks to any other tmux server and kills
# only its own server on exit. Prints "ok - <name>" per check and stops at
# the first failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start="$here/start-agent-session.sh"
stand_ins="$here/../selftest"
# shellcheck source=SCRIPTDIR/../selftest/lib.sh
source "$stand_ins/lib.sh"
selftest_begin
unset MOSAIC_AGENT_NAME MOSAIC_AGENT_RUNTIME MOSAIC_AGENT_MODEL MOSAIC_AGENT_CLASS \
    MOSAIC_AGENT_WORKDIR MOSAIC_AGENT_COMMAND MOSAIC_RUNTIME_PATH MOSAIC_RUNTIME_BIN \
    XDG_CONFIG_HOME
export HOME="$work/home" MOSAIC_HOME="$work/home/mosaic-home"
export MOSAIC_TMUX_SOCKET=$socket
mkdir -p "$HOME" "$MOSAIC_HOME/fleet/agents" "$work/bin"

# The mosaic CLI's stand-in where npm would put it, off this PATH.
mkdir -p "$work/npm-prefix/bin"
cp "$stand_ins/mosaic.sh" "$work/npm-prefix/bin/mosaic"

sessions() {
    tmux -L "$socket" list-sessions -F '#{session_name}' 2>/dev/null | sort | tr '\n' ' '
}

has_session() {
    tmux -L "$socket" has-session -t "=$1" 2>/dev/null
}

# Runs start-agent-session.sh; its exit code lands in $status, output in $out.
run_start() {
    status=0
    out=$("$start" "$@" 2>&1) || status=$?
}

t_rejects_names() {
    local name
    for name in a.b a:b -x '' 'a b' "$(printf 'x%.0s' {1..65})"; do
        run_start -- "$name"
        ((status == 2)) || fail "name '$name': exit $status, expected 2: $out"
        [[ $out == *"invalid agent name"* ]] || fail "name '$name': $out"
    done
    run_start -- a.b
    [[ $out == *"renames a session called 'a.b' to 'a_b'"* ]] || fail "no rename explanation: $out"
    run_start -x
    ((status == 2)) || fail "option -x: exit $status, expected 2"
}

t_needs_holder() {
    MOSAIC_AGENT_RUNTIME=claude run_start agent-1
    ((status == 3)) || fail "exit $status without a holder, expected 3: $out"
    [[ $out == *"systemctl --user start mosaic-tmux-holder.service"* ]] || fail "no hint: $out"
    ! tmux -L "$socket" list-sessions >/dev/null 2>&1 || fail "it started a tmux server of its own"
    tmux -L "$socket" -f /dev/null new-session -d -s _holder
}

t_starts_from_env_file() {
    # The installer's quoting: double quotes, with \\ \" \$ \` escaped.
    cat >"$MOSAIC_HOME/fleet/agents/agent-1.env" <<EOF
MOSAIC_AGENT_NAME="agent-1"
MOSAIC_AGENT_RUNTIME="claude"
MOSAIC_AGENT_CLASS="reviewer"
MOSAIC_AGENT_MODEL="opus \\"4\\" \\\$x"
MOSAIC_AGENT_WORKDIR="~/work dir"
MOSAIC_RUNTIME_PATH="$work/gone:$work/npm-prefix/bin"
EOF
    run_start agent-1
    ((status == 0)) || fail "exit $status: $out"
    [[ $out == started* ]] || fail "expected 'started': $out"
    wait_until test -s "$HOME/mosaic-argv.rec" || fail "mosaic was not launched"
    local expected
    expected=$(printf '%s\n' yolo claude --model "opus \"4\" \$x")
    [[ $(cat "$HOME/mosaic-argv.rec") == "$expected" ]] || fail "mosaic got: $(cat "$HOME/mosaic-argv.rec")"
    [[ $(tmux -L "$socket" display-message -p -t "=agent-1:0.0" '#{pane_current_path}') == "$HOME/work dir" ]] ||
        fail "the session does not run in ~/work dir"
    wait_until test -s "$HOME/mosaic-env.rec" || fail "mosaic recorded no environment"
    local line
    for line in MOSAIC_AGENT_NAME=agent-1 MOSAIC_AGENT_RUNTIME=claude MOSAIC_AGENT_CLASS=reviewer \
        "MOSAIC_AGENT_MODEL=opus \"4\" \$x" "MOSAIC_TMUX_SOCKET=$socket" "MOSAIC_HOME=$MOSAIC_HOME"; do
        grep -qxF -- "$line" "$HOME/mosaic-env.rec" || fail "the pane's environment lacks $line: $(cat "$HOME/mosaic-env.rec")"
    done
    # The runtime directory first; the one that does not exist left out.
    line=$(grep '^PATH=' "$HOME/mosaic-env.rec")
    [[ $line == "PATH=$work/npm-prefix/bin:"* && $line != *"$work/gone"* ]] || fail "the pane's $line"
}

t_command_not_found() {
    MOSAIC_AGENT_RUNTIME=claude run_start agent-5
    ((status == 5)) || fail "exit $status, expected 5: $out"
    [[ $out == *"its command 'mosaic yolo claude' runs 'mosaic', which is not on the pane's PATH (/"*"/bin)"* ]] ||
        fail "the message does not name the command and the PATH: $out"
    ! has_session agent-5 || fail "agent-5 was started anyway"
    MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_COMMAND="$work/missing --flag" run_start agent-5
    ((status == 5)) || fail "exit $status, expected 5: $out"
    [[ $out == *"runs '$work/missing', which is not an executable file"* ]] || fail "$out"
    # ~/.npm-global/bin counts even when the env file predates it.
    mkdir -p "$HOME/.npm-global/bin"
    cp "$work/npm-prefix/bin/mosaic" "$HOME/.npm-global/bin/mosaic"
    MOSAIC_AGENT_RUNTIME=claude run_start agent-5
    ((status == 0)) || fail "exit $status with ~/.npm-global/bin/mosaic: $out"
    [[ $out == *"with PATH $HOME/.npm-global/bin:/"* ]] || fail "$out"
    has_session agent-5 || fail "agent-5 did not start"
    tmux -L "$socket" kill-session -t "=agent-5"
    rm -r "$HOME/.npm-global"
}

t_reuses() {
    run_start agent-1
    ((status == 0)) || fail "exit $status: $out"
    [[ $out == reusing* ]] || fail "expected 'reusing': $out"
    [[ $(sessions) == "_holder agent-1 " ]] || fail "sessions: $(sessions)"
}

t_exact_match() {
    MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_COMMAND="sleep 3600" run_start agent-10
    [[ $out == started* ]] || fail "agent-10: $out"
    tmux -L "$socket" kill-session -t "=agent-1"
    # A prefix match would find agent-10 and wrongly "reuse" it.
    MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_COMMAND="sleep 3600" run_start agent-1
    [[ $out == started* ]] || fail "agent-1 after its stop: $out"
    [[ $(sessions) == "_holder agent-1 agent-10 " ]] || fail "sessions: $(sessions)"
}

t_bad_workdir() {
    : >"$work/a-file"
    MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_WORKDIR="$work/a-file/sub" run_start agent-2
    ((status == 4)) || fail "exit $status, expected 4: $out"
    [[ $out == *"cannot create the workdir"* ]] || fail "$out"
    ! has_session agent-2 || fail "agent-2 was started anyway"
}

t_supervise_exits_when_gone() {
    MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_COMMAND="sleep 3600" \
        "$start" --supervise agent-3 >"$work/supervise.out" 2>&1 &
    local pid=$! rc=0
    wait_until has_session agent-3 || fail "agent-3 did not start"
    tmux -L "$socket" kill-session -t "=agent-3"
    wait "$pid" || rc=$?
    ((rc == 1)) || fail "--supervise exited $rc after the session died, expected 1"
    grep -q "session agent-3 .* is gone" "$work/supervise.out" || fail "$(cat "$work/supervise.out")"
}

t_supervise_sigterm() {
    MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_COMMAND="sleep 3600" \
        "$start" --supervise agent-4 >"$work/supervise.out" 2>&1 &
    local pid=$! rc=0
    wait_until has_session agent-4 || fail "agent-4 did not start"
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    ((rc == 0)) || fail "--supervise exited $rc on SIGTERM, expected 0"
    has_session agent-4 || fail "SIGTERM to the supervisor must leave the session to ExecStop"
}

watcher_gone() {
    ! kill -0 "$1" 2>/dev/null
}

t_supervise_pidfile() {
    local pidfile="$work/agent-5.pid" watcher
    MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_COMMAND="sleep 3600" \
        "$start" --supervise --pidfile "$pidfile" agent-5 >"$work/pidfile.out" 2>&1 ||
        fail "exit $?: $(cat "$work/pidfile.out")"
    has_session agent-5 || fail "it returned before the session existed"
    watcher=$(<"$pidfile")
    kill -0 "$watcher" 2>/dev/null || fail "no watcher runs as pid $watcher"
    tmux -L "$socket" kill-session -t "=agent-5"
    wait_until watcher_gone "$watcher" || fail "the watcher outlived the session"
    grep -q "session agent-5 .* is gone" "$work/pidfile.out" || fail "$(cat "$work/pidfile.out")"
    run_start --pidfile "$pidfile" agent-5
    ((status == 2)) || fail "--pidfile without --supervise: exit $status, expected 2: $out"
}

# tmux before 3.2 has no -N (do not start a server): the session is then
# created once the server is known to run.
t_tmux_without_dash_n() {
    local real
    real=$(command -v tmux)
    mkdir -p "$work/old-tmux"
    cat >"$work/old-tmux/tmux" <<STUB
#!/usr/bin/env bash
if [[ " \$* " == *" -N "* ]]; then
    echo "usage: tmux [-2CluvV] [-c shell-command] [-f file] [-L socket-name]" >&2
    exit 1
fi
exec "$real" "\$@"
STUB
    chmod +x "$work/old-tmux/tmux"
    PATH="$work/old-tmux:$PATH" MOSAIC_AGENT_RUNTIME=x MOSAIC_AGENT_COMMAND="sleep 3600" run_start agent-6
    ((status == 0)) || fail "exit $status: $out"
    [[ $out == started* ]] || fail "expected 'started': $out"
    has_session agent-6 || fail "no session agent-6"
    PATH="$work/old-tmux:$PATH" MOSAIC_AGENT_RUNTIME=x run_start agent-6
    [[ $out == reusing* ]] || fail "expected 'reusing': $out"
}

check "rejects invalid agent names (a.b: tmux would rename it a_b)" t_rejects_names
check "without a holder server: exit 3 and how to start it" t_needs_holder
check "starts the session from the agent's env file, runtime PATH first, class set" t_starts_from_env_file
check "a command not on the pane's PATH exits 5, naming it and the PATH" t_command_not_found
check "reuses a live session" t_reuses
check "agent-1 is matched exactly, never agent-10" t_exact_match
check "a workdir that cannot be created exits 4" t_bad_workdir
check "--supervise exits 1 once the session is gone" t_supervise_exits_when_gone
check "--supervise exits 0 on SIGTERM" t_supervise_sigterm
check "--supervise --pidfile returns once the session exists, its watcher in the file" t_supervise_pidfile
check "on a tmux without -N (before 3.2) the session is still created" t_tmux_without_dash_n
