#!/usr/bin/env bash
# bash completion (etc/danerelay.bash-completion) against the binary's own
# usage text (TAP): every subcommand `danerelay --help` lists is offered,
# and for each usage line every option it shows is offered after "-".
# A subcommand or option added to main.c or a relay_cli*.c usage string
# without a completion entry fails here.
# Usage: test_completion.sh PATH/TO/danerelay PATH/TO/danerelay.bash-completion
# shellcheck disable=SC2015  # "A && ok || notok" is if/else here: ok only echoes
set -u
bin=$(realpath "$1")
# shellcheck source=/dev/null
source "$2"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf "%s\n" "$l" | sed "s/^/# /"; done; }

# complete WORD...: the candidates for the last word, one per line.
complete_words() {
  COMP_WORDS=("$bin" "$@")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  _danerelay
  printf '%s\n' "${COMPREPLY[@]}"
}
offers() {  # offers WORD CANDIDATES: is WORD one of the lines?
  printf '%s\n' "$2" | grep -qxF -- "$1"
}

usage=$("$bin" --help) || { notok "danerelay --help"; echo "1..$n"; exit 1; }
lines=$(printf '%s\n' "$usage" | sed -n 's/^  danerelay //p')
[ -n "$lines" ] && ok "--help lists subcommands" || notok "--help lists subcommands" "$usage"

top=$(complete_words '')
while read -r cmd rest; do
  offers "$cmd" "$top" && ok "subcommand $cmd offered" || notok "subcommand $cmd offered" "$top"
  # queue list / queue hold|release|... / dns flush: a second word.
  subs=
  second=${rest%% *}
  if [[ $second =~ ^[a-z]+(\|[a-z]+)*$ ]]; then
    subs=${second//|/ }
    rest=${rest#"$second"}
    level2=$(complete_words "$cmd" '')
    for s in $subs; do
      offers "$s" "$level2" && ok "$cmd $s offered" || notok "$cmd $s offered" "$level2"
    done
  fi
  opts=$(printf '%s\n' "$rest" | grep -oE -- '(^|[[ ])-(-[a-z][a-z-]*|[a-z])' | tr -d '[ ')
  for s in ${subs:-""}; do
    if [ -n "$s" ]; then cand=$(complete_words "$cmd" "$s" '-'); label="$cmd $s"
    else cand=$(complete_words "$cmd" '-'); label=$cmd; fi
    for o in $opts; do
      offers "$o" "$cand" && ok "$label $o offered" || notok "$label $o offered" "$cand"
    done
  done
done <<< "$lines"

# Global options before the subcommand, and the subcommand after them.
offers --version "$top" && offers --help "$top" && ok "global --help and --version" \
  || notok "global options" "$top"
after=$(complete_words -c /etc/danerelay/danerelay.conf qu)
[ "$after" = queue ] && ok "subcommand found after -c FILE" || notok "subcommand after -c FILE" "$after"

# Parameter names come from the binary's table: one that exists, and none
# that is not a parameter.
names=$(complete_words config spool_)
[ "$names" = spool_dir ] && ok "config completes parameter names" || notok "config names" "$names"
none=$(complete_words config no_such_param)
[ -z "$none" ] && ok "config offers nothing unknown" || notok "config unknown" "$none"

echo "1..$n"
