#!/usr/bin/env python3
"""Where the release server's CPU goes per call: reads `perf script -F comm,ip,sym`
(DWARF call stacks of the server sampled at 999 Hz while it takes RATE calls a second
for SECONDS) on stdin and prints

- CPU per call (samples x sampling period / calls in the window);
- the split between the server's threads (tokio's workers, sqlx's SQLite workers);
- the share of named stages of a call, inclusive (a stage's callees count in it; work a
  stage hands to a SQLite worker thread counts under that thread, not the stage);
- what kind of work it is, by the frames under each sample;
- the functions with most samples of their own.

With --folded FILE it also writes the stacks folded (`thread;root;...;leaf count`), the
input of flame graph tools such as inferno-flamegraph or flamegraph.pl."""

import argparse
import collections
import re
import sys

PERIOD_MS = 1000.0 / 999.0

# (label, substrings of a frame): a sample counts in a stage when any frame matches.
STAGES = [
    ("HTTP serving (hyper server, routing, middleware)", ("server::listener::serve",)),
    ("sign-in check (session read, user read)", ("server::guards::require_sign_in", "app::auth::service::require_user")),
    ("chat send, whole (app::chat::service::send)", ("app::chat::service::send",)),
    ("  admission (gateway::admit_within_limits)", ("app::gateway::admit_within_limits",)),
    ("  Claude call (client: request, stream, record)", ("app::claude::client::ClaudeClient::call_streamed",)),
    ("    usage record (ledger transaction)", ("app::usage::ledger::Ledger::",)),
    ("  reply stored and read back", ("app::chat::store::insert", "app::chat::store::message")),
    ("budget alerts after the call (fire_alerts)", ("app::budget::service::fire_alerts",)),
    ("pool: acquire, release, ping", ("sqlx_core::pool::",)),
    ("SQLite worker threads, whole", None),
    ("  SQL execution (sqlite3_step)", ("sqlite3_step",)),
]

KINDS = [
    ("SQL execution in SQLite", lambda s: s.thread == "sqlx-sqlite-wor" and any("sqlite3_step" in f for f in s.frames)),
    ("kernel: scheduling, sleeping, waking threads", lambda s: any(k in f for f in s.frames[:12] for k in ("schedule", "futex", "epoll_wait", "try_to_wake_up"))),
    ("kernel: network and file I/O", lambda s: any(k in f for f in s.frames[:14] for k in ("tcp_", "sock_", "__x64_sys_write", "__x64_sys_read", "__x64_sys_sendto", "__x64_sys_recvfrom", "ksys_", "vfs_", "fsync", "pwrite", "pread"))),
    ("memory allocation", lambda s: bool(s.frames) and any(k in s.frames[0] for k in ("malloc", "free", "realloc", "memmove", "memcpy", "_int_", "unlink_chunk"))),
    ("JSON and form encoding", lambda s: any(k in f for f in s.frames for k in ("serde_json::", "serde_qs::", "serde_urlencoded::"))),
    ("channels between threads (flume, oneshot)", lambda s: any(k in f for f in s.frames[:6] for k in ("flume::", "oneshot::"))),
    ("other", lambda s: True),
]


class Sample:
    __slots__ = ("thread", "frames")

    def __init__(self, thread):
        self.thread = thread
        self.frames = []  # leaf first


def read(stream):
    samples, current = [], None
    for line in stream:
        if not line.strip():
            if current is not None:
                samples.append(current)
                current = None
            continue
        if not line[0].isspace():
            current = Sample(line.split()[0])
            continue
        parts = line.strip().split(None, 1)
        if current is not None and len(parts) == 2:
            symbol = re.sub(r"\+0x[0-9a-f]+$", "", parts[1])
            symbol = re.sub(r" \(\S+\)$", "", symbol)
            current.frames.append(symbol)
    if current is not None:
        samples.append(current)
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, required=True, help="calls a second during the sampling")
    parser.add_argument("--seconds", type=float, required=True, help="how long perf sampled")
    parser.add_argument("--folded", help="write folded stacks here")
    args = parser.parse_args()
    samples = read(sys.stdin)
    if not samples:
        sys.exit("profile: perf recorded no samples (is perf allowed to trace? see /proc/sys/kernel/perf_event_paranoid)")
    n = len(samples)
    calls = args.rate * args.seconds
    share = lambda k: f"{100.0 * k / n:5.1f}%  {k * PERIOD_MS / calls:6.3f} ms"

    print(f"{n} samples over {args.seconds:.0f} s at {args.rate:.0f} calls/s: {n * PERIOD_MS / calls:.3f} ms of server CPU per call")
    print(f"{'':52} {'share':>6}  {'per call':>9}")
    for thread, k in collections.Counter(s.thread for s in samples).most_common(6):
        print(f"thread {thread:<45} {share(k)}")
    print()
    for label, keys in STAGES:
        if keys is None:
            k = sum(1 for s in samples if s.thread == "sqlx-sqlite-wor")
        else:
            k = sum(1 for s in samples if any(key in f for f in s.frames for key in keys))
        print(f"{label:<52} {share(k)}")
    print()
    kinds = collections.Counter()
    for s in samples:
        kinds[next(label for label, test in KINDS if test(s))] += 1
    for label, _ in KINDS:
        print(f"{label:<52} {share(kinds[label])}")
    print("\nfunctions with most samples of their own:")
    own = collections.Counter(s.frames[0] if s.frames else "?" for s in samples)
    for name, k in own.most_common(15):
        print(f"  {100.0 * k / n:5.1f}%  {name[:110]}")

    if args.folded:
        folded = collections.Counter(";".join([s.thread] + [f.replace(";", ":") for f in reversed(s.frames)]) for s in samples)
        with open(args.folded, "w") as out:
            for stack, k in sorted(folded.items()):
                out.write(f"{stack} {k}\n")
        print(f"\nfolded stacks: {args.folded}")


if __name__ == "__main__":
    main()
