# Sourced by the benchmarks that time whole processes: `median` of numbers on stdin, `peak_rss_mb CMD` (median peak
# RSS in MB over $runs runs of a shell command, each after $prepare) and `time_s CMD` (hyperfine's median wall
# seconds over $runs runs after $warmup (default 1) uncounted ones, each after $prepare; its JSON goes to $dir/h.json).
# The caller sets runs, prepare and dir.
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
peak_rss_mb() {
  for _ in $(seq "$runs"); do
    bash -c "$prepare"
    /usr/bin/time -v bash -c "$1" 2>&1 >/dev/null | awk '/Maximum resident set size/ {print $6 / 1024}'
  done | median
}
time_s() {
  hyperfine --warmup "${warmup:-1}" --runs "$runs" --prepare "$prepare" --export-json "$dir/h.json" "$1" >/dev/null 2>&1
  python3 -c "import json; print(json.load(open('$dir/h.json'))['results'][0]['median'])"
}
