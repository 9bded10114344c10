#!/usr/bin/env bash
# sink.sh: a pane program that shows what is typed but never accepts Enter:
# text sent to it stays on its input line as an unsubmitted draft forever.
set -euo pipefail
stty -icanon -echo -icrnl
printf 'sink> '
while IFS= read -r -d '' -n 1 char; do
    case $char in
    $'\r' | $'\n') ;;
    *) printf '%s' "$char" ;;
    esac
done
