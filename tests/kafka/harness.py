#!/usr/bin/env python3
"""The Kafka scale-out recipe (telegraf/scale-out/) run through a real
Kafka-protocol broker (tansu) with real consumer groups (librdkafka, through
confluent-kafka).

`harness.py run` is the test (tests/kafka/README.md says what it checks);
`harness.py instance` is one aggregator instance: two consumers set up as
aggregator.conf sets up Telegraf's two kafka_consumer inputs, feeding one
e2e-aggregator child's stdin. Only 127.0.0.1 is used.
"""

import argparse
import collections
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

NS = 1_000_000_000
# aggregator.conf's flags (period, grace, drop-original, stats).
PERIOD_S = 5
GRACE_S = 30
AGG_FLAGS = [
    "--period", f"{PERIOD_S}s", "--grace", f"{GRACE_S}s",
    "--drop-original", "--stats-interval", "60s",
]
P = 12  # partitions of the network topic
SERVICE_PARTITIONS = 2
# Merged by timestamp: no source runs more than this ahead of a source that
# is empty but not finished.
MERGE_BOUND_NS = 10 * NS
# Consumer settings as sarama's defaults, which Telegraf's kafka_consumer
# keeps: session timeout 10 s, heartbeat 3 s, commit every 1 s.
SESSION_TIMEOUT_MS = 10_000
ADDITIVE = [
    "lines_in", "ignored", "invalid", "other", "aggregated", "late", "skipped",
    "skipped_missing_tag", "skipped_no_numeric_field", "skipped_max_series",
    "skipped_future", "skipped_out_of_range", "skipped_no_timestamp",
    "passed", "non_numeric_fields", "rows_written", "rows_unwritable",
]


# ---------------------------------------------------------------- records

PATH_TAG = re.compile(rb",path=((?:[^,\\ ]|\\.)*)")

def split_unescaped(text, sep):
    """Splits line-protocol text at `sep` not preceded by a backslash."""
    out, cur, esc = [], [], False
    for ch in text:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            cur.append(ch)
            esc = True
        elif ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def unescape(text):
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ").replace("\\\\", "\\")


class Record:
    __slots__ = ("kind", "key", "ts", "line")

    def __init__(self, kind, key, ts, line):
        self.kind, self.key, self.ts, self.line = kind, key, ts, line


def classify(line):
    """A delay line as `outputs.kafka` keys it (network: `path`, services:
    `sfr`), or None for lines the agents' namepass keeps out of Kafka."""
    series = split_unescaped(line, " ")[0]
    parts = split_unescaped(series, ",")
    kind = {"network_delays": "n", "service_delays": "s"}.get(parts[0])
    if kind is None:
        return None
    want = "path" if kind == "n" else "sfr"
    key = None
    for tag in parts[1:]:
        k, _, v = tag.partition("=")
        if unescape(k) == want:
            key = unescape(v).encode()
    return Record(kind, key, int(line.rsplit(" ", 1)[1]), line.encode())


def load_recording(path):
    with open(path, encoding="utf-8") as f:
        recs = [classify(line.rstrip("\n")) for line in f if line.strip() and not line.startswith("#")]
    return [r for r in recs if r is not None]


def generate(paths, sfrs, seconds, seed, t0=1_700_000_000 * NS):
    """A workload with `paths` paths (both directions) over `sfrs` SFRs with
    two service instances each, 1 Hz for `seconds`, up to 0.8 s of arrival
    jitter, and one network point without `path` (no key: a random
    partition, skipped by e2e-aggregator)."""
    rng = random.Random(seed)
    series = []
    for j in range(paths):
        a = j % sfrs
        b = (a + 1 + j // sfrs) % sfrs
        series.append(("n", f"network_delays,path=path-{j:03d},source=sfr-{a:02d},target=sfr-{b:02d}"))
        series.append(("n", f"network_delays,path=path-{j:03d},source=sfr-{b:02d},target=sfr-{a:02d}"))
    for k in range(sfrs):
        for inst in range(2):
            series.append(("s", f"service_delays,endpoint=ep{k},sf_instance=i{inst},sfr=sfr-{k:02d}"))
    lines = []
    for t in range(seconds):
        for s, (kind, key) in enumerate(series):
            ts = t0 + t * NS + (s * 7_919_993) % NS
            arrival = ts + rng.randrange(800_000_000)
            if kind == "n":
                fields = f"latency={rng.randrange(1, 40)}.{rng.randrange(1000)},bandwidth={rng.randrange(50, 950)}"
            else:
                fields = (f"response_time={rng.randrange(10, 400)}.{rng.randrange(97)},"
                          f"request_size={rng.randrange(500, 2500)}i,response_size={rng.randrange(50000)}")
            lines.append((arrival, f"{key} {fields} {ts}"))
    lines.append((t0 + 7 * NS + 1, f"network_delays,source=sfr-01,target=sfr-02 latency=1 {t0 + 7 * NS + 1}"))
    lines.sort(key=lambda x: x[0])
    return [classify(line) for _, line in lines]


def write_lines(path, recs):
    with open(path, "wb") as f:
        for r in recs:
            f.write(r.line + b"\n")


# ---------------------------------------------------------------- broker

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline_s=20):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker not listening on 127.0.0.1:{port}")


class Env:
    """The broker address and the programs the harness runs."""

    def __init__(self, broker, tansu, aggregator, work):
        self.broker, self.tansu, self.aggregator, self.work = broker, tansu, aggregator, work

    def create_topic(self, name, partitions):
        subprocess.run([self.tansu, "topic", "create", name, "--broker", f"tcp://{self.broker}",
                        "--partitions", str(partitions)], check=True, stdout=subprocess.DEVNULL)

    def setup(self, label, recs):
        """A measurement's two topics (network keyed by path over P
        partitions, services) and `recs` written to a file as the one
        recording they are produced from: (network topic, service topic,
        recording path)."""
        net_topic, svc_topic = f"{label}-network", f"{label}-services"
        self.create_topic(net_topic, P)
        self.create_topic(svc_topic, SERVICE_PARTITIONS)
        produced = os.path.join(self.work, f"{label}.lp")
        write_lines(produced, recs)
        return net_topic, svc_topic, produced


# ---------------------------------------------------------------- producing

def produce(env, recs, net_topic, svc_topic, speed=None, progress=None):
    """Produces `recs` keyed as Telegraf's outputs.kafka does (sarama's hash
    partitioner = librdkafka's fnv1a_random). With `speed`, paced: a record
    goes out when the wall clock has advanced (its event-time clock − the
    first) / speed since the start. Returns the partition ends, taken from
    the produce responses (tansu's ListOffsets(latest) is wrong)."""
    ends = {net_topic: collections.Counter(), svc_topic: collections.Counter()}
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            c = ends[msg.topic()]
            c[msg.partition()] = max(c[msg.partition()], msg.offset() + 1)

    prod = Producer({"bootstrap.servers": env.broker, "partitioner": "fnv1a_random",
                     "linger.ms": 100 if speed else 50, "acks": "all",
                     "queue.buffering.max.messages": 1_000_000, "on_delivery": delivered})
    start = time.time()
    clock0 = recs[0].ts
    clock = clock0
    for n, r in enumerate(recs):
        clock = max(clock, r.ts)
        if speed:
            ahead = start + (clock - clock0) / NS / speed - time.time()
            if ahead > 0.002:
                prod.poll(0)
                time.sleep(ahead)
        prod.produce(net_topic if r.kind == "n" else svc_topic, value=r.line, key=r.key,
                     timestamp=r.ts // 1_000_000)
        if n % 1000 == 0:
            prod.poll(0)
            if progress is not None:
                progress(clock)
    prod.flush(60)
    if errors:
        raise RuntimeError(f"{len(errors)} produce errors, first: {errors[0]}")
    return {t: {p: c[p] for p in sorted(c)} for t, c in ends.items()}


# ---------------------------------------------------------------- instance

def instance_main(a):
    """One aggregator instance: the network topic in the shared group, the
    services topic in a group of its own, both into one e2e-aggregator."""
    log_fd = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def log(ev, **kw):
        # One write per event, before the points it names reach the child,
        # so that a SIGKILL loses no record of what was delivered.
        os.write(log_fd, (json.dumps({"ev": ev, "t": time.time(), **kw}) + "\n").encode())

    agg = subprocess.Popen(a.agg, stdin=subprocess.PIPE, stdout=open(a.out, "wb"),
                           stderr=open(a.out + ".err", "wb"))
    commands = queue.Queue()

    def read_commands():
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("stop")
    threading.Thread(target=read_commands, daemon=True).start()

    gated = [a.gate]
    cooperative = a.strategy == "cooperative-sticky"
    buffers = {}  # (topic, partition) -> deque of messages not yet delivered
    arrival = collections.deque()  # arrival order (mode arrival)
    received_next = {}  # (topic, partition) -> next offset received
    owned = {a.net_topic: set(), a.svc_topic: set()}

    def callbacks(topic):
        def on_assign(c, parts):
            log("assign", topic=topic, parts=[p.partition for p in parts])
            if cooperative:
                c.incremental_assign(parts)
            else:
                c.assign(parts)
            owned[topic].update(p.partition for p in parts)
            if gated[0] and parts:
                c.pause(parts)

        def on_revoke(c, parts, ev="revoke"):
            log(ev, topic=topic, parts=[p.partition for p in parts])
            gone = {p.partition for p in parts}
            owned[topic].difference_update(gone)
            for p in gone:
                # Not delivered, not stored: the next owner reads them again.
                buffers.pop((topic, p), None)
                received_next.pop((topic, p), None)
            if a.mode == "arrival":
                keep = [m for m in arrival if not (m.topic() == topic and m.partition() in gone)]
                arrival.clear()
                arrival.extend(keep)
            if cooperative:
                c.incremental_unassign(parts)
            else:
                c.unassign()

        def on_lost(c, parts):
            on_revoke(c, parts, "lost")
        return on_assign, on_revoke, on_lost

    def consumer(group, topic):
        c = Consumer({
            "bootstrap.servers": a.broker, "group.id": group, "client.id": a.client_id,
            "partition.assignment.strategy": a.strategy,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True, "auto.commit.interval.ms": 1000,
            # Stored once written to the child, as execd acknowledges a
            # metric once written to the program's stdin.
            "enable.auto.offset.store": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 3000,
            "fetch.wait.max.ms": 500,
        })
        on_assign, on_revoke, on_lost = callbacks(topic)
        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
        return c

    net = consumer(a.group, a.net_topic)
    svc = consumer(a.svc_group, a.svc_topic)
    ends = None
    keys = collections.defaultdict(set)
    newest = None
    max_behind = 0
    behind_grace = 0
    delivered = 0

    def load_ends():
        try:
            with open(a.ends) as f:
                e = json.load(f)
            return {(t, int(p)): n for t, ps in e.items() for p, n in ps.items()}
        except (OSError, ValueError):
            return None

    def release_merged():
        """Heads in timestamp order, never more than MERGE_BOUND_NS ahead of
        an owned source that is empty but not finished."""
        out = []
        sources = [(t, p) for t in owned for p in owned[t]]
        while True:
            heads = [(buffers[s][0].timestamp()[1], s) for s in sources if buffers.get(s)]
            if not heads:
                return out
            ts_ms, s = min(heads)
            for src in sources:
                if buffers.get(src):
                    continue
                nxt = received_next.get(src)
                end = ends.get(src, 0) if ends else None
                if end is not None and (nxt or 0) >= end:
                    continue  # finished
                last = last_ts.get(src)
                if last is None or ts_ms - last > MERGE_BOUND_NS // 1_000_000:
                    return out
            m = buffers[s].popleft()
            last_ts[s] = m.timestamp()[1]
            out.append(m)

    last_ts = {}
    stop_reason = None
    while stop_reason is None:
        try:
            while True:
                cmd = commands.get_nowait()
                if cmd == "go":
                    gated[0] = False
                    for c in (net, svc):
                        parts = c.assignment()
                        if parts:
                            c.resume(parts)
                    log("go")
                elif cmd in ("stop", "leave"):
                    stop_reason = cmd
                    break
        except queue.Empty:
            pass
        if stop_reason:
            break
        if ends is None and a.mode == "merge":
            ends = load_ends()
        got = False
        for c in (net, svc):
            for m in c.consume(num_messages=2000, timeout=0.02):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        log("error", error=str(m.error()))
                    continue
                got = True
                src = (m.topic(), m.partition())
                if src[1] not in owned[src[0]]:
                    continue
                received_next[src] = m.offset() + 1
                if a.mode == "merge":
                    buffers.setdefault(src, collections.deque()).append(m)
                else:
                    arrival.append(m)
        if a.mode == "merge":
            batch = release_merged() if ends is not None else []
        else:
            batch = list(arrival)
            arrival.clear()
        if not batch:
            if not got:
                time.sleep(0.005)
            continue
        ranges = {}
        for m in batch:
            k = (m.topic(), m.partition())
            r = ranges.get(k)
            if r and r[-1][1] + 1 == m.offset():
                r[-1][1] = m.offset()
            else:
                ranges.setdefault(k, []).append([m.offset(), m.offset()])
            ts = m.timestamp()[1] * 1_000_000
            if m.topic() == a.net_topic:
                # The path tag itself, not the message key: a wrong
                # routing key must show as a path on two instances.
                tag = PATH_TAG.search(m.value())
                keys[m.partition()].add(tag.group(1).decode() if tag else "")
            if newest is None or ts > newest:
                newest = ts
            behind = newest - ts
            max_behind = max(max_behind, behind)
            behind_grace += behind > GRACE_S * NS
        log("deliver", ranges=[[t, p, lo, hi] for (t, p), rs in ranges.items() for lo, hi in rs],
            ts=[batch[0].timestamp()[1], batch[-1].timestamp()[1]])
        agg.stdin.write(b"".join(m.value() + b"\n" for m in batch))
        agg.stdin.flush()
        delivered += len(batch)
        last = {}
        for m in batch:
            last[(m.topic(), m.partition())] = m
        by_topic = collections.defaultdict(list)
        for (t, p), m in last.items():
            by_topic[t].append(TopicPartition(t, p, m.offset() + 1))
        for c, t in ((net, a.net_topic), (svc, a.svc_topic)):
            if by_topic[t]:
                try:
                    c.store_offsets(offsets=by_topic[t])
                except Exception as e:  # a partition revoked meanwhile
                    log("store_failed", error=str(e))
    # A clean stop: close commits what was delivered and leaves the group.
    net.close()
    svc.close()
    log("left", reason=stop_reason)
    agg.stdin.close()
    code = agg.wait()
    log("done", code=code, delivered=delivered, max_behind_ns=max_behind,
        behind_grace=behind_grace, keys={str(p): sorted(k) for p, k in keys.items()})


# ---------------------------------------------------------------- the test

class Instance:
    """One instance process and what it left behind."""

    # Every instance started, so that a failing run kills what is left.
    started = []

    def __init__(self, env, name, index, group, net_topic, svc_topic, mode, strategy,
                 gate, ends_file, state_file=None):
        self.name, self.index = name, index
        d = os.path.join(env.work, name)
        os.makedirs(d, exist_ok=True)
        self.log_path = os.path.join(d, "events.jsonl")
        self.out_path = os.path.join(d, "out.lp")
        open(self.log_path, "ab").close()
        self.state_file = state_file
        agg = [env.aggregator] + AGG_FLAGS
        if state_file:
            agg += ["--state-file", state_file]
        cmd = [sys.executable, os.path.abspath(__file__), "instance",
               "--broker", env.broker, "--group", group, "--svc-group", f"{group}-services-{index}",
               "--client-id", f"e2e-aggregator-{index}", "--net-topic", net_topic,
               "--svc-topic", svc_topic, "--mode", mode, "--strategy", strategy,
               "--ends", ends_file, "--log", self.log_path, "--out", self.out_path]
        if gate:
            cmd.append("--gate")
        # Own process group: a SIGKILL takes the consumer and its child.
        self.proc = subprocess.Popen(cmd + ["--"] + agg, stdin=subprocess.PIPE,
                                     start_new_session=True)
        self.killed_at = None
        Instance.started.append(self)

    def send(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()

    def kill(self):
        self.killed_at = time.time()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def events(self):
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def output(self):
        return parse_output(open(self.out_path, "rb").read().decode())


def parse_output(text):
    rows, stats = [], None
    for line in text.splitlines():
        if line.startswith("e2e_delays,"):
            rows.append(line)
        elif line.startswith("e2e_aggregator "):
            fields = line.split(" ")[1]
            stats = {k: int(v.rstrip("i")) for k, v in (kv.split("=") for kv in fields.split(","))}
    return rows, stats


def replay(env, path, extra=()):
    """One process over a file (a replay): the reference."""
    with open(path, "rb") as f:
        out = subprocess.run([env.aggregator] + AGG_FLAGS + list(extra), stdin=f,
                             capture_output=True, check=True)
    return parse_output(out.stdout.decode())


class Checks:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}", flush=True)


def committed(env, group, topic, partitions):
    c = Consumer({"bootstrap.servers": env.broker, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def wait_consumed(env, groups, deadline_s):
    """Waits until every (group, topic) has committed its partition ends."""
    end = time.time() + deadline_s
    while time.time() < end:
        if all(all(committed(env, g, t, list(e)).get(p, -1) >= n for p, n in e.items())
               for g, t, e in groups):
            return True
        time.sleep(0.5)
    return False


def wait_assigned(instances, net_topic, partitions, deadline_s=40):
    """Waits until the instances' latest network assignments split the
    partitions with one owner each; returns {instance index: parts}."""
    end = time.time() + deadline_s
    while time.time() < end:
        owned = {}
        for inst in instances:
            mine = set()
            svc = False
            for e in inst.events():
                if e.get("topic") == net_topic:
                    if e["ev"] == "assign":
                        mine |= set(e["parts"])
                    elif e["ev"] in ("revoke", "lost"):
                        mine -= set(e["parts"])
                elif e["ev"] == "assign":
                    svc = True
            owned[inst.index] = (mine, svc)
        flat = [p for mine, _ in owned.values() for p in mine]
        if sorted(flat) == list(range(partitions)) and all(m and s for m, s in owned.values()):
            return {i: sorted(m) for i, (m, _) in owned.items()}
        time.sleep(0.2)
    raise RuntimeError(f"no stable assignment within {deadline_s} s")


def ownership(instances, net_topic, until):
    """Per partition, the intervals [from, to) each instance owned it."""
    iv = collections.defaultdict(list)
    for inst in instances:
        start = {}
        evs = inst.events()
        for e in evs:
            if e.get("topic") != net_topic:
                continue
            for p in e["parts"]:
                if e["ev"] == "assign":
                    start[p] = e["t"]
                elif p in start:
                    iv[p].append((start.pop(p), e["t"], inst.index))
        stop = inst.killed_at or until
        for p, t in start.items():
            iv[p].append((t, stop, inst.index))
    return iv


def deliveries(instances, topic):
    """Per partition, how often each offset reached a child (a Counter)."""
    seen = collections.defaultdict(collections.Counter)
    for inst in instances:
        for e in inst.events():
            if e["ev"] == "deliver":
                for t, p, lo, hi in e["ranges"]:
                    if t == topic:
                        seen[p].update(range(lo, hi + 1))
    return seen


def counters_add_up(single, services, stats_list):
    bad = []
    extra = len(stats_list) - 1
    for k in ADDITIVE:
        s = sum(st[k] for st in stats_list)
        want = single[k] + extra * services[k]
        if s != want:
            bad.append(f"{k}: instances {s}, want {want}")
    return bad


def run_group(env, checks, label, recs, k_values, mode, speed, strategy="range"):
    """One production of `recs` (backlog when `speed` is None, else paced),
    read by one consumer group of K instances for each K, concurrently.
    Checks one owner per partition, one instance per path, the union of
    rows and the counters. Returns per-K figures."""
    net_topic, svc_topic, produced = env.setup(label, recs)
    services_lp = os.path.join(env.work, f"{label}-services.lp")
    write_lines(services_lp, [r for r in recs if r.kind == "s"])
    ends_file = os.path.join(env.work, f"{label}-ends.json")
    ends = None
    if speed is None:
        ends = produce(env, recs, net_topic, svc_topic)
        with open(ends_file, "w") as f:
            json.dump(ends, f)
    groups = {}
    for k in k_values:
        group = f"{label}-k{k}"
        groups[k] = [Instance(env, f"{group}-{i}", i, group, net_topic, svc_topic, mode,
                              strategy, True, ends_file) for i in range(k)]
    assigned = {k: wait_assigned(insts, net_topic, P) for k, insts in groups.items()}
    for insts in groups.values():
        for inst in insts:
            inst.send("go")
    t0 = time.time()
    if speed is not None:
        ends = produce(env, recs, net_topic, svc_topic, speed=speed)
        with open(ends_file, "w") as f:
            json.dump(ends, f)
    want = [(f"{label}-k{k}", net_topic, ends[net_topic]) for k in k_values]
    want += [(f"{label}-k{k}-services-{i}", svc_topic, ends[svc_topic])
             for k in k_values for i in range(k)]
    done = wait_consumed(env, want, 120)
    elapsed = time.time() - t0
    for insts in groups.values():
        for inst in insts:
            inst.send("stop")
    for insts in groups.values():
        for inst in insts:
            inst.proc.wait(60)
    checks.check(f"{label}: every message committed", done, "timed out after 120 s")
    single_rows, single = replay(env, produced)
    _, services = replay(env, services_lp)
    figures = {}
    for k, insts in groups.items():
        what = f"{label}, K={k}, P={P}"
        until = time.time()
        iv = ownership(insts, net_topic, until)
        overlaps = []
        for p in range(P):
            spans = sorted(iv[p])
            for (a0, a1, ia), (b0, b1, ib) in zip(spans, spans[1:]):
                if b0 < a1:
                    overlaps.append(f"partition {p}: instance {ia} until {a1:.3f}, {ib} from {b0:.3f}")
        checks.check(f"{what}: one owner per partition at a time", not overlaps
                     and all(iv[p] for p in range(P)), "; ".join(overlaps[:3]) or "a partition without owner")
        # Range over members sorted by id (client.id "e2e-aggregator-<i>-…"),
        # as e2e-router models instance i.
        per, rem = divmod(P, k)
        model = {}
        for i in range(k):
            lo = i * per + min(i, rem)
            model[i] = list(range(lo, lo + per + (i < rem)))
        if strategy == "range":
            checks.check(f"{what}: range assignment as e2e-router models it", assigned[k] == model,
                         f"got {assigned[k]}, model {model}")
        done_ev = [next(e for e in inst.events() if e["ev"] == "done") for inst in insts]
        owner_of = {}
        shared = set()
        for i, d in enumerate(done_ev):
            for keys in d["keys"].values():
                for key in keys:
                    if owner_of.setdefault(key, i) != i:
                        shared.add(key)
        checks.check(f"{what}: every path read by one instance", not shared and len(owner_of) > 0,
                     f"{len(shared)} paths on two instances, e.g. {sorted(shared)[:3]}")
        seen = deliveries(insts, net_topic)
        bad = [p for p, n in ends[net_topic].items()
               if sorted(seen[p]) != list(range(n)) or any(c != 1 for c in seen[p].values())]
        checks.check(f"{what}: every network message delivered exactly once", not bad,
                     f"partitions {bad}")
        outs = [inst.output() for inst in insts]
        union = sorted(r for rows, _ in outs for r in rows)
        missing = sorted(set(single_rows) - set(union))
        extra = sorted(set(union) - set(single_rows))
        checks.check(f"{what}: union of rows = one process's rows", union == sorted(single_rows),
                     f"{len(union)} rows vs {len(single_rows)}; {len(missing)} missing, "
                     f"{len(extra)} not in the single run, e.g. {(missing or extra)[:1]}")
        stats = [st for _, st in outs]
        bad = counters_add_up(single, services, stats) if all(stats) else ["no self-metrics"]
        checks.check(f"{what}: counters add up", not bad, "; ".join(bad[:4]))
        late = [st["late"] if st else None for st in stats]
        checks.check(f"{what}: no point late", all(x == 0 for x in late), f"late per instance {late}")
        figures[k] = {
            "rows": [len(rows) for rows, _ in outs], "single_rows": len(single_rows),
            "late": late, "max_behind_s": [d["max_behind_ns"] / NS for d in done_ev],
            "assigned": assigned[k], "elapsed_s": round(elapsed, 1),
        }
        print(f"     {what}: rows {' + '.join(map(str, figures[k]['rows']))} = "
              f"{sum(figures[k]['rows'])} (one process {len(single_rows)}), partitions {assigned[k]}, "
              f"max behind newest {[round(x, 1) for x in figures[k]['max_behind_s']]} s", flush=True)
    return figures


def backlog_measure(env, checks, label, recs, k):
    """Consumers started on a backlog in plain arrival order, as Telegraf
    after an outage: the disorder, the late points and the rows lost."""
    net_topic, svc_topic, produced = env.setup(label, recs)
    ends_file = os.path.join(env.work, f"{label}-ends.json")
    ends = produce(env, recs, net_topic, svc_topic)
    with open(ends_file, "w") as f:
        json.dump(ends, f)
    group = f"{label}-k{k}"
    insts = [Instance(env, f"{group}-{i}", i, group, net_topic, svc_topic, "arrival", "range",
                      True, ends_file) for i in range(k)]
    wait_assigned(insts, net_topic, P)
    for inst in insts:
        inst.send("go")
    want = [(group, net_topic, ends[net_topic])]
    want += [(f"{group}-services-{i}", svc_topic, ends[svc_topic]) for i in range(k)]
    done = wait_consumed(env, want, 120)
    for inst in insts:
        inst.send("stop")
    for inst in insts:
        inst.proc.wait(60)
    checks.check(f"{label}: every message committed", done, "timed out")
    single_rows, single = replay(env, produced)
    outs = [inst.output() for inst in insts]
    done_ev = [next(e for e in inst.events() if e["ev"] == "done") for inst in insts]
    stored = {row_key(r): r for rows, _ in outs for r in rows}
    ref = {row_key(r): r for r in single_rows}
    late = sum(st["late"] for _, st in outs)
    lines_in = sum(st["lines_in"] for _, st in outs)
    n_svc = sum(1 for r in recs if r.kind == "s")
    want_in = len(recs) + (k - 1) * n_svc
    checks.check(f"{label}: every line reached an instance", lines_in == want_in,
                 f"lines_in {lines_in}, want {want_in}")
    fig = {
        "max_behind_s": [round(d["max_behind_ns"] / NS, 1) for d in done_ev],
        "points_behind_grace": [d["behind_grace"] for d in done_ev],
        "late": late, "rows_written": len(stored), "rows_single": len(ref),
        "rows_equal": sum(1 for k, r in ref.items() if stored.get(k) == r),
        "rows_missing": sum(1 for k in ref if k not in stored),
    }
    print(f"     {label}: K={k} P={P} backlog in arrival order: max behind newest {fig['max_behind_s']} s, "
          f"points more than grace behind {fig['points_behind_grace']}, late {late}; rows: "
          f"{fig['rows_written']} written ({fig['rows_equal']} equal to one process's), "
          f"one process {fig['rows_single']}, {fig['rows_missing']} of its rows never written", flush=True)
    return fig


def row_key(row):
    """Series and timestamp of a row: what InfluxDB keeps one point of."""
    series = split_unescaped(row, " ")
    return series[0] + " " + series[-1]


def crash_measure(env, checks, label, recs, kill_at_s, leave_at_s):
    """K=3, paced like live agents (1 s of event time per second), every
    instance with --state-file. At `kill_at_s` instance 2 and its
    e2e-aggregator are SIGKILLed; at `leave_at_s` instance 1 leaves cleanly.
    Measures the takeovers, the redelivered points and the rows that differ
    from one process's, by cause."""
    net_topic, svc_topic, produced = env.setup(label, recs)
    ends_file = os.path.join(env.work, f"{label}-ends.json")
    group = f"{label}-k3"
    states = [os.path.join(env.work, f"{group}-{i}.state") for i in range(3)]
    strategy = "cooperative-sticky"
    insts = [Instance(env, f"{group}-{i}", i, group, net_topic, svc_topic, "arrival", strategy,
                      True, ends_file, state_file=states[i]) for i in range(3)]
    before = wait_assigned(insts, net_topic, P)
    for inst in insts:
        inst.send("go")
    t0 = time.time()
    clock0 = recs[0].ts
    events = {}

    def progress(clock):
        el = (clock - clock0) / NS
        if "kill" not in events and el >= kill_at_s:
            events["kill"] = (time.time(), clock)
            insts[2].kill()
        if "leave" not in events and el >= leave_at_s:
            events["leave"] = (time.time(), clock)
            insts[1].send("leave")
    ends = produce(env, recs, net_topic, svc_topic, speed=1.0, progress=progress)
    with open(ends_file, "w") as f:
        json.dump(ends, f)
    want = [(group, net_topic, ends[net_topic]), (f"{group}-services-0", svc_topic, ends[svc_topic])]
    done = wait_consumed(env, want, 120)
    insts[0].send("stop")
    insts[0].proc.wait(60)
    insts[1].proc.wait(60)
    checks.check(f"{label}: every message committed", done, "timed out")
    elapsed = time.time() - t0
    # Instance 0's saved windows are written by `flush`, as its next start
    # would; instance 1 left for good and instance 2 died: their open
    # windows stay in their state files.
    flushed = subprocess.run([env.aggregator, "flush"] + AGG_FLAGS + ["--state-file", states[0]],
                             capture_output=True, check=True).stdout.decode()
    single_rows, _ = replay(env, produced)
    iv = ownership(insts, net_topic, time.time())
    t_kill, clock_kill = events["kill"]
    t_leave, clock_leave = events["leave"]

    def owners_at(t):
        return {p: i for p in range(P) for a0, a1, i in iv[p] if a0 <= t < a1}

    def takeover(t, gone):
        moved = [p for p, i in owners_at(t - 0.001).items() if i == gone]
        times = []
        for p in moved:
            nxt = [a0 for a0, _, i in iv[p] if a0 >= t and i != gone]
            times.append(min(nxt) - t if nxt else None)
        return moved, times
    moved_kill, times_kill = takeover(t_kill, 2)
    moved_leave, times_leave = takeover(t_leave, 1)
    ok_kill = bool(moved_kill) and all(x is not None and x <= 30 for x in times_kill)
    checks.check(f"{label}: a SIGKILLed member's partitions owned again within 30 s", ok_kill,
                 f"partitions {moved_kill}, after {times_kill} s")
    checks.check(f"{label}: a leaving member's partitions owned again within 30 s",
                 bool(moved_leave) and all(x is not None and x <= 30 for x in times_leave),
                 f"partitions {moved_leave}, after {times_leave} s")
    overlaps = []
    for p in range(P):
        spans = sorted(iv[p])
        for (a0, a1, ia), (b0, b1, ib) in zip(spans, spans[1:]):
            if b0 < a1:
                overlaps.append(f"partition {p}: {ia} until {a1:.3f}, {ib} from {b0:.3f}")
    checks.check(f"{label}: one owner per partition at a time", not overlaps, "; ".join(overlaps[:3]))
    seen = deliveries(insts, net_topic)
    holes = {p: n - len(seen[p]) for p, n in ends[net_topic].items() if len(seen[p]) != n}
    dup = sum(c - 1 for p in seen for c in seen[p].values() if c > 1)
    checks.check(f"{label}: every network point delivered at least once", not holes,
                 f"missing per partition {holes}")
    # Rows: what InfluxDB keeps, the later write of a (series, time) winning:
    # instance 2's rows are older than 1's, 1's than 0's.
    outs = [inst.output() for inst in insts]
    stored = {}
    for i in (2, 1, 0):
        rows = outs[i][0] + (parse_output(flushed)[0] if i == 0 else [])
        for r in rows:
            stored[row_key(r)] = r
    ref = {row_key(r): r for r in single_rows}
    path_of = {}
    for r in single_rows:
        for tag in split_unescaped(split_unescaped(r, " ")[0], ","):
            if tag.startswith("path_ID="):
                path_of[row_key(r)] = tag[len("path_ID="):]
    part_of_path = {}
    # The partition of each path, from where its points were delivered.
    for inst in insts:
        d = [e for e in inst.events() if e["ev"] == "done"]
        for e in d:
            for p, ks in e["keys"].items():
                for k in ks:
                    part_of_path[k] = int(p)
    # Instance 2 logged no "done": its paths are the ones of its partitions.
    crash_paths = {k for k, p in part_of_path.items() if p in moved_kill}
    leave_paths = {k for k, p in part_of_path.items() if p in moved_leave}
    causes = collections.Counter()
    windows = collections.defaultdict(set)
    for key, row in ref.items():
        got = stored.get(key)
        if got == row:
            continue
        path = path_of[key]
        why = ("moved at the crash" if path in crash_paths else
               "moved at the leave" if path in leave_paths else "never moved")
        kind = "missing" if got is None else "partial"
        causes[(why, kind)] += 1
        windows[(why, path)].add(int(key.rsplit(" ", 1)[1]))
    extra = [k for k in stored if k not in ref]
    late = [st["late"] if st else None for _, st in outs]
    per_path = collections.defaultdict(int)
    for (why, path), ws in windows.items():
        per_path[why] = max(per_path[why], len(ws))
    checks.check(f"{label}: rows of paths that never moved equal one process's",
                 causes[("never moved", "partial")] + causes[("never moved", "missing")] == 0,
                 f"{dict(causes)}")
    limit = GRACE_S // PERIOD_S + 1
    checks.check(f"{label}: a moved path has at most grace/period + 1 = {limit} rows that differ",
                 all(v <= limit for v in per_path.values()), f"{dict(per_path)}")
    checks.check(f"{label}: no row that one process does not write", not extra, f"{extra[:2]}")
    fig = {
        "takeover_kill_s": [round(x, 1) for x in times_kill],
        "takeover_leave_s": [round(x, 1) for x in times_leave],
        "moved_kill": moved_kill, "moved_leave": moved_leave,
        "paths_moved_kill": len(crash_paths), "paths_moved_leave": len(leave_paths),
        "redelivered": dup, "late": late, "rows_single": len(ref),
        "causes": {f"{w}, {k}": n for (w, k), n in sorted(causes.items())},
        "max_rows_per_moved_path": dict(per_path), "elapsed_s": round(elapsed, 1),
        "assigned_before": before,
    }
    print(f"     {label}: {json.dumps(fig)}", flush=True)
    return fig


def partitions_main(a):
    """Prints where the real broker places `path-NNN` keys produced with
    librdkafka's fnv1a_random (= sarama's hash partitioner), for each
    partition count: the reference table of tools/e2e-router/tests/sharding.rs."""
    port = free_port()
    proc = subprocess.Popen(
        [a.tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        env = Env(f"127.0.0.1:{port}", a.tansu, None, None)
        counts = [int(n) for n in a.counts.split(",")]
        keys = [f"path-{j:03d}" for j in range(a.keys)]
        placed = {}

        def delivered(err, msg):
            if err is not None:
                raise RuntimeError(str(err))
            placed[(msg.topic(), msg.key().decode())] = msg.partition()
        prod = Producer({"bootstrap.servers": env.broker, "partitioner": "fnv1a_random",
                         "on_delivery": delivered})
        for n in counts:
            env.create_topic(f"keys-{n}", n)
            for k in keys:
                prod.produce(f"keys-{n}", key=k.encode(), value=b"x")
        prod.flush(30)
    finally:
        proc.kill()
        proc.wait()
    print("# key\t" + "\t".join(f"p{n}" for n in counts))
    for k in keys:
        print(k + "\t" + "\t".join(str(placed[(f"keys-{n}", k)]) for n in counts))
    return 0


def run_main(a):
    work = a.work or tempfile.mkdtemp(prefix="e2e-kafka-")
    os.makedirs(work, exist_ok=True)
    broker_proc = None
    broker = a.broker
    if broker is None:
        port = free_port()
        broker_proc = subprocess.Popen(
            [a.tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
             "--storage-engine", "memory://tansu/"],
            stdout=open(os.path.join(work, "tansu.log"), "wb"), stderr=subprocess.STDOUT)
        broker = f"127.0.0.1:{port}"
    wait_port(int(broker.rsplit(":", 1)[1]))
    env = Env(broker, a.tansu, a.aggregator, work)
    checks = Checks()
    figures = {}
    t0 = time.time()
    try:
        realistic = load_recording(a.recording)
        generated = generate(210, 30, 120, seed=17)
        only = set(a.only.split(",")) if a.only else None

        def want(name):
            return only is None or name in only
        if want("merged"):
            figures["merged-realistic"] = run_group(env, checks, "merged-realistic", realistic, (1, 2, 3), "merge", None)
            figures["merged-generated"] = run_group(env, checks, "merged-generated", generated, (1, 2, 3), "merge", None)
        if want("paced"):
            figures["paced-realistic"] = run_group(env, checks, "paced-realistic", realistic, (1, 2, 3), "arrival", 18.0)
            figures["paced-generated"] = run_group(env, checks, "paced-generated", generated, (1, 2, 3), "arrival", 6.0)
        if want("backlog"):
            figures["backlog"] = backlog_measure(env, checks, "backlog-realistic", realistic, 3)
        if want("crash"):
            crash = generate(210, 30, a.crash_seconds, seed=71)
            figures["crash"] = crash_measure(env, checks, "crash-generated", crash,
                                             a.crash_seconds * 0.2, a.crash_seconds * 0.6)
    except Exception as e:  # a harness failure is a failed check, with why
        import traceback
        traceback.print_exc()
        checks.check("harness ran to the end", False, repr(e))
    finally:
        for inst in Instance.started:
            if inst.proc.poll() is None:
                os.killpg(inst.proc.pid, signal.SIGKILL)
                inst.proc.wait()
        if broker_proc is not None:
            broker_proc.kill()
            broker_proc.wait()
    with open(os.path.join(work, "figures.json"), "w") as f:
        json.dump(figures, f, indent=1)
    print(f"kafka part took {time.time() - t0:.0f} s; figures in {work}/figures.json")
    print(f"kafka: {checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="the test")
    r.add_argument("--aggregator", required=True, help="the e2e-aggregator binary")
    r.add_argument("--tansu", required=True, help="the tansu binary")
    r.add_argument("--broker", help="HOST:PORT of a running tansu (else one is started)")
    r.add_argument("--recording", required=True)
    r.add_argument("--work", help="directory for logs and outputs (default: a new temp dir)")
    r.add_argument("--only", help="comma-separated: merged,paced,backlog,crash")
    r.add_argument("--crash-seconds", type=int, default=50)
    t = sub.add_parser("partitions", help="the reference partitions of path-NNN keys")
    t.add_argument("--tansu", required=True)
    t.add_argument("--keys", type=int, default=200)
    t.add_argument("--counts", default="7,12,16")
    i = sub.add_parser("instance", help="one aggregator instance (run by `run`)")
    for opt in ("broker", "group", "svc-group", "client-id", "net-topic", "svc-topic", "ends", "log", "out"):
        i.add_argument("--" + opt, required=True)
    i.add_argument("--mode", choices=["merge", "arrival"], required=True)
    i.add_argument("--strategy", required=True)
    i.add_argument("--gate", action="store_true", help="pause until `go` on stdin")
    i.add_argument("agg", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.cmd == "instance":
        if a.agg and a.agg[0] == "--":
            a.agg = a.agg[1:]
        instance_main(a)
        return 0
    if a.cmd == "partitions":
        return partitions_main(a)
    return run_main(a)


if __name__ == "__main__":
    sys.exit(main())
