#!/bin/bash
# The top of a perf.data taken by bench/profile.sh: kernel time by system
# call (inclusive, with the ext4 inode allocation and eviction inside them)
# and user time by symbol (exclusive). Usage: bench/profile-summary.sh FILE
set -u
F=$1
echo "kernel, inclusive, by system call (share of all serve samples):"
perf report -i "$F" --children --sort sym --stdio -g none 2>/dev/null |
  grep -E '\[k\] (do_syscall_64|__x64_sys_[a-z_0-9]+|__ext4_new_inode|ext4_evict_inode)$' |
  awk '{ printf "  %7s  %s\n", $1, $4 }' | head -16
echo "user space, exclusive, by symbol:"
perf report -i "$F" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
  grep -E '\[\.\]' | head -16 | awk '{ printf "  %7s  %-16s %s\n", $1, $2, $4 }'
echo "user space by object:"
perf report -i "$F" --no-children --sort dso --stdio -g none 2>/dev/null |
  grep -E '^ +[0-9]' | head -8 | awk '{ printf "  %7s  %s\n", $1, $2 }'
