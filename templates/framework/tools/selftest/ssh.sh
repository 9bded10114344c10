#!/usr/bin/env bash
# ssh.sh: a stand-in for ssh, put first on PATH (as `ssh`) by the remote
# checks: it writes its arguments, one per line, to $SSH_STAND_IN_LOG, then
# runs the remote command here with sh, as sshd would run it with the
# remote login shell.
set -euo pipefail
printf '%s\n' "$@" >"$SSH_STAND_IN_LOG"
while (($# > 0)); do
    case $1 in
    -o) shift 2 ;;
    --)
        shift
        break
        ;;
    -*) shift ;;
    *) break ;;
    esac
done
shift # the destination
exec sh -c "$*"
