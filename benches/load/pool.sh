#!/usr/bin/env bash
# Pools the per-round ratios of several bracket.sh (or layers.sh) runs.
#
#   benches/load/layers.sh 20 2 | tee run1.log   # and again: run2.log, ...
#   benches/load/pool.sh run1.log run2.log ...
#
# Prints per variant, over every run given: the median of its ratios against the bare
# runs around it, with the first and third quartiles, and how many ratios there are;
# for each baseline, the same for its A/A ratios (each inner bare run against the mean
# of its neighbours); and the median user CPU time per request with its difference to
# the baseline's.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 LOG..." >&2; exit 2; }
awk '
  function flush(   k) {
    for (k = 2; k < nb; k++) aa[group] = aa[group] " " 2 * b[k] / (b[k - 1] + b[k + 1])
    nb = 0
  }
  /^round [0-9]+, group / { flush(); group = $4; sub(/:$/, "", group); next }
  /^  => / { name = $2; sub(/:$/, "", name); r = $3; sub(/^x/, "", r); ratios[name] = ratios[name] " " r; next }
  /^  [^ ]+: [0-9.]+ req\/s/ {
    name = $1; sub(/:$/, "", name)
    users[name] = users[name] " " $8
    if (!(name in group_of)) { group_of[name] = group; order[++n] = name }
    if (name == group) b[++nb] = $2
    next
  }
  END {
    flush()
    for (i = 1; i <= n; i++) {
      name = order[i]
      list = (name in ratios) ? ratios[name] : aa[name]
      printf "%s\t%s\t%s\t%s\n", name, group_of[name], (name in ratios) ? "ratio" : "A/A", list
      printf "%s\t%s\tuser\t%s\n", name, group_of[name], users[name]
    }
  }
' "$@" | awk -F'\t' '
  function stats(s, out,   a, m, i, j, t) {
    m = split(s, a, " ")
    for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    out["n"] = m
    out["med"] = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    out["q1"] = a[int(0.25 * (m - 1) + 0.5) + 1]
    out["q3"] = a[int(0.75 * (m - 1) + 0.5) + 1]
  }
  $3 == "user" { stats($4, s); user[$1] = s["med"]; if ($1 == $2) base[$2] = s["med"]; next }
  { names[++n] = $1; grp[$1] = $2; kind[$1] = $3; list[$1] = $4 }
  END {
    for (i = 1; i <= n; i++) {
      k = names[i]
      if (list[k] ~ /[0-9]/) {
        stats(list[k], s)
        what = sprintf("%sx%.3f (quartiles %.3f–%.3f, %d ratios)", kind[k] == "A/A" ? "A/A " : "", s["med"], s["q1"], s["q3"], s["n"])
      } else what = "(no ratios)"
      printf "%-22s %s; user CPU %.3f µs/request (%+.3f)\n", k, what, user[k], user[k] - base[grp[k]]
    }
  }
'
