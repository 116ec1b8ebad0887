# Sourced by ab.sh and bracket.sh: their shared argument parsing and helpers.

# parse_variants [--] NAME 'SERVER_CMD' 'WRK_ARGS' [-- NAME ...]: fills the arrays
# `names`, `cmds` and `args`.
parse_variants() {
  [ "${1:-}" = "--" ] && shift
  names=(); cmds=(); args=()
  while [ $# -gt 0 ]; do
    names+=("$1"); cmds+=("$2"); args+=("$3"); shift 3
    [ "${1:-}" = "--" ] && shift
  done
  return 0
}

# utime and stime (clock ticks) of a process: fields 14 and 15 of /proc/PID/stat, counted
# after the parenthesised command name.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'; }

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
