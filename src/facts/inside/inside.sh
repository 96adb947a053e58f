# pd-doctor-inside 1. Everything pd-doctor's container checks need from inside one
# container, gathered by one `docker exec`. Fixed text: every value arrives as a
# positional argument and is only ever expanded inside double quotes (the script's own
# numbers alone are split into words).
#   $1 host name  $2 how many file paths follow the URLs' words  $3 client time limit,
#   seconds (decimal)
#   $4 the same in whole seconds (busybox wget)  $5 python3 program  $6 node program
#   $7 bash program  $8 how many words the URLs take (4 per URL)  $9 seconds until
#   everything this exec started is ended  $10 the MCP messages a stdio server is sent
#   $11 the tmux session Claude Code runs in ("" = none)  $12 how many quarter seconds
#   more the deadline waits for processes that still use CPU  $13 $14 the host and port
#   Claude Code opens first (Anthropic's API, or the proxy it goes through; "" = not asked)
#   $15 $16 the python3 and node programs that open (and close) that connection
#   $17 $18 the moment of $9 on the kernel's clock: its boot id, and /proc/uptime in
#   centiseconds ("" = not known)
#   then 4 per URL: url host port path (url "" = not to be reached)
#   In the environment, PD_HEADERS: the entries' own headers, one "INDEX Name: value" a
#   line (never on the command line, which the engine's events show).
#   then the files to size and digest, one path each
#   then per stdio server: INDEX COUNT and COUNT words, its argument vector
# Output, after the header: "client NAME|-", "resolve EXIT ADDR...", per file "file INDEX ALGO
# DIGEST [SIZE]" or "file INDEX missing", "pid1 CMDLINE", per URL "r INDEX o|O|e|E LINE"
# (stdout and stderr: the first lines, then the last; curl's say "__pd_session__ID" when
# the server opened a session, then "__pd_status__CODE"), "r INDEX x STATUS" and
# "r INDEX end"; per stdio server "s INDEX o|e|E LINE", "s INDEX missing PROGRAM",
# "s INDEX answered", "s INDEX x STATUS"; "api resolve EXIT ADDR...", "api connect
# open|refused|unreachable|timeout|error|-"; "session 0|1|-" (tmux has-session's status);
# "pane W H" (the session's window size); "debug 0|1" (the config dir has debug/); "claude COUNT PID..." (Claude Code's processes); "slow" when the deadline waits for a
# process still at work; at the deadline "deadline" and "left PID NAME" for each process
# then ended; and "end" when everything is done.
hn=$1 nf=$2 t=$3 tw=$4 py=$5 js=$6 bp=$7 nu=$8 wd=$9 msgs=${10} ss=${11} wq=${12}
ah=${13} apt=${14} pyc=${15} jsc=${16} bid=${17} dcs=${18}
shift 18

# Where this container runs on pd-doctor's own kernel (the same boot id), its deadline
# is a moment of that kernel's clock, not a delay: an exec that started late, on a busy
# engine, still ends on time.
if [ -n "$bid" ] && read -r b 2>/dev/null </proc/sys/kernel/random/boot_id && [ "$b" = "$bid" ] &&
  read -r up _ 2>/dev/null </proc/uptime; then
  case $dcs:$up in
    *[!0-9.:]* | *:*.*.* | :* | *:) ;;
    *:[1-9]*.[0-9][0-9])
      l=$((dcs - ${up%.*}${up#*.}))
      if [ "$l" -lt 10 ]; then l=10; fi
      wd=$((l / 100)).$((l % 100 / 10))$((l % 10))
      ;;
  esac
fi
nl='
'
exec 5>&1

# Everything this exec starts shares its process group, whose leader the engine made
# this shell: ending the group ends them all. Run anywhere else (a test on the host),
# the script ends nothing but its own.
leader=
if read -r _ _ _ _ pg _ </proc/$$/stat 2>/dev/null && [ "$pg" = "$$" ]; then leader=1; fi

# How this exec's processes, but for its own shells and sleeps and the HTTP clients
# (bounded by their own --max-time), are doing: $now, the CPU time (clock ticks) they
# have used; $rd, set when one is running or waiting on the disk (R or D) right now.
ticks() {
  now=0 rd=
  for d in /proc/[0-9]*; do
    if read -r _ c st _ g _ _ _ _ _ _ _ _ u s _ 2>/dev/null <"$d/stat" && [ "$g" = "$$" ]; then
      case $c in '(sh)' | '(sleep)' | '(curl)' | '(wget)') continue ;; esac
      case $st in R | D) rd=1 ;; esac
      case $u$s in '' | *[!0-9]*) continue ;; esac
      now=$((now + u + s))
    fi
  done
}

# The deadline: say what is still running, then end it all, so that a hung server, a
# slow DNS or a program that never exits leaves nothing behind in the container. Slow
# is not hung: while what this exec started still uses CPU or waits on the disk (Python
# proxies compiling their modules on first start, many at once on a busy machine), the
# deadline waits a quarter second more at a time, $wq times at most. A process that
# waits on the network or on nothing does neither, and is ended on time.
if [ -n "$leader" ]; then
  (
    sleep "$wd"
    if [ "$wq" -gt 0 ]; then
      q=0
      ticks
      was=$now
      while [ "$q" -lt "$wq" ] && sleep 0.25; do
        ticks
        if [ "$now" = "$was" ] && [ -z "$rd" ]; then break; fi
        if [ "$q" -eq 0 ]; then printf 'slow\n'; fi
        was=$now q=$((q + 1))
      done
    fi
    printf 'deadline\n'
    for d in /proc/[0-9]*; do
      if read -r p c _ _ g _ 2>/dev/null <"$d/stat" && [ "$g" = "$$" ] && [ "$p" != "$$" ]; then
        printf 'left %s %.40s\n' "$p" "$c"
      fi
    done
    kill -s KILL 0
  ) 3>&- 4>&- &
fi

body() {
exec 4>&1
printf 'pd-doctor-inside 1\n'

# The first client on PATH. Not started to see whether it runs (curl alone takes 20 ms
# to start): a client that cannot run answers 126 or 127, and pd-doctor then looks for
# one that can, exec by exec.
client=
if [ "$nu" -gt 0 ]; then
  for c in curl wget python3 node bash; do
    if command -v "$c" >/dev/null 2>&1; then
      client=$c
      break
    fi
  done
fi
printf 'client %s\n' "${client:--}"

# Prefixes each line with "r" (or $4), the URL's index and stream; keeps the first 40
# lines and the last one (curl's status comes last), each cut to 240 bytes.
tag() {
  n=0 last=
  while IFS= read -r l || [ -n "$l" ]; do
    n=$((n + 1))
    if [ "$n" -le 40 ]; then
      printf '%s %s %s %.240s\n' "${4:-r}" "$1" "$2" "$l"
    else
      last=$l
    fi
  done
  if [ "$n" -gt 40 ]; then printf '%s %s %s %.240s\n' "${4:-r}" "$1" "$3" "$last"; fi
}

# Runs one client: its stdout and stderr tagged, its exit status, then "end".
job() {
  i=$1
  shift
  { { "$@" 3>&- 4>&-; printf 'r %s x %s\n' "$i" "$?" >&4; } 2>&1 1>&3 | tag "$i" e E >&4; } 3>&1 | tag "$i" o O
  printf 'r %s end\n' "$i"
}

# What every client sends, as a real MCP client does (a GET, or a POST without these
# headers, is a 4xx line in a healthy server's log): a POST of initialize (the first
# of the stdio messages) that accepts JSON and SSE, with the entry's own headers.
ib=${msgs%%"$nl"*}
mh="Accept: application/json, text/event-stream${nl}Content-Type: application/json"
# The entries' headers, kept from every process this exec starts (a stdio server too).
hs=${PD_HEADERS-}
unset PD_HEADERS

# The headers of URL $1, one "Name: value" a line, from PD_HEADERS into $hv.
headers_of() {
  hv= r=$hs
  while [ -n "$r" ]; do
    case ${r%%"$nl"*} in "$1 "*) l=${r%%"$nl"*} && hv="$hv${hv:+$nl}${l#"$1 "}" ;; esac
    case $r in *"$nl"*) r=${r#*"$nl"} ;; *) r= ;; esac
  done
}

# Starts one client on one URL in the background: fetch INDEX URL HOST PORT PATH. curl
# and wget get the headers as options; python3, node and bash in PD_H.
fetch() {
  fi_=$1 fu=$2 fh=$3 fo=$4 fa=$5
  headers_of "$1"
  fe=$hv
  hd="$mh${fe:+$nl$fe}"
  set --
  while [ -n "$hd" ]; do
    case $client in
      curl) set -- "$@" -H "${hd%%"$nl"*}" ;;
      wget) set -- "$@" "--header=${hd%%"$nl"*}" ;;
    esac
    case $hd in *"$nl"*) hd=${hd#*"$nl"} ;; *) hd= ;; esac
  done
  case $client in
    curl) job "$fi_" curl -sS --max-time "$t" -o - -w '\n__pd_session__%header{mcp-session-id}\n__pd_status__%{http_code}' "$@" --data-raw "$ib" -- "$fu" & ;;
    wget) job "$fi_" wget -q -S -O - -T "$tw" -t 1 "$@" --post-data "$ib" "$fu" & ;;
    python3) (PD_H=$fe && export PD_H && job "$fi_" python3 -c "$py" "$fu" "$t" "$ib") & ;;
    node) (PD_H=$fe && export PD_H && job "$fi_" node -e "$js" "$fu" "$t" "$ib") & ;;
    bash) (PD_H=$fe && export PD_H && job "$fi_" bash -c "$bp" pd-doctor "$fh" "$fo" "$fa" "$t" "$ib") & ;;
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
# stderr (unbuffered) the moment that transfer ends: "NUMBER CODE EXIT s=SESSION
# MESSAGE". Each URL is a group of its own (--next), with its own headers.
together() {
  k=0 g=
  for a in "$@"; do
    if [ $((k % 4)) -eq 0 ] && [ -n "$a" ]; then
      set -- "$@" ${g:+--next} -s --no-progress-meter --max-time "$t" -o /dev/null \
        -w '%{stderr}%{urlnum} %{http_code} %{exitcode} s=%header{mcp-session-id} %{errormsg}\n'
      headers_of $((k / 4))
      hd="$mh${hv:+$nl$hv}"
      while [ -n "$hd" ]; do
        set -- "$@" -H "${hd%%"$nl"*}"
        case $hd in *"$nl"*) hd=${hd#*"$nl"} ;; *) hd= ;; esac
      done
      set -- "$@" --data-raw "$ib" --url "$a"
      g=1
    fi
    k=$((k + 1))
  done
  shift "$k"
  [ "$#" -gt 0 ] || return 0
  curl --parallel --parallel-immediate --parallel-max 64 "$@"
}

# Writes each verdict as a run of its own would have (NUMBER counts the URLs curl was
# given). A 403 gets a run of its own at once, for its body, which says whether the
# Host header was refused; a URL that got no verdict (a curl older than 7.75, which
# knows no --parallel or %{urlnum}) gets one after curl ends.
verdicts() {
  seen=' '
  while read -r n code x sid msg; do
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
            case ${sid#s=} in '' | *[!A-Za-z0-9._~+/=:-]*) ;; *) printf 'r %s o __pd_session__%s\n' "$i" "${sid#s=}" ;; esac
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
# Only the URLs' words go to reach.
(
  k=0
  for a in "$@"; do
    if [ "$k" -lt "$nu" ]; then set -- "$@" "$a"; fi
    k=$((k + 1))
  done
  shift "$k"
  reach "$@"
) &
rp=$!
shift "$nu"

# The files the image was built with, each by digest and size: sha256sum prints
# "DIGEST  -"; cksum prints "CRC SIZE", the size as a bonus. An image with neither (a
# minimal one) gets the file itself, line by line ("fl INDEX LINE", each cut to 400
# bytes, 1000 lines for all files, then "file INDEX lines COUNT"), read by the shell
# alone: what pd-doctor compares costs no Docker job more, whatever the image has.
files() {
  i=0 budget=1000
  while [ "$i" -lt "$nf" ]; do
    if [ -f "$1" ]; then
      if s=$(sha256sum <"$1" 2>/dev/null); then
        printf 'file %s sha256 %s\n' "$i" "$s"
      elif s=$(cksum <"$1" 2>/dev/null); then
        printf 'file %s cksum %s\n' "$i" "$s"
      else
        n=0
        while IFS= read -r l || [ -n "$l" ]; do
          n=$((n + 1))
          if [ "$n" -gt "$budget" ]; then break; fi
          printf 'fl %s %.400s\n' "$i" "$l"
        done <"$1"
        budget=$((budget - n))
        printf 'file %s lines %s\n' "$i" "$n"
      fi
    else
      printf 'file %s missing\n' "$i"
    fi
    i=$((i + 1))
    shift
  done
}
files "$@" &
fp=$!
shift "$nf"

# Tags a stdio server's stdout, and says "answered" at its answer to tools/list (id 2),
# at an error answer, or at its 16th line that is not JSON: what the check needs has
# come (a server that floods its MCP channel with anything else is not MCP).
stag() {
  n=0 g=0
  while IFS= read -r l || [ -n "$l" ]; do
    n=$((n + 1))
    if [ "$n" -le 16 ]; then printf 's %s o %.65000s\n' "$1" "$l"; fi
    case $l in
      *'"id":2,'* | *'"id":2}'* | *'"id": 2,'* | *'"id": 2}'* | *'"error"'*) printf 's %s answered\n' "$1" ;;
      '{'* | '') ;;
      *)
        g=$((g + 1))
        if [ "$g" -eq 16 ]; then printf 's %s answered\n' "$1"; fi
        ;;
    esac
  done
}

# Starts one stdio server as Claude Code would, its argument vector as given: sends it
# initialize, notifications/initialized and tools/list on stdin, which stays open until
# the deadline (a server may end at end of input), and tags what it says.
stdio() {
  i=$1 n=$2
  shift 2
  k=0
  for a in "$@"; do
    if [ "$k" -lt "$n" ]; then set -- "$@" "$a"; fi
    k=$((k + 1))
  done
  shift "$k"
  if ! command -v "$1" >/dev/null 2>&1; then
    printf 's %s missing %.200s\n' "$i" "$1"
    return
  fi
  # The script a runtime is given (python3 /proxy/mcp_proxy.py): there, or not.
  case ${2-} in /*) if [ ! -e "$2" ]; then
    printf 's %s missing %.200s\n' "$i" "$2"
    return
  fi ;; esac
  # The status is said by the pipeline's last stage, as soon as the server ends: the
  # stage before it holds stdin open until the deadline.
  { { { printf '%s' "$msgs"; sleep "$wd"; sleep $((wq / 4 + 1)); } 3>&- 4>&- | { "$@" 3>&- 4>&-; printf 's %s x %s\n' "$i" "$?" >&4; }; } 2>&1 1>&3 | tag "$i" e E s >&4; } 3>&1 | stag "$i"
}

while [ "$#" -ge 2 ]; do
  case $2 in '' | *[!0-9]*) break ;; esac
  [ "$#" -ge $(($2 + 2)) ] || break
  stdio "$@" &
  n=$2
  shift $((n + 2))
done

# "WHAT EXIT ADDR...": getent's exit status for NAME, then each address once.
lookup() {
  out=$(getent ahosts "$2" 2>/dev/null)
  rc=$?
  printf '%s\n' "$out" | {
    seen=
    while read -r a _; do
      case " $seen " in *" $a "*) ;; *) seen="$seen $a" ;; esac
    done
    printf '%s %s%s\n' "$1" "$rc" "$seen"
  }
  return "$rc"
}

# Claude Code's first connection, to Anthropic's API (or the proxy it goes through):
# the name resolves, and a TCP connection to the port opens. Not a byte is sent: the
# connection is opened and closed. By bash's /dev/tcp, else python3, else node (Claude
# Code's own runtime), each stopped after the clients' time limit.
connect() {
  if command -v bash >/dev/null 2>&1; then
    set -- bash -c 'exec 3<>"/dev/tcp/$1/$2"' pd-doctor "$1" "$2"
  elif command -v python3 >/dev/null 2>&1; then
    set -- python3 -c "$pyc" "$1" "$2" "$t"
  elif command -v node >/dev/null 2>&1; then
    set -- node -e "$jsc" "$1" "$2" "$t"
  else
    printf 'api connect -\n'
    return
  fi
  e=$({
    "$@" </dev/null 3>&- 4>&- 5>&- &
    p=$!
    (sleep "$t" && kill "$p") >/dev/null 2>&1 3>&- 4>&- 5>&- &
    k=$!
    wait "$p"
    x=$?
    kill "$k" 2>/dev/null
    echo "__pd_exit__$x"
  } 2>&1)
  case $e in
    *__pd_exit__0) k=open ;;
    *refused*) k=refused ;;
    *nreachable* | *'No route'*) k=unreachable ;;
    *'timed out'* | *__pd_exit__143) k=timeout ;;
    *) k=error ;;
  esac
  printf 'api connect %s\n' "$k"
}

if [ -n "$ah" ]; then
  { if lookup 'api resolve' "$ah"; then connect "$ah" "$apt"; fi; } &
  ap=$!
else
  ap=
fi

lookup resolve "$hn"

if [ -n "$ss" ]; then
  if command -v tmux >/dev/null 2>&1; then
    tmux has-session -t "$ss" >/dev/null 2>&1 </dev/null
    printf 'session %s\n' "$([ "$?" -eq 0 ] && echo 0 || echo 1)"
    tmux display -p -t "$ss" '#{window_width} #{window_height}' 2>/dev/null </dev/null | { read -r w h _ && printf 'pane %.12s %.12s\n' "$w" "$h"; }
  else
    printf 'session -\n'
  fi
fi

cfg=${CLAUDE_CONFIG_DIR:-${HOME:-/root}/.claude}
if [ -d "$cfg" ]; then printf 'debug %s\n' "$([ -d "$cfg/debug" ] && echo 1 || echo 0)"; fi

if [ -r /proc/1/cmdline ]; then
  p=$(tr '\000\n' '  ' </proc/1/cmdline 2>/dev/null) || p=$(cat /proc/1/cmdline 2>/dev/null) || IFS= read -r p </proc/1/cmdline
  printf 'pid1 %.400s\n' "${p%%"$nl"*}"
fi

# Claude Code's processes (it names itself claude): two in one container are two
# sessions writing one config dir. /proc alone: the image may have no ps.
n=0 pids=
for d in /proc/[0-9]*; do
  if read -r p c st _ 2>/dev/null <"$d/stat" && [ "$c" = "(claude)" ] && [ "$st" != Z ]; then
    n=$((n + 1)) pids="$pids $p"
  fi
done
printf 'claude %s%s\n' "$n" "$pids"

wait "$rp" "$fp" $ap
printf 'done\n'
}

# Forwards the body's lines until it is done and every stdio server has answered or
# ended, then says "end" and ends whatever is still running.
collect() {
  seen=
  body_done=
  while IFS= read -r l; do
    printf '%s\n' "$l"
    case $l in
      done) body_done=1 ;;
      's '*)
        # Only the script's own words: a server's output is "s INDEX o|e|E ...".
        r=${l#s } && i=${r%% *} && r=${r#* }
        case $i in '' | *[!0-9]*) r= ;; esac
        case $r in answered | 'x '* | 'missing '*)
          case " $seen " in *" $i "*) ;; *) seen="$seen $i" want=$((want - 1)) ;; esac
          ;;
        esac
        ;;
    esac
    if [ -n "$body_done" ] && [ "$want" -le 0 ]; then break; fi
  done
  printf 'end\n'
  if [ -n "$leader" ]; then kill -s KILL 0; fi
}

# How many stdio servers there are: the groups after the URLs' words.
want=0
count() {
  shift $((nu + nf))
  while [ "$#" -ge 2 ]; do
    case $2 in '' | *[!0-9]*) break ;; esac
    [ "$#" -ge $(($2 + 2)) ] || break
    want=$((want + 1))
    n=$2
    shift $((n + 2))
  done
}
count "$@"
body "$@" | collect
