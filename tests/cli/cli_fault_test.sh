#!/bin/bash
# Fault tests of the kiln CLI (issue 16): each checks the exact behaviour, not just "no crash".
#   save_disk_full   --saveEngine hits a file-size limit (RLIMIT_FSIZE via ulimit -f, SIGXFSZ
#                    ignored) and, where a private tmpfs can be mounted, a full disk: one [E] line
#                    naming the path, non-zero exit, no file at the path (an older one stays as it
#                    was), no temporary file left
#   save_unwritable  the path's folder is a file, the path is a folder: the same
#   save_killed      kiln SIGKILLed while it saves (and at other moments of a build): never a
#                    partial engine at the path, never a temporary file left
#   load_bad_engine  --loadEngine of an engine of an older/newer format version, truncated, with a
#                    flipped byte: one [E] line naming the file (and both versions), "rebuild"
#   host_oom         a run whose activations do not fit a capped address space (ulimit -v): one
#                    [E] line naming the tensor, non-zero exit, no abort
# Usage: cli_fault_test.sh <kiln binary> <work dir> [case ...]   (no case: all of them)
set -u
KILN=$(realpath "$1")
WORK=$2
shift 2
INJECT=$(dirname "$(realpath "$0")")/fault_inject.py
PY=/usr/bin/python3
FAILS=0

rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
WORK=$(pwd -P)

fail() { echo "FAIL [$CASE]: $*"; FAILS=$((FAILS + 1)); }
# bad <pattern> <command...>: must exit non-zero (not by a signal), print &&&& FAILED and exactly
# one [E] line, matching pattern.
bad() {
  local pattern=$1; shift
  "$@" >out.txt 2>err.txt
  local rc=$?
  if [ $rc -eq 0 ]; then fail "expected failure: $*"; return 1; fi
  if [ $rc -gt 128 ]; then fail "killed by signal $((rc - 128)): $*: $(tail -3 err.txt)"; return 1; fi
  grep -q '^&&&& FAILED kiln' out.txt || fail "no &&&& FAILED line: $*"
  [ "$(grep -c '^\[E\]' err.txt)" = 1 ] || fail "expected one [E] line: $*: $(cat err.txt)"
  grep -q -- "$pattern" err.txt || fail "error of $* does not match '$pattern': $(cat err.txt)"
}
ok() {
  "$KILN" "$@" >out.txt 2>err.txt || { fail "expected success: kiln $*: $(cat err.txt)"; return 1; }
}
# no_leftovers <dir>: nothing named *.kiln-* (kiln's temporary files) in dir.
no_leftovers() {
  local left
  left=$(ls -A "$1" | grep '\.kiln-')
  [ -z "$left" ] || fail "temporary file(s) left in $1: $left"
  rm -f "$1"/*.kiln-*
}
# save_must_fail <pattern> <target> [launcher...]: kiln --saveEngine=target (through launcher)
# must fail with pattern; the target must be absent, or unchanged when $OLD names a copy of it.
save_must_fail() {
  local pattern=$1 target=$2; shift 2
  bad "$pattern" "$@" "$KILN" --onnx=big.onnx --saveEngine="$target" --skipInference
  if [ -n "${OLD:-}" ]; then
    cmp -s "$OLD" "$target" || fail "the existing engine at $target was changed by a failed save"
  else
    [ ! -e "$target" ] || fail "a file was left at $target after a failed save"
  fi
  no_leftovers "$(dirname "$target")"
}

case_save_disk_full() {
  "$PY" "$INJECT" matmul big.onnx 512 || { fail "cannot make the model"; return; }  # 1 MiB of weights
  "$PY" "$INJECT" matmul small.onnx 8
  # RLIMIT_FSIZE of 256 KiB: write() fails with EFBIG part-way through the engine.
  limit() { (trap '' XFSZ; ulimit -f 256; exec "$@"); }
  OLD= save_must_fail "cannot write --saveEngine file '$WORK/e.engine': File too large" "$WORK/e.engine" limit
  # An older engine at the path stays exactly as it was.
  ok --onnx=small.onnx --saveEngine=e.engine --skipInference && cp e.engine old.engine
  OLD=old.engine save_must_fail "cannot write --saveEngine file '$WORK/e.engine': File too large" "$WORK/e.engine" limit
  ok --loadEngine=e.engine --duration=0 --warmUp=0 --iterations=1 || fail "the old engine no longer loads"
  rm -f e.engine old.engine
  # A full disk: a 64 KiB tmpfs in a private mount namespace (root only; skipped elsewhere).
  if unshare -m true 2>/dev/null; then
    mkdir -p full
    bad "cannot write --saveEngine file '$WORK/full/e.engine': No space left on device" \
      unshare -m sh -c "mount -t tmpfs -o size=64k kiln-full '$WORK/full' && exec \"\$@\"" sh \
      "$KILN" --onnx=big.onnx --saveEngine="$WORK/full/e.engine" --skipInference
    # the mount is gone with the namespace; the folder underneath must be empty
    [ -z "$(ls -A full)" ] || fail "files left under the tmpfs mount point: $(ls -A full)"
  else
    echo "note [$CASE]: no private mount namespace here (not root): the full-tmpfs check is skipped"
  fi
}

case_save_unwritable() {
  "$PY" "$INJECT" matmul big.onnx 64 || { fail "cannot make the model"; return; }
  echo x > afile
  OLD= save_must_fail "cannot write --saveEngine file '$WORK/afile/e.engine': Not a directory" "$WORK/afile/e.engine"
  mkdir -p adir/sub
  # The path is a folder: found only when the finished engine is put in place.
  bad "cannot write --saveEngine file 'adir/sub': Is a directory" "$KILN" --onnx=big.onnx --saveEngine=adir/sub --skipInference
  [ -d adir/sub ] && [ -z "$(ls -A adir/sub)" ] || fail "the folder at the path was changed"
  no_leftovers adir
  if [ "$(id -u)" != 0 ]; then  # root writes anywhere: read-only folders only test something for others
    mkdir -p ro && chmod 555 ro
    OLD= save_must_fail "cannot write --saveEngine file '$WORK/ro/e.engine': Permission denied" "$WORK/ro/e.engine"
    chmod 755 ro
  fi
}

case_save_killed() {
  # 24 conv layers of 256 channels: ~54 MiB of weights, so the save takes a while.
  "$PY" "$INJECT" convs big.onnx 24 256 || { fail "cannot make the model"; return; }
  # Every build reads the timing cache the first one wrote (and leaves it as is): the same tactics
  # and recorded times, so a complete engine equals ref.engine byte for byte.
  ok --onnx=big.onnx --saveEngine=ref.engine --skipInference --timingCacheFile="$WORK/tc.cache" || return
  local t0 t1 ms
  t0=$(date +%s%N)
  ok --onnx=big.onnx --saveEngine=timing.engine --skipInference --timingCacheFile="$WORK/tc.cache"
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  rm -f timing.engine
  # 1. Killed the moment it has the engine file open for writing, into an empty path and over an
  #    older engine: nothing at the path / the older engine unchanged; no temporary file.
  local i seen
  for i in 1 2 3; do
    seen=$("$PY" "$INJECT" kill-at-write "$WORK" "$KILN" --onnx=big.onnx --saveEngine="$WORK/e.engine" --skipInference)
    echo "  kill -9 at write, fresh path: $seen"
    case $seen in killed*) ;; *) fail "kiln was not caught writing: $seen";; esac
    [ ! -e e.engine ] || fail "a partial engine was left at the path after kill -9 while writing ($seen)"
    no_leftovers "$WORK"
    rm -f e.engine
  done
  "$PY" "$INJECT" matmul small.onnx 8 && ok --onnx=small.onnx --saveEngine=old.engine --skipInference || return
  for i in 1 2 3; do
    cp old.engine e.engine
    seen=$("$PY" "$INJECT" kill-at-write "$WORK" "$KILN" --onnx=big.onnx --saveEngine="$WORK/e.engine" --skipInference)
    echo "  kill -9 at write, over an older engine: $seen"
    cmp -s old.engine e.engine || fail "the older engine at the path was changed by a killed save ($seen)"
    no_leftovers "$WORK"
  done
  # 2. Killed at moments spread over the whole run (parse, build, load, save): the path holds the
  #    older engine or the complete new one, nothing else.
  for i in 1 2 3 4 5 6 7 8; do
    cp old.engine e.engine
    "$KILN" --onnx=big.onnx --saveEngine="$WORK/e.engine" --skipInference --timingCacheFile="$WORK/tc.cache" >/dev/null 2>&1 &
    local pid=$!
    sleep "$(awk -v ms="$ms" -v i="$i" 'BEGIN { printf "%.3f", ms * i / 8 / 1000 * 1.05 }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if ! cmp -s old.engine e.engine && ! cmp -s ref.engine e.engine; then
      fail "after kill -9 at $i/8 of the run, the path holds neither the old nor the complete new engine"
    fi
    no_leftovers "$WORK"
  done
  echo "  (a whole build + save took ${ms} ms)"
  rm -f e.engine old.engine ref.engine
}

case_load_bad_engine() {
  "$PY" "$INJECT" matmul m.onnx 64 || { fail "cannot make the model"; return; }
  ok --onnx=m.onnx --saveEngine=good.engine --skipInference || return
  ok --loadEngine=good.engine --duration=0 --warmUp=0 --iterations=1 || return
  local size
  size=$(stat -c %s good.engine)
  cp good.engine old.engine && "$PY" "$INJECT" patch old.engine 8 01000000
  bad "cannot load engine 'old.engine': engine format version 1 is older than the version this kiln reads (2); rebuild the engine" \
    "$KILN" --loadEngine=old.engine
  cp good.engine new.engine && "$PY" "$INJECT" patch new.engine 8 03000000
  bad "cannot load engine 'new.engine': engine format version 3 is newer than the version this kiln reads (2); rebuild the engine" \
    "$KILN" --loadEngine=new.engine
  head -c $((size / 2)) good.engine > cut.engine
  bad "cannot load engine 'cut.engine': engine file is truncated.*rebuild the engine" "$KILN" --loadEngine=cut.engine
  : > empty.engine
  bad "cannot load engine 'empty.engine': engine file is empty; rebuild the engine" "$KILN" --loadEngine=empty.engine
  echo "not an engine at all" > junk.engine
  bad "cannot load engine 'junk.engine': not a kiln engine file (bad magic); rebuild the engine" "$KILN" --loadEngine=junk.engine
  cp good.engine flip.engine && "$PY" "$INJECT" patch flip.engine $((size - 100)) ff
  bad "cannot load engine 'flip.engine': engine file is corrupted (checksum mismatch); rebuild the engine" \
    "$KILN" --loadEngine=flip.engine
}

case_host_oom() {
  "$PY" "$INJECT" wide wide.onnx || { fail "cannot make the model"; return; }
  local Q="--backend=cpu --duration=0 --warmUp=0 --iterations=1"
  ok --onnx=wide.onnx --shapes=x:4x16 $Q || return
  # h is 65536 x 16384 floats (4 GiB) under a 3 GiB address space (kiln maps ~1 GiB of libraries).
  bad "output 'h': out of memory allocating float\[65536,16384\]" sh -c "ulimit -v $((3 << 20)) && exec \"\$@\"" sh "$KILN" --onnx=wide.onnx --shapes=x:65536x16 $Q
}

CASES=${*:-save_disk_full save_unwritable save_killed load_bad_engine host_oom}
for CASE in $CASES; do
  before=$FAILS
  "case_$CASE"
  [ $FAILS -eq $before ] && echo "ok   $CASE" || echo "FAIL $CASE"
done
[ $FAILS -eq 0 ] && echo "all CLI fault tests passed" || { echo "$FAILS CLI fault check(s) failed"; exit 1; }
