#!/usr/bin/env bash
# recorder.sh FILE: a stand-in agent REPL that appends every submitted line
# to FILE (emptied first). Like a real agent REPL it asks the terminal for
# bracketed paste (and strips the markers), and reads with the line
# discipline's canonical mode off, so long lines (4 KiB and more) arrive
# whole. Its prompt is `ready> `.
set -euo pipefail
record=$1
: >"$record"
stty -icanon -echoctl
printf '\e[?2004h'
printf 'ready> '
while IFS= read -r line; do
    line=${line//$'\e[200~'/}
    line=${line//$'\e[201~'/}
    printf '%s\n' "$line" >>"$record"
    printf 'ready> '
done
