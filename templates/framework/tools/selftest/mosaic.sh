#!/usr/bin/env bash
# mosaic.sh: a stand-in for the Mosaic CLI where `npm i -g` puts it
# (installed as `mosaic`). Records how the agent's pane ran it, under $HOME:
# its arguments, one per line, in mosaic-argv.rec and its environment in
# mosaic-env.rec; then idles like an agent's REPL.
set -u
printf '%s\n' "$@" >"$HOME/mosaic-argv.rec"
env >"$HOME/mosaic-env.rec"
printf 'fake mosaic %s ready\n' "$*"
while IFS= read -r -p '> ' line; do
    printf 'mosaic: %s\n' "$line"
done
