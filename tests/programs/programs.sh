#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/programs/programs.sh - the real-program workloads, as shell functions, shared by
# tests/programs/run.sh (output comparison) and benchmarks/programs.sh (time and RSS).
#
# Source it, call programs_setup WORKDIR [--quick], then run "prog_NAME" in an empty
# directory: it prints what must be identical under every malloc.  The functions are exported,
# so `bash -c prog_NAME` works in a child (for /usr/bin/time).  PROGRAMS lists the names,
# PROGRAM_TOOL[name] the command each one needs.

PROGRAMS=(python redis sqlite gcc git lua gawk xz zstd)

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3 || true)
declare -A PROGRAM_TOOL=([python]=$PY [redis]=redis-benchmark [sqlite]=sqlite3 [gcc]=gcc
    [git]=git [lua]=lua5.4 [gawk]=gawk [xz]=xz [zstd]=zstd)

# Install what is missing (quietly); failures leave those programs to be skipped.
programs_install() {
    local need=()
    command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
    command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
    command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
    command -v lua5.4 >/dev/null 2>&1 || need+=(lua5.4)
    command -v gawk >/dev/null 2>&1 || need+=(gawk)
    command -v xz >/dev/null 2>&1 || need+=(xz-utils)
    command -v zstd >/dev/null 2>&1 || need+=(zstd)
    command -v git >/dev/null 2>&1 || need+=(git)
    command -v gcc >/dev/null 2>&1 || need+=(gcc)
    [[ -x /usr/bin/python3 ]] || need+=(python3)
    if ((${#need[@]})); then
        echo "programs: installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
            echo "programs: apt-get install failed (programs without their tools are skipped)" >&2
    fi
    PY=/usr/bin/python3
    [[ -x $PY ]] || PY=$(command -v python3 || true)
    PROGRAM_TOOL[python]=$PY
}

# programs_setup WORKDIR QUICK(0|1): sizes, shared input in WORKDIR/input.
programs_setup() {
    export IN=$1/input
    mkdir -p "$IN"
    if (($2)); then
        SQL_ROWS=200000 GCC_FUNCS=3000 GIT_FILES=2000 LUA_N=200000 AWK_LINES=200000
        XZ_MB=16 PY_N=200000 REDIS_N=20000 REDIS_KEYS=100000
    else
        SQL_ROWS=1000000 GCC_FUNCS=8000 GIT_FILES=5000 LUA_N=2000000 AWK_LINES=2000000
        XZ_MB=48 PY_N=2000000 REDIS_N=200000 REDIS_KEYS=1000000
    fi
    export SQL_ROWS GCC_FUNCS GIT_FILES LUA_N AWK_LINES XZ_MB PY_N REDIS_N REDIS_KEYS PY
    gen_blob "$XZ_MB"
}

# Each prog_NAME runs in its own empty directory with $IN = shared input directory and prints
# what must be identical on stdout.

prog_python() {
    "$PY" - <<'EOF'
import os, subprocess, sys, threading, hashlib, json
from concurrent.futures import ThreadPoolExecutor
n = int(os.environ["PY_N"])
d = {f"key{i}": [i, str(i) * 3, {"v": i * 2}] for i in range(n)}
s = sum(v[0] + v[2]["v"] for v in d.values())
del d
text = "".join(chr(97 + (i * 7) % 26) for i in range(n))
words = {}
for i in range(0, len(text), 5):
    w = text[i:i + 5]
    words[w] = words.get(w, 0) + 1
def work(k):
    acc = []
    for i in range(n // 20):
        acc.append((k * i) % 1000)
        if len(acc) > 1000:
            acc = [sum(acc)]
    return hashlib.sha256(json.dumps(acc).encode()).hexdigest()
res = [None] * 8
def run(k):
    res[k] = work(k)
ts = [threading.Thread(target=run, args=(k,)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
with ThreadPoolExecutor(4) as ex:
    pool = list(ex.map(work, range(8, 16)))
out = subprocess.run([sys.executable, "-c", "print(sum(i*i for i in range(100000)))"],
                     capture_output=True, text=True, check=True).stdout.strip()
sh = subprocess.run(["sh", "-c", "echo sub; exit 3"], capture_output=True, text=True)
print(s, len(words), max(words.values()), res, pool, out, sh.stdout.strip(), sh.returncode)
EOF
}

prog_sqlite() {
    sqlite3 db.sqlite <<EOF
PRAGMA journal_mode=OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < $SQL_ROWS)
INSERT INTO t SELECT i, (i * 7919) % 10007, printf('name-%d-%x', i % 5000, i * 31), i / 7.0 FROM r;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
SELECT count(*), sum(a), count(DISTINCT b), printf('%.3f', avg(c)) FROM t;
SELECT a, count(*) FROM t GROUP BY a ORDER BY count(*) DESC, a LIMIT 5;
SELECT b, sum(a) FROM t WHERE a BETWEEN 100 AND 200 GROUP BY b ORDER BY b LIMIT 5;
SELECT count(*) FROM t x JOIN t y ON x.a = y.id WHERE y.a < 50;
UPDATE t SET b = upper(b) WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), min(b), max(b) FROM t;
SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY b DESC, id LIMIT 20);
EOF
}

prog_gcc() {
    awk -v n="$GCC_FUNCS" 'BEGIN {
        print "#include <string.h>";
        print "struct s { int a[8]; double d; char name[32]; };";
        for (i = 0; i < n; i++) {
            printf "static int f%d(struct s *p, int x) { int r = x; for (int i = 0; i < 8; i++) r += p->a[i] * (i + %d); if (r %% %d == 0) strcpy(p->name, \"f%d\"); p->d += r * 0.5; return r ^ %d; }\n", i, i % 13, (i % 7) + 2, i, i;
        }
        print "int run(struct s *p);";
        print "int run(struct s *p) { int t = 0;";
        for (i = 0; i < n; i++) printf "  t += f%d(p, t);\n", i;
        print "  return t; }";
    }' >big.c
    gcc -O2 -c big.c -o big.o
    echo "gcc status $?"
    md5sum <big.o
}

prog_git() {
    export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t
    export GIT_COMMITTER_EMAIL=t@example.com GIT_AUTHOR_DATE="2024-01-01T00:00:00Z"
    export GIT_COMMITTER_DATE="2024-01-01T00:00:00Z" GIT_CONFIG_NOSYSTEM=1 HOME=$PWD
    git init -q -b main repo && cd repo || return 1
    awk -v n="$GIT_FILES" 'BEGIN { for (i = 0; i < n; i++) {
        d = sprintf("dir%02d", i % 50); system("mkdir -p " d);
        f = sprintf("%s/file%05d.txt", d, i);
        for (j = 0; j < 20; j++) printf "line %d of file %d %s\n", j, i, (i * j) % 97 == 0 ? "needle" : "hay" > f;
        close(f) } }'
    git add -A && git commit -q -m initial
    awk 'BEGIN { for (i = 0; i < 500; i++) { f = sprintf("dir%02d/file%05d.txt", i % 50, i * 3); print "changed" >> f; close(f) } }'
    git commit -q -am second
    git rev-parse HEAD HEAD^
    git ls-files | wc -l
    git grep -c needle | wc -l
    git diff --stat HEAD^ HEAD | tail -1
    git log --oneline | wc -l
    git gc -q && git count-objects -v | grep -E '^(count|in-pack|packs)'
    git status --porcelain | wc -l
}

prog_lua() {
    lua5.4 - "$LUA_N" <<'EOF'
local n = tonumber(arg[1])
local t = {}
for i = 1, n do t[i] = {i, tostring(i), i * 0.5} end
local s = 0
for i = 1, n, 3 do s = s + t[i][1] + #t[i][2] end
local words = {}
for i = 1, n // 4 do
  local k = string.format("w%d", (i * 7919) % 10007)
  words[k] = (words[k] or 0) + 1
end
local cnt = 0
for _ in pairs(words) do cnt = cnt + 1 end
local parts = {}
for i = 1, 10000 do parts[#parts + 1] = string.rep("x", i % 50) .. i end
local big = table.concat(parts, ",")
local function mk(i) return function(x) return x + i end end
local acc = 0
for i = 1, n // 10 do acc = mk(i)(acc) % 1000003 end
t = nil
collectgarbage()
print(s, cnt, #big, acc)
EOF
}

prog_gawk() {
    awk -v n="$AWK_LINES" 'BEGIN { for (i = 0; i < n; i++) printf "%d user%d %s %d\n", i, (i * 7919) % 5003, (i % 3 ? "GET" : "POST"), (i * 31) % 1000 }' >in.txt
    gawk '{ c[$2]++; b[$3] += $4; s = s substr($2, 1, 1) } END {
        n = 0; for (k in c) n++;
        PROCINFO["sorted_in"] = "@ind_str_asc";
        m = 0; for (k in c) if (c[k] > m) { m = c[k]; mk = k }
        for (k in b) print k, b[k];
        print n, m, mk, length(s) }' in.txt
}

gen_blob() { # deterministic compressible data, $1 MiB
    awk -v mb="$1" 'BEGIN { srand(1); n = mb * 1024 * 1024 / 64;
        for (i = 0; i < n; i++) printf "%08d %s %s\n", i, substr("the quick brown fox jumps over the lazy dog", 1 + i % 20, 20), int(rand() * 1e9) }' >"$IN/blob"
}

prog_xz() {
    xz -T2 -6 -k -c "$IN/blob" >blob.xz
    md5sum <blob.xz
    xz -T2 -d -c blob.xz | md5sum
}

prog_zstd() {
    zstd -q -T2 -10 -c "$IN/blob" >blob.zst
    md5sum <blob.zst
    zstd -q -T2 -d -c blob.zst | md5sum
}

prog_redis() {
    # A free port below the kernel's ephemeral range (32768 and up, where every outgoing
    # connection takes one): a port in use makes the server exit ("bind: Address already in
    # use"), and then redis-benchmark spins forever on refused connections.  So: up to five
    # ports, each accepted only when our own server answers, and a time limit on the benchmark.
    local port cli up=0
    for _ in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 12000))
        cli=(redis-cli -p "$port")
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$PWD" \
            --dbfilename dump.rdb --enable-debug-command yes --daemonize no --logfile redis.log &
        redis_pid=$!
        for _ in $(seq 100); do
            kill -0 "$redis_pid" 2>/dev/null || break
            if "${cli[@]}" ping >/dev/null 2>&1 && kill -0 "$redis_pid" 2>/dev/null; then
                up=1
                break
            fi
            sleep 0.1
        done
        ((up)) && break
        kill "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
    done
    "${cli[@]}" ping
    timeout 300 redis-benchmark -p "$port" -q -n "$REDIS_N" -c 20 -r 10000 \
        -t set,get,incr,lpush,rpop,sadd,hset,lrange_100 >bench.txt 2>&1
    echo "benchmark status $?"
    "${cli[@]}" flushall
    "${cli[@]}" debug populate "$REDIS_KEYS" key 100
    for i in $(seq 1 200); do echo "RPUSH list $i"; echo "HSET h f$i v$i"; echo "SADD s m$((i % 37))"; done |
        "${cli[@]}" >/dev/null
    "${cli[@]}" dbsize
    "${cli[@]}" bgsave >/dev/null
    for _ in $(seq 600); do
        "${cli[@]}" info persistence | grep -q 'rdb_bgsave_in_progress:0' && break
        sleep 0.1
    done
    "${cli[@]}" info persistence | grep -E 'rdb_last_bgsave_status' | tr -d '\r'
    "${cli[@]}" debug digest
    "${cli[@]}" debug reload
    "${cli[@]}" debug digest
    "${cli[@]}" lrange list 0 4 | tr '\n' ' '
    echo
    "${cli[@]}" shutdown nosave >/dev/null 2>&1
    wait "$redis_pid"
    echo "redis status $?"
    redis_pid=
}

export -f prog_python prog_sqlite prog_gcc prog_git prog_lua prog_gawk prog_xz prog_zstd \
    prog_redis gen_blob
