#!/usr/bin/env bash
# line-reader.sh FILE [PROMPT]: a plain line reader. The terminal stays in
# line mode (the kernel echoes and collects each line, at most 4095 bytes),
# and every line read is appended to FILE, empty lines included. PROMPT, if
# given, is printed once at the start; without it the screen stays blank.
printf '%s' "${2-}"
while IFS= read -r line; do
    printf '%s\n' "$line" >>"$1"
done
