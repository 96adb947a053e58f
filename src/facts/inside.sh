# pd-doctor-inside 1. Everything pd-doctor's container checks need from inside one
# container, gathered by one `docker exec`. Fixed text: every value arrives as a
# positional argument and is only ever expanded inside double quotes (the script's own
# numbers alone are split into words).
#   $1 host name  $2 entrypoint path ("" = none)  $3 client time limit, seconds (decimal)
#   $4 the same in whole seconds (busybox wget)  $5 python3 program  $6 node program
#   $7 bash program  then 4 per URL: url host port path (url "" = not to be reached)
# Output, after the header: "client NAME|-", "resolve EXIT ADDR...", "entrypoint ALGO
# DIGEST [SIZE]" or "entrypoint missing", "pid1 CMDLINE", per URL "r INDEX o|O|e|E LINE"
# (stdout and stderr: the first lines, then the last), "r INDEX x STATUS" and
# "r INDEX end"; and "end" when everything is done.
hn=$1 ep=$2 t=$3 tw=$4 py=$5 js=$6 bp=$7
shift 7
nl='
'
exec 4>&1
printf 'pd-doctor-inside 1\n'

# The first client on PATH. Not started to see whether it runs (curl alone takes 20 ms
# to start): a client that cannot run answers 126 or 127, and pd-doctor then looks for
# one that can, exec by exec.
client=
if [ "$#" -gt 0 ]; then
  for c in curl wget python3 node bash; do
    if command -v "$c" >/dev/null 2>&1; then
      client=$c
      break
    fi
  done
fi
printf 'client %s\n' "${client:--}"

# Prefixes each line with the URL's index and stream; keeps the first 40 lines and the
# last one (curl's status comes last), each cut to 240 bytes.
tag() {
  n=0 last=
  while IFS= read -r l || [ -n "$l" ]; do
    n=$((n + 1))
    if [ "$n" -le 40 ]; then
      printf 'r %s %s %.240s\n' "$1" "$2" "$l"
    else
      last=$l
    fi
  done
  if [ "$n" -gt 40 ]; then printf 'r %s %s %.240s\n' "$1" "$3" "$last"; fi
}

# Runs one client: its stdout and stderr tagged, its exit status, then "end".
job() {
  i=$1
  shift
  { { "$@" 3>&- 4>&-; printf 'r %s x %s\n' "$i" "$?" >&4; } 2>&1 1>&3 | tag "$i" e E >&4; } 3>&1 | tag "$i" o O
  printf 'r %s end\n' "$i"
}

# Starts one client on one URL in the background: fetch INDEX URL HOST PORT PATH.
fetch() {
  case $client in
    curl) job "$1" curl -sS --max-time "$t" -o - -w '\n__pd_status__%{http_code}' -- "$2" & ;;
    wget) job "$1" wget -q -S -O - -T "$tw" -t 1 "$2" & ;;
    python3) job "$1" python3 -c "$py" "$2" "$t" & ;;
    node) job "$1" node -e "$js" "$2" "$t" & ;;
    bash) job "$1" bash -c "$bp" pd-doctor "$3" "$4" "$5" "$t" & ;;
  esac
}

# Every URL not in $1 (" INDEX INDEX ... "), each by a client run of its own.
one_by_one() {
  seen=$1 i=0
  shift
  while [ "$#" -ge 4 ]; do
    case $seen in *" $i "*) ;; *) if [ -n "$1" ]; then fetch "$i" "$1" "$2" "$3" "$4"; fi ;; esac
    i=$((i + 1))
    shift 4
  done
}

# curl 7.75 and later fetch every URL in one process: one start of curl per container
# instead of one per URL, which is what a busy engine host feels (a start costs some
# 20 ms of CPU). It writes each transfer's verdict, "NUMBER CODE EXIT MESSAGE", to
# stderr (unbuffered) the moment that transfer ends.
together() {
  k=0
  for a in "$@"; do
    if [ $((k % 4)) -eq 0 ] && [ -n "$a" ]; then set -- "$@" -o /dev/null --url "$a"; fi
    k=$((k + 1))
  done
  shift "$k"
  [ "$#" -gt 0 ] || return 0
  curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 64 \
    --max-time "$t" -w '%{stderr}%{urlnum} %{http_code} %{exitcode} %{errormsg}\n' "$@"
}

# Writes each verdict as a run of its own would have (NUMBER counts the URLs curl was
# given). A 403 gets a run of its own at once, for its body, which says whether the
# Host header was refused; a URL that got no verdict (a curl older than 7.75, which
# knows no --parallel or %{urlnum}) gets one after curl ends.
verdicts() {
  seen=' '
  while read -r n code x msg; do
    case $n in '' | *[!0-9]*) continue ;; esac
    case $code in '' | *[!0-9]*) continue ;; esac
    case $x in '' | *[!0-9]*) continue ;; esac
    k=0 j=0
    for a in "$@"; do
      if [ $((k % 4)) -eq 0 ] && [ -n "$a" ]; then
        if [ "$j" -eq "$n" ]; then
          i=$((k / 4))
          case $seen in *" $i "*) break ;; esac
          seen="$seen$i "
          if [ "$code" = 403 ]; then
            fetch "$i" "$a"
          else
            if [ "$x" -ne 0 ]; then printf 'r %s e curl: (%s) %.200s\n' "$i" "$x" "$msg"; fi
            printf 'r %s o __pd_status__%s\nr %s x %s\nr %s end\n' "$i" "$code" "$i" "$x" "$i"
          fi
          break
        fi
        j=$((j + 1))
      fi
      k=$((k + 1))
    done
  done
  one_by_one "$seen" "$@"
  wait
}

reach() {
  if [ "$client" = curl ]; then
    together "$@" 2>&1 >/dev/null | verdicts "$@"
  else
    one_by_one ' ' "$@"
    wait
  fi
}
reach "$@" &

out=$(getent ahosts "$hn" 2>/dev/null)
rc=$?
printf '%s\n' "$out" | {
  seen=
  while read -r a _; do
    case " $seen " in *" $a "*) ;; *) seen="$seen $a" ;; esac
  done
  printf 'resolve %s%s\n' "$rc" "$seen"
}

if [ -n "$ep" ]; then
  if [ -f "$ep" ]; then
    # sha256sum prints "DIGEST  -"; cksum prints "CRC SIZE", the size as a bonus.
    if s=$(sha256sum <"$ep" 2>/dev/null); then
      a=sha256
    elif s=$(cksum <"$ep" 2>/dev/null); then
      a=cksum
    else
      a=- s=-
    fi
    printf 'entrypoint %s %s\n' "$a" "$s"
  else
    printf 'entrypoint missing\n'
  fi
fi

if [ -r /proc/1/cmdline ]; then
  p=$(tr '\000\n' '  ' </proc/1/cmdline 2>/dev/null) || p=$(cat /proc/1/cmdline 2>/dev/null) || IFS= read -r p </proc/1/cmdline
  printf 'pid1 %.400s\n' "${p%%"$nl"*}"
fi

wait
printf 'end\n'
