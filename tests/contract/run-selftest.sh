#!/usr/bin/env bash
# Self-test of the contract validator: the schemas in schemas/ must be
# valid, every valid sample in examples/ must pass, and every invalid one
# must fail, each for the reason listed in examples/expected-failures.tsv.
#
# usage: tests/contract/run-selftest.sh [-v]
#
#   -v   show validate.py's output for every run
#
# PYTHON overrides the interpreter (default /usr/bin/python3, Debian's,
# where python3-jsonschema and python3-yaml are installed; a python3 first
# in PATH, e.g. from pyenv or a virtualenv, may lack them or have others).
# Exits 0 when all is as expected, 1 otherwise, 2 when validate.py cannot
# run at all.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EX=$HERE/examples
VERBOSE=0
case ${1:-} in
  '') ;;
  -v) VERBOSE=1 ;;
  -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "run-selftest: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
VALIDATE=("$PYTHON" "$HERE/validate.py")

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }

# 1. The valid samples (and the schemas) pass.
out=$("${VALIDATE[@]}" --events "$EX/events/valid" --http "$EX/http/valid.jsonl" 2>&1)
rc=$?
((VERBOSE)) && printf '%s\n' "$out"
if ((rc == 2)); then
  printf '%s\n' "$out" >&2
  echo "run-selftest: validate.py cannot run (see above)" >&2
  exit 2
fi
if ((rc == 0)); then
  ok "valid samples pass: ${out##*$'\n'}"
else
  printf '%s\n' "$out"
  bad "valid samples: validate.py exited $rc"
fi

# 2. Each invalid sample fails, for its reason. validate.py runs once per
# sample (so that one sample's failure cannot hide another's), several at
# a time.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
JOBS=$(nproc 2>/dev/null || echo 4)
declare -A listed=()
files=()
expects=()
while IFS=$'\t' read -r file expect; do
  [[ -z $file || $file == \#* ]] && continue
  listed[$file]=1
  files+=("$file")
  expects+=("$expect")
done <"$EX/expected-failures.tsv"

for i in "${!files[@]}"; do
  file=${files[$i]}
  case $file in
    events/*) opt=--events ;;
    http/*) opt=--http ;;
    *) echo 99 >"$TMP/$i.rc"; continue ;;
  esac
  [[ -f $EX/$file ]] || { echo 98 >"$TMP/$i.rc"; continue; }
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
  ( "${VALIDATE[@]}" --no-schema-check "$opt" "$EX/$file" >"$TMP/$i.out" 2>&1; echo $? >"$TMP/$i.rc" ) &
done
wait

for i in "${!files[@]}"; do
  file=${files[$i]}
  expect=${expects[$i]}
  rc=$(cat "$TMP/$i.rc")
  out=$(cat "$TMP/$i.out" 2>/dev/null)
  ((VERBOSE)) && [[ -n $out ]] && printf '%s\n' "$out"
  if ((rc == 99)); then
    bad "$file: expected-failures.tsv names a file outside events/ and http/"
  elif ((rc == 98)); then
    bad "$file: listed in expected-failures.tsv but missing"
  elif ((rc != 1)); then
    printf '%s\n' "$out"
    bad "$file: validate.py exited $rc, expected 1"
  elif [[ $out != *"$expect"* ]]; then
    printf '%s\n' "$out"
    bad "$file: failed, but without \"$expect\""
  else
    ok "$file fails: $expect"
  fi
done

# 3. No invalid sample goes untested.
while IFS= read -r f; do
  rel=${f#"$EX"/}
  [[ -n ${listed[$rel]:-} ]] || bad "$rel: not listed in expected-failures.tsv"
done < <(find "$EX/events/invalid" "$EX/http/invalid" -type f | sort)

echo "contract selftest: $passed passed, $failed failed"
((failed == 0))
