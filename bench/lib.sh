# Shared helpers of the benchmark scripts; `source bench/lib.sh` from any
# of them. It moves to the workspace root, so paths are relative to it.
#
# Results: a section script calls `result SECTION FIGURE VALUE SHOWN TARGET`
# for each figure it judges; they go to $BENCH_RESULTS (bench/run-all.sh
# sets it so that one table covers every section; a script run alone gets
# its own file) and `print_results` prints them with PASS or MISS.

set -euo pipefail
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$BENCH_ROOT"

# RELEASE and GORGON may point elsewhere (another build, to compare), with
# NO_BUILD=1 to use the binaries as they are.
RELEASE=${RELEASE:-target/release}
GORGON=${GORGON:-$RELEASE/gorgon}
TOOLS=$BENCH_ROOT/target/bench-tools
VENV=${VENV:-$BENCH_ROOT/target/bench-venv}

if [ -z "${BENCH_RESULTS:-}" ]; then
    # Created by the first `result`, so scripts that judge nothing leave
    # no file behind.
    BENCH_RESULTS=${TMPDIR:-/tmp}/gorgon-bench-results.$$
    BENCH_OWN_RESULTS=1
fi
export BENCH_RESULTS

# ---------------------------------------------------------------- figures

# The median of the numbers on stdin (one per line or space-separated).
median() {
    tr ' ' '\n' | grep . | sort -g |
        awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# Arithmetic on floats: `calc 'a / b' a=1 b=2` prints the result.
calc() {
    local expr=$1
    shift
    local vars=()
    for v in "$@"; do vars+=(-v "$v"); done
    awk "${vars[@]}" "BEGIN { printf \"%.6g\n\", $expr }"
}

# Wall-clock time in nanoseconds, read without starting a process (bash's
# $EPOCHREALTIME has microsecond resolution).
now_ns() {
    local t=$EPOCHREALTIME
    echo "${t/[.,]/}000"
}

# `mark NAME`: sets the variable NAME to now_ns without a subshell, for
# timing short spans (a $(now_ns) forks, and the parent waits for it).
mark() {
    local t=$EPOCHREALTIME
    printf -v "$1" '%s' "${t/[.,]/}000"
}

# Runs a command with its output thrown away and sets WALL_NS (wall time),
# CPU_NS (user + sys of it and the children it waited for) and MAX_RSS_KB
# (the largest resident set of any of them), from /usr/bin/time.
timed() {
    local out
    out=$(mktemp /tmp/gorgon-bench-time.XXXXXX)
    local start end
    mark start
    /usr/bin/time -f '%U %S %M' -o "$out" "$@" >/dev/null
    mark end
    WALL_NS=$((end - start))
    read -r user sys MAX_RSS_KB < <(tail -1 "$out")
    CPU_NS=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1e9 }')
    rm -f "$out"
}

# ---------------------------------------------------------------- machine

# One line saying what machine and software the figures come from.
machine_line() {
    local model
    model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
    local virt=""
    if command -v systemd-detect-virt >/dev/null; then
        virt=$(systemd-detect-virt 2>/dev/null || true)
    fi
    printf '%s cores, %s%s, Linux %s, %s, %s, %s' \
        "$(nproc)" "$model" "${virt:+ ($virt)}" "$(uname -r)" \
        "Debian $(cat /etc/debian_version 2>/dev/null || echo '?')" \
        "$(rustc --version 2>/dev/null | cut -d' ' -f1-2)" \
        "$(date -u +%Y-%m-%dT%H:%MZ)"
}

# Cores' worth of CPU time every process of the machine used over one
# second, before a section starts: anything well above 0 skews figures.
background_load() {
    local a b
    a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)
    calc '(b - a) / t' a="$a" b="$b" t="$(getconf CLK_TCK)"
}

# Prints the section's heading with the machine's background load.
section() {
    local load
    load=$(background_load)
    echo
    echo "== $1 (background load before it: $load cores)"
    if awk -v l="$load" 'BEGIN { exit !(l > 0.2) }'; then
        echo "   warning: the machine is busy; figures below are skewed" >&2
    fi
}

# ---------------------------------------------------------------- installing

# Installs Debian packages that are missing (needs root and the Debian
# archive); each argument is `COMMAND:PACKAGE` or just `PACKAGE`.
need_debian() {
    local missing=()
    for spec in "$@"; do
        local cmd=${spec%%:*} pkg=${spec#*:}
        if [ "$cmd" = "$pkg" ]; then
            dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
        else
            command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] || missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]} from Debian" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { "${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

# The original Python Gorgon 0.3.4 from PyPI, in a virtual environment.
need_original() {
    need_debian python3 python3-venv
    if ! "$VENV/bin/python" -c 'import gorgon' 2>/dev/null; then
        echo "installing gorgon==0.3.4 from PyPI into $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet gorgon==0.3.4
    fi
}

# oha from crates.io into target/bench-tools; sets OHA, empty when it
# cannot be installed (the HTTP section then leaves it out, saying so).
need_oha() {
    OHA=""
    if [ -x "$TOOLS/bin/oha" ]; then
        OHA=$TOOLS/bin/oha
    elif command -v cargo >/dev/null; then
        echo "installing oha from crates.io into $TOOLS (cargo install oha --locked; a few minutes, once)" >&2
        if cargo install --quiet oha --locked --root "$TOOLS" >"$TOOLS.oha.log" 2>&1; then
            OHA=$TOOLS/bin/oha
        else
            echo "note: oha could not be installed (see $TOOLS.oha.log); the HTTP section runs without it" >&2
        fi
    fi
}

# Release builds of gorgon and the given workspace packages.
build_release() {
    [ -n "${NO_BUILD:-}" ] && return 0
    echo "building gorgon and ${*:-nothing else} (release)" >&2
    local packages=(-p gorgon-cli)
    for p in "$@"; do packages+=(-p "$p"); done
    cargo build --release --quiet "${packages[@]}"
}

# ---------------------------------------------------------------- results

# `result SECTION FIGURE VALUE SHOWN TARGET`: one judged figure. VALUE is a
# plain number, SHOWN how to print it, TARGET `<=2`, `>=0.95` or `-` (shown
# for information, not judged).
result() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$BENCH_RESULTS"
}

# Prints every result so far as one table with PASS / MISS.
print_results() {
    awk -F'\t' '
        function verdict(value, target,   op, limit) {
            if (target == "-" || target == "") return "";
            if (value == "nan" || value == "") return "n/a";
            op = substr(target, 1, 2); limit = substr(target, 3) + 0;
            if (op == "<=") return (value + 0 <= limit) ? "PASS" : "MISS";
            if (op == ">=") return (value + 0 >= limit) ? "PASS" : "MISS";
            return "?";
        }
        BEGIN { printf "%-10s %-50s %20s  %-8s %s\n", "section", "figure (median)", "value", "target", "" }
        {
            target = ($5 == "-") ? "" : $5;
            sub(/^<=/, "<= ", target); sub(/^>=/, ">= ", target);
            printf "%-10s %-50s %20s  %-8s %s\n", $1, $2, $4, target, verdict($3, $5)
        }' "$BENCH_RESULTS"
}

# A script run alone prints its own table at the end.
finish_section() {
    if [ -n "${BENCH_OWN_RESULTS:-}" ] && [ -e "$BENCH_RESULTS" ]; then
        echo
        print_results
        rm -f "$BENCH_RESULTS"
    fi
}
