#!/usr/bin/env python3
"""Derive the parser's conformance table from the shared line-protocol corpus.

What it does
------------
Reads ``corpus.jsonl`` of ``../shared/lp-conformance/`` (360 cases, each the
verdicts of several line-protocol implementations on one input) and writes,
one JSON object per line and in corpus order, what ``tests/conformance.rs``
needs of each case: the exact input bytes and the verdict of Telegraf's
``StreamParser`` (``telegraf.stream``, the parser ``processors.execd`` reads a
processor's stdout with). The table is committed as
``testdata/lp-conformance.jsonl`` so that the test runs in a plain clone,
where ``../shared`` does not exist.

How to run it (from the repository root)
----------------------------------------
    python3 scripts/conformance-table.py ../shared/lp-conformance/corpus.jsonl \\
        > testdata/lp-conformance.jsonl

Python 3.8+, standard library only. It fails (exit status 1, nothing usable
written) on a case without a ``telegraf.stream`` verdict or on any shape it
does not know, rather than guess: the test must see every case.

Output format, one object per case
----------------------------------
    {"id": "...",
     "input_b64": "...",          # the input bytes, always base64
     "accepted": true | false,    # false when any record failed (or Telegraf hung)
     "error": "..." | null,       # Telegraf's first error; "HANG: ..." when it hung
     "errors": ["...", ...],      # every error, when the corpus lists several
     "points": [POINT, ...]}      # every point, in order, also from rejected inputs

    POINT  = {"measurement": BYTES,
              "tags":   [[KEY, BYTES], ...],             # sorted by key as in the corpus
              "fields": [[KEY, TYPE, VALUE], ...],       # in Telegraf's field order
              "timestamp": int | null}
    BYTES  = "text"                                      # valid UTF-8, taken as its bytes
           | {"b64": "..."}                              # not UTF-8: the bytes, base64
           | {"len": N, "sha256": "hex", "head": "..."}  # longer than 4096: length and hash
    KEY    = same forms as BYTES. The corpus spells keys as JSON object keys,
             "b64:<base64>" for bytes that are not UTF-8 and
             "<key len=N sha256=H>" for long keys; these become {"b64": ...}
             and {"len": N, "sha256": H}.
    TYPE   = "float" | "integer" | "unsigned" | "boolean" | "string"
    VALUE  = float:    a string, the shortest decimal that reads back as the
                       same 64-bit float (Python's repr; "NaN", "+Inf", "-Inf"
                       for non-finite values), so that the test can compare
                       bits without depending on a JSON library's float parser
             integer, unsigned: a JSON integer (exact)
             boolean:  true | false
             string:   BYTES
"""

import base64
import json
import math
import re
import sys

TYPES = {"float", "integer", "unsigned", "boolean", "string"}
NON_FINITE = {"NaN", "+Inf", "-Inf"}
LONG_KEY = re.compile(r"<key len=(\d+) sha256=([0-9a-f]{64})>")


class Bad(Exception):
    """A shape this script does not know."""


def check_text(s, what):
    """Text as the test will read it: it must be valid UTF-8 (no lone surrogates)."""
    if not isinstance(s, str):
        raise Bad(f"{what}: expected a string, got {s!r:.80}")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise Bad(f"{what}: not encodable as UTF-8 ({e})") from None
    return s


def bytes_form(v, what):
    """A measurement, tag value or string value: kept in the corpus's form."""
    if isinstance(v, str):
        return check_text(v, what)
    if isinstance(v, dict) and set(v) == {"b64"}:
        base64.b64decode(v["b64"], validate=True)
        return {"b64": v["b64"]}
    if isinstance(v, dict) and set(v) == {"len", "sha256", "head"}:
        if not (isinstance(v["len"], int) and re.fullmatch(r"[0-9a-f]{64}", v["sha256"])):
            raise Bad(f"{what}: bad long form {v!r:.200}")
        return {"len": v["len"], "sha256": v["sha256"], "head": check_text(v["head"], what)}
    raise Bad(f"{what}: unknown form {v!r:.200}")


def key_form(k, what):
    """A tag or field key, which the corpus spells as a JSON object key."""
    check_text(k, what)
    if k.startswith("b64:"):
        b64 = k[len("b64:"):]
        base64.b64decode(b64, validate=True)
        return {"b64": b64}
    m = LONG_KEY.fullmatch(k)
    if m:
        return {"len": int(m.group(1)), "sha256": m.group(2)}
    if k.startswith("<key "):
        raise Bad(f"{what}: unknown long-key form {k!r:.200}")
    return k


def float_text(v, what):
    if isinstance(v, str) and v in NON_FINITE:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Bad(f"{what}: float value {v!r:.80}")
    f = float(v)
    if isinstance(v, int) and f != v:
        raise Bad(f"{what}: integer {v} is not exactly a float")
    if not math.isfinite(f):
        raise Bad(f"{what}: non-finite float not spelled as a string: {v!r}")
    return repr(f)


def field_value(typ, v, what):
    if typ == "float":
        return float_text(v, what)
    if typ in ("integer", "unsigned"):
        if isinstance(v, bool) or not isinstance(v, int):
            raise Bad(f"{what}: {typ} value {v!r:.80}")
        lo, hi = (-(2**63), 2**63 - 1) if typ == "integer" else (0, 2**64 - 1)
        if not lo <= v <= hi:
            raise Bad(f"{what}: {typ} value {v} out of range")
        return v
    if typ == "boolean":
        if not isinstance(v, bool):
            raise Bad(f"{what}: boolean value {v!r:.80}")
        return v
    return bytes_form(v, what)


def point(p, what):
    unknown = set(p) - {"measurement", "tags", "fields", "timestamp", "field_order"}
    if unknown:
        raise Bad(f"{what}: unknown point keys {sorted(unknown)}")
    # field_order spells a key that is not UTF-8 as {"b64": ...}, where the
    # fields object (whose keys must be strings) spells it "b64:...".
    order = [
        "b64:" + k["b64"] if isinstance(k, dict) and set(k) == {"b64"} else k
        for k in p.get("field_order", list(p["fields"]))
    ]
    if sorted(order) != sorted(p["fields"]):
        raise Bad(f"{what}: field_order {order!r:.200} does not match fields")
    fields = []
    for name in order:
        typ, value = p["fields"][name]
        if typ not in TYPES:
            raise Bad(f"{what}: field {name!r:.80} has type {typ!r}")
        fw = f"{what} field {name!r:.80}"
        fields.append([key_form(name, fw), typ, field_value(typ, value, fw)])
    ts = p["timestamp"]
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
        raise Bad(f"{what}: timestamp {ts!r:.80}")
    return {
        "measurement": bytes_form(p["measurement"], f"{what} measurement"),
        "tags": [
            [key_form(k, f"{what} tag key"), bytes_form(v, f"{what} tag {k!r:.80}")]
            for k, v in p["tags"].items()
        ],
        "fields": fields,
        "timestamp": ts,
    }


def case(c):
    cid = c["id"]
    if "line_b64" in c:
        data = base64.b64decode(c["line_b64"], validate=True)
    else:
        data = check_text(c["line"], f"{cid}: line").encode("utf-8")
    stream = (c.get("telegraf") or {}).get("stream")
    if not isinstance(stream, dict):
        raise Bad(f"{cid}: no telegraf.stream verdict")
    accepted = stream["accepted"]
    if not isinstance(accepted, bool):
        raise Bad(f"{cid}: stream.accepted is {accepted!r}, expected true or false")
    error = stream.get("error")
    if error is not None:
        check_text(error, f"{cid}: error")
    if accepted == (error is not None):
        raise Bad(f"{cid}: accepted={accepted} but error={error!r:.80}")
    out = {
        "id": cid,
        "input_b64": base64.b64encode(data).decode("ascii"),
        "accepted": accepted,
        "error": error,
    }
    if "errors" in stream:
        out["errors"] = [check_text(e, f"{cid}: errors") for e in stream["errors"]]
    out["points"] = [point(p, f"{cid}: point {i}") for i, p in enumerate(stream["points"])]
    return out


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    seen = set()
    rows = []
    try:
        with open(argv[1], encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = case(json.loads(line))
                if row["id"] in seen:
                    raise Bad(f"line {n}: duplicate id {row['id']!r}")
                seen.add(row["id"])
                rows.append(row)
    except (Bad, KeyError, ValueError, TypeError) as e:
        sys.stderr.write(f"conformance-table: {argv[1]}: {type(e).__name__}: {e}\n")
        return 1
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=True, allow_nan=False) + "\n")
    sys.stderr.write(f"conformance-table: {len(rows)} cases\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
