#!/usr/bin/env bash
# slow-recorder.sh FILE: loads for a second first, in line mode, then throws
# away whatever was typed meanwhile, as programs that reset their terminal
# do; then it is recorder.sh.
sleep 1
stty -icanon
while IFS= read -r -s -t 0.2 -n 1 _; do :; done
exec "${BASH_SOURCE[0]%/*}/recorder.sh" "$1"
