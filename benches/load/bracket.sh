#!/usr/bin/env bash
# HTTP load comparison on loopback in which every run of a variant sits between two runs
# of its baseline, taken just before and just after it.
#
#   benches/load/bracket.sh ROUNDS SECONDS -- NAME1 'SERVER_CMD1' 'WRK_ARGS1' -- NAME2 ... [...]
#
# Same arguments as ab.sh. A variant whose name ends in `bare` is a baseline and starts a
# group; the variants after it, up to the next baseline, are compared with it. Each
# SERVER_CMD must start an HTTP server on the address in $BENCH_ADDR and keep running;
# WRK_ARGS are appended to wrk's command line, with the literal ADDR replaced by that
# address. Servers listen on $BENCH_PORT plus the variant's index; the default, 23150,
# lies below Linux's ephemeral range, where a client socket could already hold the port.
#
# Why: on a shared virtual machine a server's speed moves in phases of a few seconds
# (the kernel's share of a hello-world request is about three quarters of it, and it is
# what moves). A variant measured seconds away from its baseline is compared across
# phases. Here each round starts the group's servers together (each on its own port,
# all pinned to core 1; wrk runs on core 0, 64 keep-alive connections), warms each with
# one second of load, then runs
#
#     bare, V1, bare, V2, bare, ..., Vn, bare        (the order of V reversed every other round)
#
# for SECONDS each, and takes each variant's ratio against the mean of the two bare runs
# around it. The bare runs also give the method's own noise: each inner bare run against
# the mean of its neighbours (an A/A ratio, which should read 1).
#
# Prints each run, then per variant the median of its per-round ratios with the first
# and third quartiles, its median requests/s, and the median user-space CPU time per
# request (from /proc/PID/stat) with its difference to the baseline's.
set -euo pipefail
rounds=${1:?rounds}; secs=${2:?seconds}; shift 2
# shellcheck source=benches/load/common.sh
. "$(dirname "$0")/common.sh"
parse_variants "$@"
[[ ${names[0]} == *bare ]] || { echo "the first variant must be a baseline (*bare)" >&2; exit 2; }
port0=${BENCH_PORT:-23150}
ticks=$(getconf CLK_TCK)

# Groups: the index of each baseline, and the variants that follow it.
groups=()
declare -A members
for i in "${!names[@]}"; do
  if [[ ${names[$i]} == *bare ]]; then
    g=$i; groups+=("$i"); members[$g]=""
  else
    members[$g]="${members[$g]} $i"
  fi
done

# The value at a quantile (0..1) of the numbers on stdin, nearest rank.
quantile() {
  sort -n | awk -v q="$1" '{a[NR]=$1} END {i=int(q*(NR-1)+0.5)+1; print a[i]}'
}

declare -A pid_of
declare -A ratios_of rps_of user_of
run_rps=0; run_user=0
# One measured run of variant $1 against its server: sets run_rps and run_user.
measure() {
  local i=$1 p=$((port0 + $1)) a out u0 s0 u1 s1 reqs
  a=${args[$i]//ADDR/127.0.0.1:$p}
  read -r u0 s0 < <(cpu_ticks "${pid_of[$i]}")
  out=$(eval taskset -c 0 wrk -t1 -c64 -d"${secs}s" "$a")
  read -r u1 s1 < <(cpu_ticks "${pid_of[$i]}")
  run_rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  run_user=$(awk -v d=$((u1 - u0)) -v t="$ticks" -v n="$reqs" 'BEGIN {printf "%.3f", d / t * 1e6 / n}')
  local sys
  sys=$(awk -v d=$((s1 - s0)) -v t="$ticks" -v n="$reqs" 'BEGIN {printf "%.3f", d / t * 1e6 / n}')
  echo "  ${names[$i]}: $run_rps req/s, CPU per request: user $run_user µs, system $sys µs"
}

stop_servers() {
  for i in "${!pid_of[@]}"; do
    kill "${pid_of[$i]}" 2>/dev/null || true
    wait "${pid_of[$i]}" 2>/dev/null || true
  done
  pid_of=()
}
trap stop_servers EXIT

for ((r = 1; r <= rounds; r++)); do
  for g in "${groups[@]}"; do
    read -r -a vs <<<"${members[$g]}"
    if ((r % 2 == 0)); then
      for ((k = 0, l = ${#vs[@]} - 1; k < l; k++, l--)); do t=${vs[$k]}; vs[$k]=${vs[$l]}; vs[$l]=$t; done
    fi
    for i in "$g" "${vs[@]}"; do
      BENCH_ADDR="127.0.0.1:$((port0 + i))" taskset -c 1 bash -c "${cmds[$i]}" \
        >"/tmp/bracket-server-$i.log" 2>&1 &
      pid_of[$i]=$!
    done
    for i in "$g" "${vs[@]}"; do
      up=0
      for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$((port0 + i))") 2>/dev/null; then up=1; break; fi
        sleep 0.1
      done
      if ((up == 0)); then
        echo "${names[$i]} did not start on port $((port0 + i)):" >&2
        cat "/tmp/bracket-server-$i.log" >&2
        exit 1
      fi
      a=${args[$i]//ADDR/127.0.0.1:$((port0 + i))}
      eval taskset -c 0 wrk -t1 -c64 -d1s "$a" >/dev/null
    done
    echo "round $r, group ${names[$g]}:"
    measure "$g"; before=$run_rps; bares=("$run_rps")
    rps_of[$g]="${rps_of[$g]:-} $run_rps"; user_of[$g]="${user_of[$g]:-} $run_user"
    for i in "${vs[@]}"; do
      measure "$i"; v=$run_rps
      rps_of[$i]="${rps_of[$i]:-} $run_rps"; user_of[$i]="${user_of[$i]:-} $run_user"
      measure "$g"; after=$run_rps; bares+=("$run_rps")
      rps_of[$g]="${rps_of[$g]:-} $run_rps"; user_of[$g]="${user_of[$g]:-} $run_user"
      ratio=$(awk -v v="$v" -v a="$before" -v b="$after" 'BEGIN {printf "%.4f", 2 * v / (a + b)}')
      echo "  => ${names[$i]}: x$ratio of the bare runs around it"
      ratios_of[$i]="${ratios_of[$i]:-} $ratio"
      before=$after
    done
    # A/A: each inner bare run against the mean of its neighbours.
    for ((k = 1; k + 1 < ${#bares[@]}; k++)); do
      ratios_of[$g]="${ratios_of[$g]:-} $(awk -v v="${bares[$k]}" -v a="${bares[$((k - 1))]}" \
        -v b="${bares[$((k + 1))]}" 'BEGIN {printf "%.4f", 2 * v / (a + b)}')"
    done
    stop_servers
  done
done

for g in "${groups[@]}"; do
  base_user=$(printf '%s\n' ${user_of[$g]} | median)
  for i in "$g" ${members[$g]}; do
    rps=$(printf '%s\n' ${rps_of[$i]} | median)
    user=$(printf '%s\n' ${user_of[$i]} | median)
    extra=$(awk -v m="$user" -v b="$base_user" 'BEGIN {printf "%+.3f", m - b}')
    if [ -n "${ratios_of[$i]:-}" ]; then
      q1=$(printf '%s\n' ${ratios_of[$i]} | quantile 0.25)
      q2=$(printf '%s\n' ${ratios_of[$i]} | median)
      q3=$(printf '%s\n' ${ratios_of[$i]} | quantile 0.75)
      n=$(printf '%s\n' ${ratios_of[$i]} | wc -l)
      what="x$q2 (quartiles $q1–$q3, $n ratios)"
      [ "$i" = "$g" ] && what="A/A $what"
    else
      what="(no A/A ratio: one variant only)"
    fi
    echo "median ${names[$i]}: $what; $rps req/s; user CPU $user µs/request ($extra)"
  done
done
