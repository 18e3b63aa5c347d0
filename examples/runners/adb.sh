#!/bin/sh
# grimc device runner for an Android phone over adb (--device cmd:examples/runners/adb.sh;
# build with --target aarch64: the harness is a static aarch64 executable).
# ANDROID_SERIAL picks the phone when several are attached. Contract (docs/devices.md):
# RUNNER STAGE EXE ARG...: run ./EXE ARG... in a copy of STAGE, print its stdout, exit with
# its status, and copy the device's out/ back to STAGE/out.
set -eu
stage=$1; exe=$2; shift 2
dir=/data/local/tmp/grimc-$$
adb shell "mkdir -p $dir/out" >/dev/null
adb push "$stage/." "$dir/" >/dev/null
status=0
adb shell "cd $dir && chmod +x ./$exe && ./$exe $*; echo \"__status=\$?\"" > "$stage/.adb_stdout" || status=$?
code=$(sed -n 's/^__status=\([0-9]*\).*/\1/p' "$stage/.adb_stdout" | tail -n 1)
grep -v '^__status=' "$stage/.adb_stdout" | tr -d '\r'
rm -f "$stage/.adb_stdout"
rm -rf "$stage/out" && adb pull "$dir/out" "$stage/out" >/dev/null
adb shell "rm -rf $dir" >/dev/null
[ "$status" -eq 0 ] || exit "$status"
exit "${code:-1}"
