#!/bin/sh
# grimc device runner (--device cmd:examples/runners/scratch.sh): runs the harness in a
# scratch copy of the stage on this machine, the way a device runner works, so a new
# runner can be tried against it. Contract (docs/devices.md): RUNNER STAGE EXE ARG...
set -eu
stage=$1; exe=$2; shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$stage/." "$work/"
mkdir -p "$work/out"
status=0
(cd "$work" && "./$exe" "$@") || status=$?
rm -rf "$stage/out" && cp -R "$work/out" "$stage/out"
exit $status
