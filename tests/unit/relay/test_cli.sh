#!/usr/bin/env bash
# CLI tests for `danerelay version` and `danerelay config`, and the option
# parsing and usage errors of every subcommand (TAP output).
# Usage: test_cli.sh PATH/TO/danerelay SOURCE_ROOT
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
src=$(realpath "$2")
tmp=$(mktemp -d /tmp/danerelay-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
# expect NAME WANT_STATUS WANT_STDERR_SUBSTRING CMD...
expect() {
  local name=$1 want=$2 msg=$3; shift 3
  local out err st
  out=$("$@" 2>"$tmp/err"); st=$?
  err=$(cat "$tmp/err")
  if [ "$st" != "$want" ]; then notok "$name" "exit $st, want $want" "stderr: $err"; return; fi
  if [ -n "$msg" ] && [[ "$err" != *"$msg"* ]]; then notok "$name" "stderr: $err" "want: $msg"; return; fi
  if [ -n "$err" ] && [ "$(printf '%s\n' "$err" | wc -l)" != 1 ]; then notok "$name" "stderr not one line: $err"; return; fi
  ok "$name"
}

expect "version" 0 "" "$bin" version
[ "$("$bin" version)" = "danerelay $(sed -n "s/^  version : '\(.*\)',/\1/p" "$src/meson.build")" ] \
  && ok "version text" || notok "version text" "$("$bin" version)"
expect "no subcommand is a usage error" 2 "missing subcommand" "$bin"
expect "unknown subcommand" 2 'unknown subcommand "frobnicate"' "$bin" frobnicate
expect "unknown global option" 2 "unknown option -x" "$bin" -x version
expect "-c without a file" 2 "option -c needs a file name" "$bin" -c
expect "config unknown option" 2 "danerelay config: unknown option" "$bin" config --bogus
expect "config -n -d" 2 "exclude each other" "$bin" config -n -d

# Every subcommand parses its options the same way: --help answers on
# stdout with exit 0 and needs no configuration; an unknown option is one
# usage line on stderr and exit 2; -c without a file name likewise.
# Columns: the subcommand words, and whether it takes -c FILE.
subcommands=(
  "version:no" "config:yes" "serve:yes" "report:yes" "probe:yes" "tlsa:no"
  "queue:yes" "queue list:yes" "queue show:yes" "queue hold:yes" "queue release:yes"
  "queue delete:yes" "queue retry:yes" "dns:yes" "dns flush:yes"
)
for row in "${subcommands[@]}"; do
  sc=${row%:*}; takes_c=${row#*:}
  read -ra words <<< "$sc"
  out=$(DANERELAY_CONF=$tmp/none.conf "$bin" "${words[@]}" --help 2>"$tmp/err"); st=$?
  err=$(cat "$tmp/err")
  if [ "$st" = 0 ] && [ -z "$err" ] && [[ "$out" == "usage: danerelay ${words[0]}"* ]] &&
      [[ "$out" == *"danerelay $sc"* ]]; then
    ok "$sc --help: usage on stdout, exit 0"
  else
    notok "$sc --help: usage on stdout, exit 0" "exit $st" "stdout: $out" "stderr: $err"
  fi
  for opt in --no-such-option -Z; do
    out=$(DANERELAY_CONF=$tmp/none.conf "$bin" "${words[@]}" "$opt" 2>"$tmp/err"); st=$?
    err=$(cat "$tmp/err")
    if [ "$st" = 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] &&
        [[ "$err" == "danerelay ${words[0]}"*"unknown option $opt"*"usage: danerelay ${words[0]}"* ]]; then
      ok "$sc $opt: one usage line on stderr, exit 2"
    else
      notok "$sc $opt: one usage line on stderr, exit 2" "exit $st" "stdout: $out" "stderr: $err"
    fi
  done
  if [ "$takes_c" = yes ] && [ "$sc" != queue ] && [ "$sc" != dns ]; then
    expect "$sc -c without a file" 2 "option -c needs a file name" "$bin" "${words[@]}" -c
  fi
done

# probe's exit statuses (danerelay(8)): 2 for usage and configuration
# errors; 0, 1 and 3 need DNS and MX servers (integration test_probe.sh).
expect "probe without DOMAIN" 2 "missing DOMAIN" "$bin" -c "$src/etc/danerelay.conf" probe
expect "probe with two domains" 2 "only one DOMAIN" "$bin" -c "$src/etc/danerelay.conf" probe a.example b.example
expect "probe: unreadable configuration is exit 2" 2 "danerelay probe: $tmp/none.conf: cannot open" \
  "$bin" -c "$tmp/none.conf" probe example.org
printf 'retry_min = soon\n' > "$tmp/probe-bad.conf"
expect "probe: bad configuration value is exit 2" 2 "$tmp/probe-bad.conf:1: bad value for retry_min" \
  "$bin" probe -c "$tmp/probe-bad.conf" example.org
printf 'dns_trust_anchor_file = %s/no-such-anchor\n' "$tmp" > "$tmp/probe-anchor.conf"
# (The resolver also logs the cause, so stderr has two lines here.)
"$bin" probe -c "$tmp/probe-anchor.conf" example.org > /dev/null 2> "$tmp/err"; st=$?
[ "$st" = 2 ] && grep -q "^danerelay probe: resolver:" "$tmp/err" \
  && ok "probe: resolver set-up from the configuration fails: exit 2" \
  || notok "probe: resolver set-up from the configuration fails: exit 2" "exit $st" "$(cat "$tmp/err")"

expect "example config loads" 0 "" "$bin" -c "$src/etc/danerelay.conf" config
expect "subcommand -c" 0 "" "$bin" config -c "$src/etc/danerelay.conf"
out=$(cd "$tmp" && "$bin" config -c "$src/etc/danerelay.conf" spool_dir)
[ "$out" = "spool_dir = $tmp/var/spool" ] && ok "relative spool_dir resolved against cwd" \
  || notok "relative spool_dir resolved against cwd" "$out"
out=$(DANERELAY_CONF="$src/etc/danerelay.conf" "$bin" config listen)
[ "$out" = "listen = 127.0.0.1:10025" ] && ok "DANERELAY_CONF" || notok "DANERELAY_CONF" "$out"

# Without -c and $DANERELAY_CONF the subcommands read the file this build
# installs (etc/meson.build, sysconfdir/danerelay/danerelay.conf): /etc for
# the package, /usr/local/etc for a plain `meson setup`.
installed_conf=$(python3 -c 'import json, sys
for dest in json.load(open(sys.argv[1])).values():
    if dest.endswith("/danerelay/danerelay.conf"):
        print(dest)' "${DANERELAY_BUILD_ROOT:?}/meson-info/intro-installed.json")
default_conf=$("$bin" --help | sed -n 's/^configuration: .*, else //p')
[ -n "$installed_conf" ] && [ "$default_conf" = "$installed_conf" ] \
  && ok "default configuration is the installed one ($installed_conf)" \
  || notok "default configuration is the installed one" "--help: $default_conf" "installed: $installed_conf"
if [ ! -e "$default_conf" ]; then
  expect "config without -c reads the default file" 1 "danerelay config: $installed_conf: cannot open" \
    env -u DANERELAY_CONF "$bin" config
else
  n=$((n + 1)); echo "ok $n - config without -c reads the default file # SKIP $default_conf exists here"
fi

expect "missing file" 1 "danerelay config: $tmp/none.conf: cannot open configuration file: No such file or directory" \
  "$bin" -c "$tmp/none.conf" config
printf 'retry_min = 5m\nfrobs = 1\n' > "$tmp/a.conf"
expect "unknown key names file and line" 1 "danerelay config: $tmp/a.conf:2: unknown parameter \"frobs\"" \
  "$bin" -c "$tmp/a.conf" config
printf 'retry_min = soon\n' > "$tmp/b.conf"
expect "bad value names file and line" 1 "$tmp/b.conf:1: bad value for retry_min" "$bin" -c "$tmp/b.conf" config
printf 'listen = 127.0.0.1:1\n\nlisten = 127.0.0.1:2\n' > "$tmp/c.conf"
expect "duplicate key" 1 "$tmp/c.conf:3: duplicate parameter listen (first set at line 1)" "$bin" -c "$tmp/c.conf" config
mkdir "$tmp/dir.conf"
expect "a directory is not a file" 1 "$tmp/dir.conf: configuration file is not a regular file" "$bin" -c "$tmp/dir.conf" config
expect "unknown name on the command line" 1 'unknown parameter "nope"' "$bin" -c "$src/etc/danerelay.conf" config nope

printf 'retry_min = 10m\n' > "$tmp/d.conf"
out=$("$bin" -c "$tmp/d.conf" config -n)
[ "$out" = "retry_min = 10m" ] && ok "config -n prints only explicit settings" || notok "config -n" "$out"
out=$("$bin" -c "$tmp/none.conf" config -d retry_min tls_security_level)
[ "$out" = "$(printf 'retry_min = 5m\ntls_security_level = dane')" ] && ok "config -d needs no file" \
  || notok "config -d" "$out"
nparams=$("$bin" config -d | wc -l)
ndoc=$("$bin" config --doc | grep -c '^| `')
[ "$nparams" -ge 40 ] && [ "$nparams" = "$ndoc" ] && ok "--doc has one row per parameter ($ndoc)" \
  || notok "--doc rows" "$nparams parameters, $ndoc rows"

# README's configuration reference is generated: the text between the
# markers must equal `danerelay config --doc`.
begin='<!-- BEGIN config-reference (danerelay config --doc) -->'
end='<!-- END config-reference -->'
if grep -qF "$begin" "$src/README.md"; then
  sed -n "/^$begin\$/,/^$end\$/p" "$src/README.md" | sed '1d;$d' > "$tmp/readme.md"
  if "$bin" config --doc | diff -u "$tmp/readme.md" - > "$tmp/diff"; then
    ok "README configuration reference matches config --doc"
  else
    notok "README configuration reference matches config --doc" \
      "regenerate: replace the lines between the markers with 'build/danerelay config --doc'" \
      "$(head -20 "$tmp/diff")"
  fi
else
  n=$((n + 1)); echo "ok $n - README configuration reference # SKIP markers not in README.md yet"
fi
echo "1..$n"
exit $fail
