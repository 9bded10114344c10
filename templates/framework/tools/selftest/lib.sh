#!/usr/bin/env bash
# lib.sh: the harness the bundle's self-tests (test-*.sh) source. It defines
# functions only; `selftest_begin` sets up what every self-test needs:
#
#   work     a private temp dir, removed on exit; TMUX_TMPDIR points into it,
#            so tmux only ever sees servers of this run
#   socket   a throwaway named socket, mosaic-test-<pid>, whose server (and
#            no other) is killed on exit
#   current  the name of the running check, printed as "not ok - <name>"
#            when the script exits non-zero
#
# A script may define `selftest_cleanup`, run on exit before the server is
# killed. The stand-in programs the self-tests drive are beside this file.

# Prepare the run and arrange its cleanup.
selftest_begin() {
    work=$(mktemp -d "${TMUX_TMPDIR:-/tmp}/mosaic-test.XXXXXX")
    export TMUX_TMPDIR=$work
    unset TMUX TMUX_PANE
    socket="mosaic-test-$$"
    current=setup
    trap selftest_finish EXIT
}

selftest_finish() {
    local status=$?
    if declare -F selftest_cleanup >/dev/null; then
        selftest_cleanup || true
    fi
    tmux -L "$socket" kill-server >/dev/null 2>&1 || true
    rm -rf -- "$work"
    if ((status != 0)); then
        printf 'not ok - %s\n' "$current"
    fi
    exit "$status"
}

fail() {
    printf '%s\n' "$*" >&2
    exit 1
}

# check NAME FUNCTION: run one check; "ok - NAME" once it passed.
check() {
    current=$1
    "$2"
    printf 'ok - %s\n' "$1"
}

# Poll a condition for up to ten seconds.
wait_until() {
    local tick
    for ((tick = 0; tick < 100; tick++)); do
        if "$@"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
