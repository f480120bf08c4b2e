//! The program's output must be line protocol that a real InfluxDB 1.x accepts
//! line for line and reads back exactly as we meant it.
//!
//! The test replays `testdata/golden/realistic/input.lp` through the binary,
//! writes the whole output (passed-through lines and `e2e_delays` rows) to a
//! private `influxd` over HTTP, then reads every `e2e_delays` row back and
//! compares tags, the eight float fields (the six values and, with
//! `--age-fields`, the two ages; bit for bit) and the timestamp with
//! what the program wrote.
//!
//! The same server then answers every query of the Grafana dashboard
//! `telegraf/grafana/e2e_delays.json`, with the dashboard's variables,
//! `$timeFilter` and `$__interval` substituted as Grafana substitutes them
//! (chosen values as the regex `(a|b)`, values regex-escaped; All as the
//! variables' custom all value `.*`; `$__interval` raised to the panel's
//! minimum interval), for three selections: All everywhere, one path and
//! one of its directions, two paths and their SFRs. For each, the
//! variables' `SHOW TAG VALUES` run first, the SFR variables with the
//! chosen paths substituted (they are chained to the path), and must list
//! exactly the recording's paths, and the SFRs of the chosen paths; then
//! every panel query must return at least one series with the columns the
//! panel expects. The program runs with `--stats-interval`, so the
//! self-metrics panels have their line too. A second test checks that the
//! dashboard is one Grafana imports (schema, data-source input, panel
//! types, `allValue` `.*` and chained queries on every variable, the
//! default period as every panel's minimum interval).
//!
//! It needs `influxd` on PATH (Debian: `apt-get install influxdb`, 1.6.7).
//! Without it the test fails, unless `E2E_SKIP_INFLUXDB=1` is set. The server
//! runs from a temporary directory, listens on 127.0.0.1 only, on free ports,
//! and is killed when the test ends, however it ends.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The recording replayed through the program.
const INPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/golden/realistic/input.lp"
);
/// Lines per `/write` request.
const BATCH_LINES: usize = 5000;
/// Fewer rows than this and the comparison would prove little.
const MIN_ROWS: usize = 1000;
/// How long `influxd` may take to answer `/ping`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const DB: &str = "e2e_roundtrip";

/// Tag keys of an `e2e_delays` row, in the sorted order the program writes.
const TAGS: [&str; 5] = [
    "endpoint",
    "path_ID",
    "sf_instance",
    "source_SFR",
    "target_SFR",
];
/// Field keys of an `e2e_delays` row, in the order the program writes.
const FIELDS: [&str; 8] = [
    "delay_forward",
    "delay_reverse",
    "delay_service",
    "avg_request_size",
    "avg_response_size",
    "avg_bandwidth",
    "reverse_age",
    "service_age",
];

/// A row's identity in InfluxDB: its tag values (in `TAGS` order) and time.
type RowKey = (Vec<String>, i64);
/// Rows by identity; values in `FIELDS` order.
type Rows = BTreeMap<RowKey, [f64; 8]>;

#[test]
fn output_round_trips_through_influxdb() {
    let Some(influxd) = find_on_path("influxd") else {
        if std::env::var("E2E_SKIP_INFLUXDB").as_deref() == Ok("1") {
            // Written to the real stderr: the harness would swallow eprintln!.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED influxdb_roundtrip: influxd not on PATH and E2E_SKIP_INFLUXDB=1 !!!!!\n"
            );
            return;
        }
        panic!(
            "influxd not found on PATH; this test needs InfluxDB 1.x \
             (Debian: apt-get install influxdb), or set E2E_SKIP_INFLUXDB=1 to skip it"
        );
    };

    let output = run_program();
    let expected = parse_program_rows(&output);
    assert!(
        expected.len() > MIN_ROWS,
        "the program wrote only {} e2e_delays rows; the test needs more than {MIN_ROWS}",
        expected.len()
    );

    let server = Influxd::start(&influxd);
    let http = agent();
    server.post_query(&http, &format!("CREATE DATABASE {DB}"));
    let lines = server.write_all(&http, &output);
    let stored = server.read_rows(&http);
    let dashboard = dashboard::check_queries(&server, &http, &output, &expected);
    // Stop before comparing, so a failed assertion does not outlive the server.
    drop(server);

    eprintln!(
        "wrote {lines} lines, {} e2e_delays rows; read back {}",
        expected.len(),
        stored.len()
    );
    compare(&expected, &stored);
    eprintln!("{}", dashboard.summary);
    assert!(
        dashboard.problems.is_empty(),
        "{} dashboard queries failed:\n{}",
        dashboard.problems.len(),
        dashboard.problems.join("\n")
    );
}

/// Runs the binary over the recording in replay mode; returns its stdout.
fn run_program() -> Vec<u8> {
    let input = File::open(INPUT).unwrap_or_else(|e| panic!("open {INPUT}: {e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_e2e-aggregator"))
        .arg("--replay")
        // One self-metrics line (a replay writes it at the end), for the
        // dashboard's self-metrics panels; the ages, for its staleness
        // panel (and to round-trip them too).
        .args(["--stats-interval", "1m", "--age-fields"])
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run e2e-aggregator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "e2e-aggregator --replay < {INPUT} exited with {}; stderr:\n{}",
        out.status,
        tail(&stderr, 4000)
    );
    out.stdout
}

/// Every `e2e_delays` row of the program's output, parsed strictly.
fn parse_program_rows(output: &[u8]) -> Rows {
    let text = std::str::from_utf8(output).expect("program output is not UTF-8");
    let mut rows = Rows::new();
    for (i, line) in text.lines().enumerate() {
        if !(line.starts_with("e2e_delays,") || line.starts_with("e2e_delays ")) {
            continue;
        }
        let (key, values) =
            parse_row(line).unwrap_or_else(|e| panic!("output line {}: {e}: {line:?}", i + 1));
        if rows.insert(key, values).is_some() {
            panic!(
                "output line {}: a second row with the same tags and timestamp \
                 (InfluxDB would keep only one): {line:?}",
                i + 1
            );
        }
    }
    rows
}

/// Parses one `e2e_delays` row: the five tags sorted, with only `\ `, `\,`
/// and `\=` escaped; the eight fields in order, each a float; a timestamp.
fn parse_row(line: &str) -> Result<(RowKey, [f64; 8]), String> {
    if line.contains('\r') {
        return Err("carriage return".into());
    }
    let rest = line.strip_prefix("e2e_delays,").ok_or("no tags")?;
    let (tag_set, rest) = split_unescaped(rest, ' ');
    let rest = rest.ok_or("no fields")?;
    let (field_set, ts) = split_unescaped(rest, ' ');
    let ts = ts.ok_or("no timestamp")?;

    let mut tags = Vec::new();
    let mut tail = Some(tag_set);
    while let Some(s) = tail {
        let (pair, next) = split_unescaped(s, ',');
        tail = next;
        let (k, v) = split_unescaped(pair, '=');
        let v = v.ok_or_else(|| format!("tag {pair:?} has no '='"))?;
        tags.push((unescape(k)?, unescape(v)?));
    }
    let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
    if keys != TAGS {
        return Err(format!("tag keys {keys:?}, expected {TAGS:?}"));
    }
    if let Some((k, _)) = tags.iter().find(|(_, v)| v.is_empty()) {
        return Err(format!("empty value for tag {k}"));
    }

    let fields: Vec<&str> = field_set.split(',').collect();
    if fields.len() != FIELDS.len() {
        return Err(format!(
            "{} fields, expected {}",
            fields.len(),
            FIELDS.len()
        ));
    }
    let mut values = [0.0; 8];
    for ((field, want), slot) in fields.iter().zip(FIELDS).zip(&mut values) {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("field {field:?} has no '='"))?;
        if k != want {
            return Err(format!("field {k:?} where {want:?} belongs"));
        }
        *slot = parse_float(v).ok_or_else(|| format!("field {k}={v} is not a finite float"))?;
    }

    let ts = parse_int(ts).ok_or_else(|| format!("timestamp {ts:?} is not an integer"))?;
    Ok(((tags.into_iter().map(|(_, v)| v).collect(), ts), values))
}

/// Splits at the first `sep` not preceded by a backslash.
fn split_unescaped(s: &str, sep: char) -> (&str, Option<&str>) {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if c == sep => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
    }
    (s, None)
}

/// Undoes `\ `, `\,` and `\=`; any other backslash is an error (the program
/// must not write a row with a backslash in a tag).
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ (' ' | ',' | '=')) => out.push(e),
                other => return Err(format!("bad escape \\{other:?} in {s:?}")),
            },
            ' ' | ',' | '=' => return Err(format!("unescaped {c:?} in {s:?}")),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// A line-protocol float as the program writes it: digits, sign, point and
/// exponent only (no `i`/`u` suffix, no `inf`/`NaN`), and finite.
fn parse_float(s: &str) -> Option<f64> {
    let plain = !s.is_empty()
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    let v: f64 = s.parse().ok().filter(|_| plain)?;
    v.is_finite().then_some(v)
}

/// A decimal `i64`, optionally negative, nothing else.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Asserts both sets hold the same rows with bit-identical values.
fn compare(expected: &Rows, stored: &Rows) {
    let mut problems = Vec::new();
    for (key, want) in expected {
        match stored.get(key) {
            None => problems.push(format!("missing in InfluxDB: {key:?}")),
            Some(got) if !same_bits(got, want) => problems.push(format!(
                "{key:?}: wrote {want:?}, InfluxDB has {got:?} (order {FIELDS:?})"
            )),
            Some(_) => {}
        }
    }
    for key in stored.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("in InfluxDB but not written: {key:?}"));
    }
    assert!(
        problems.is_empty() && expected.len() == stored.len(),
        "{} rows written, {} read back, {} differences; first ones:\n{}",
        expected.len(),
        stored.len(),
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
}

fn same_bits(a: &[f64; 8], b: &[f64; 8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// HTTP client for 127.0.0.1 only: no proxy from the environment, statuses
/// returned rather than turned into errors, bounded time per request.
fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build(),
    )
}

/// A private `influxd`, killed (and its directory removed) on drop.
struct Influxd {
    child: Child,
    base: String,
    log: PathBuf,
    // Dropped after `child` is killed in `Drop::drop`.
    _dir: tempfile::TempDir,
}

impl Influxd {
    /// Starts `influxd` on free 127.0.0.1 ports and waits for `/ping`.
    /// Retries with new ports if one was taken between probe and bind.
    fn start(influxd: &Path) -> Influxd {
        for attempt in 1..=3 {
            let dir = tempfile::Builder::new()
                .prefix("e2e-influxdb-")
                .tempdir()
                .expect("create temp dir");
            let (http_port, rpc_port) = free_ports();
            let config = dir.path().join("influxdb.conf");
            std::fs::write(&config, config_text(dir.path(), http_port, rpc_port))
                .expect("write influxdb.conf");
            let log = dir.path().join("influxd.log");
            let log_file = File::create(&log).expect("create influxd.log");
            let child = Command::new(influxd)
                .arg("-config")
                .arg(&config)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", influxd.display()));
            let mut server = Influxd {
                child,
                base: format!("http://127.0.0.1:{http_port}"),
                log,
                _dir: dir,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(e) if attempt < 3 && server.log_text().contains("address already in use") => {
                    eprintln!("influxd attempt {attempt}: {e}; retrying on other ports");
                }
                Err(e) => panic!("influxd did not start: {e}\n{}", server.log_tail()),
            }
        }
        unreachable!()
    }

    /// Polls `/ping` until it answers 204, the process exits or time runs out.
    fn wait_ready(&mut self) -> Result<(), String> {
        let http = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .proxy(None)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(2)))
                .build(),
        );
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll influxd") {
                return Err(format!("influxd exited with {status}"));
            }
            if let Ok(resp) = http.get(format!("{}/ping", self.base)).call() {
                if resp.status() == 204 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no 204 from /ping within {START_TIMEOUT:?}"));
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Runs a read-only statement as Grafana's InfluxQL data source does
    /// (GET, `epoch=ms`); returns the first result, or why it failed.
    fn get_query(&self, http: &ureq::Agent, q: &str) -> Result<Value, String> {
        let mut resp = http
            .get(format!("{}/query", self.base))
            .query("db", DB)
            .query("q", q)
            .query("epoch", "ms")
            .call()
            .map_err(|e| format!("GET /query: {e}"))?;
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("HTTP {}: {body}", resp.status()));
        }
        let doc: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        let result = doc["results"][0].clone();
        match result.get("error") {
            Some(e) => Err(format!("InfluxDB: {e}")),
            None => Ok(result),
        }
    }

    /// Runs a statement that needs POST (e.g. `CREATE DATABASE`).
    fn post_query(&self, http: &ureq::Agent, q: &str) {
        let mut resp = http
            .post(format!("{}/query", self.base))
            .query("q", q)
            .send_empty()
            .unwrap_or_else(|e| panic!("POST /query {q:?}: {e}"));
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        assert!(
            resp.status() == 200 && !body.contains("\"error\""),
            "{q:?}: HTTP {}: {body}\n{}",
            resp.status(),
            self.log_tail()
        );
    }

    /// Writes `output` in batches of `BATCH_LINES` lines; every batch must be
    /// accepted whole (204; InfluxDB answers 400 "partial write" otherwise).
    /// Returns the number of lines written.
    fn write_all(&self, http: &ureq::Agent, output: &[u8]) -> usize {
        let mut total = 0;
        let mut start = 0;
        let mut lines = 0;
        for (i, &b) in output.iter().enumerate() {
            if b == b'\n' {
                lines += 1;
                if lines == BATCH_LINES {
                    self.write_batch(http, &output[start..=i], total);
                    total += lines;
                    (start, lines) = (i + 1, 0);
                }
            }
        }
        if start < output.len() {
            self.write_batch(http, &output[start..], total);
            total += lines + usize::from(output.last() != Some(&b'\n'));
        }
        total
    }

    fn write_batch(&self, http: &ureq::Agent, batch: &[u8], first_line: usize) {
        let mut resp = http
            .post(format!("{}/write", self.base))
            .query("db", DB)
            .query("precision", "ns")
            .content_type("text/plain; charset=utf-8")
            .send(batch)
            .unwrap_or_else(|e| panic!("POST /write: {e}"));
        if resp.status() != 204 {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            panic!(
                "InfluxDB rejected the batch starting at output line {}: HTTP {}: {body}\n{}",
                first_line + 1,
                resp.status(),
                self.log_tail()
            );
        }
    }

    /// Reads every `e2e_delays` row back, chunked, with ns timestamps.
    fn read_rows(&self, http: &ureq::Agent) -> Rows {
        let q = "SELECT * FROM e2e_delays GROUP BY *";
        let mut resp = http
            .get(format!("{}/query", self.base))
            .query("db", DB)
            .query("q", q)
            .query("epoch", "ns")
            .query("chunked", "true")
            .query("chunk_size", "10000")
            .call()
            .unwrap_or_else(|e| panic!("GET /query {q:?}: {e}"));
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .expect("read query response");
        assert_eq!(resp.status(), 200, "{q:?}: {body}");

        let mut rows = Rows::new();
        // A chunked answer is a stream of JSON documents.
        let json = quote_numbers(&body);
        for doc in serde_json::Deserializer::from_str(&json).into_iter::<Value>() {
            let doc = doc.expect("query response is not JSON");
            if let Some(e) = doc.get("error") {
                panic!("{q:?}: {e}");
            }
            for result in doc["results"].as_array().expect("no results") {
                if let Some(e) = result.get("error") {
                    panic!("{q:?}: {e}");
                }
                for series in result["series"].as_array().into_iter().flatten() {
                    read_series(series, &mut rows);
                }
            }
        }
        rows
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log_text();
        let log = if log.is_empty() {
            "(empty)"
        } else {
            tail(&log, 4000)
        };
        format!("--- influxd log (tail) ---\n{log}")
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds one series of the query answer to `rows` (numbers arrive as strings,
/// see `quote_numbers`).
fn read_series(series: &Value, rows: &mut Rows) {
    let tags = &series["tags"];
    let tag_values: Vec<String> = TAGS
        .iter()
        .map(|k| {
            tags[k]
                .as_str()
                .unwrap_or_else(|| panic!("series without tag {k}: {tags}"))
                .to_owned()
        })
        .collect();
    let tag_count = tags.as_object().map_or(0, |m| m.len());
    assert_eq!(tag_count, TAGS.len(), "series with other tags: {tags}");

    let columns: Vec<&str> = series["columns"]
        .as_array()
        .expect("no columns")
        .iter()
        .map(|c| c.as_str().expect("column name"))
        .collect();
    let position = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no column {name} in {columns:?}"))
    };
    let time_at = position("time");
    let field_at = FIELDS.map(position);
    assert_eq!(columns.len(), 1 + FIELDS.len(), "columns {columns:?}");

    for row in series["values"].as_array().expect("no values") {
        let number = |i: usize| {
            row[i]
                .as_str()
                .unwrap_or_else(|| panic!("column {} is not a number in {row}", columns[i]))
        };
        let time = parse_int(number(time_at)).expect("time is not an integer");
        let values = field_at.map(|i| parse_float(number(i)).expect("field is not a finite float"));
        let key = (tag_values.clone(), time);
        assert!(
            rows.insert(key, values).is_none(),
            "row read back twice: {tag_values:?} {time}"
        );
    }
}

/// Turns every JSON number outside strings into a string holding its text, so
/// the test parses it with Rust's correctly rounded `str::parse::<f64>`
/// (serde_json's default float parsing may be off by one ulp for 17-digit
/// values, and 19-digit ns timestamps must stay integers).
fn quote_numbers(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 4);
    let mut in_string = false;
    let mut escaped = false;
    let mut in_number = false;
    for c in json.chars() {
        if in_number && !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E') {
            out.push('"');
            in_number = false;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if !in_number && matches!(c, '0'..='9' | '-') {
            out.push('"');
            in_number = true;
        }
        out.push(c);
    }
    if in_number {
        out.push('"');
    }
    out
}

/// influxd 1.x configuration: everything under `dir`, HTTP and RPC on
/// 127.0.0.1 only, no usage reporting, no other listeners, little logging.
/// `reporting-disabled` is upstream's key, `reporting-enabled` Debian's;
/// each build ignores the other's.
fn config_text(dir: &Path, http_port: u16, rpc_port: u16) -> String {
    let d = |name: &str| toml_string(&dir.join(name));
    format!(
        r#"reporting-disabled = true
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = {meta}
  logging-enabled = false

[data]
  dir = {data}
  wal-dir = {wal}
  query-log-enabled = false
  trace-logging-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false
  max-row-limit = 0

[ifql]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"#,
        meta = d("meta"),
        data = d("data"),
        wal = d("wal"),
    )
}

/// A TOML basic string holding `path`.
fn toml_string(path: &Path) -> String {
    let s = path.to_str().expect("temp dir path is not UTF-8");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Two distinct ports that were free on 127.0.0.1 a moment ago.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    (port(&a), port(&b))
}

/// The first executable file called `name` in PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The last `max` bytes of `s` (at a char boundary).
fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The Grafana dashboard against the real server, and its schema.
mod dashboard {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::{Influxd, Rows};

    const DASHBOARD: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/telegraf/grafana/e2e_delays.json"
    );
    /// Grafana's own `$__interval` for this test's time range, before a
    /// panel's minimum interval applies: `calculateInterval` divides the
    /// range (the recording's 6 minutes) by the panel's width in pixels
    /// (about 1000 on a wide screen) and rounds with `roundInterval`:
    /// 360 ms rounds to 500 ms. Below the period: without its minimum
    /// interval a panel would group by less than one window.
    const AUTO_INTERVAL_MS: u64 = 500;
    /// Every panel's minimum interval (its `interval`, the lower limit of
    /// `$__interval`): the program's default `--period`, which
    /// `dashboard_is_importable` reads from `--help`.
    const MIN_INTERVAL: &str = "5s";
    /// The dashboard's variables, each a multi-value query variable with All,
    /// in the order Grafana resolves them.
    const VARIABLES: [&str; 3] = ["path_ID", "source_SFR", "target_SFR"];
    /// All as a regex that matches any value, not a list of every value.
    const ALL_VALUE: &str = ".*";
    /// The variable that narrows the others: `source_SFR` and `target_SFR`
    /// list only the SFRs of the chosen paths.
    const PARENT: &str = "path_ID";
    /// Panel types Grafana 10/11 ships; no `graph`, no `singlestat`.
    const PANEL_TYPES: [&str; 4] = ["row", "timeseries", "stat", "table"];

    /// The columns every query must return, by panel title and refId.
    const EXPECTED: &[(&str, &str, &[&str])] = &[
        (
            "End-to-end delay per path direction (forward + reverse + service)",
            "A",
            &["time", "e2e_delay"],
        ),
        (
            "Path $path_ID: forward + reverse + service, stacked per direction",
            "A",
            &["time", "forward", "reverse", "service"],
        ),
        (
            "Path $path_ID: forward + reverse + service, stacked per direction",
            "B",
            &["time", "forward", "reverse", "service"],
        ),
        (
            "Forward bandwidth per path direction",
            "A",
            &["time", "bandwidth"],
        ),
        (
            "Request and response size by target SFR",
            "A",
            &["time", "request", "response"],
        ),
        (
            "Latest e2e_delays row per path direction",
            "A",
            &[
                "time",
                "delay_forward",
                "delay_reverse",
                "delay_service",
                "avg_request_size",
                "avg_response_size",
                "avg_bandwidth",
                "endpoint",
                "sf_instance",
            ],
        ),
        ("Late points", "A", &["time", "sum"]),
        ("Invalid lines", "A", &["time", "sum"]),
        ("Skipped points", "A", &["time", "sum"]),
        ("Rows unwritable", "A", &["time", "sum"]),
        (
            "Lines and rows by instance (totals since start)",
            "A",
            &["time", "lines_in", "aggregated", "rows_written", "late"],
        ),
        (
            "Age of the reverse path and service used, per path direction",
            "A",
            &["time", "reverse_age", "service_age"],
        ),
        (
            "Rows from cached inputs",
            "A",
            &["time", "rows_reverse_cached"],
        ),
        (
            "Rows from cached inputs",
            "B",
            &["time", "rows_service_cached"],
        ),
        (
            "Lateness against grace",
            "A",
            &["time", "lateness_max", "lateness_p99", "grace"],
        ),
        ("Grace headroom", "A", &["time", "min"]),
    ];

    /// What the queries showed: failures, and a line for the log.
    pub struct Checked {
        pub problems: Vec<String>,
        pub summary: String,
    }

    fn load() -> Value {
        let text =
            std::fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
    }

    /// Every panel, rows included (a collapsed row keeps its panels inside).
    fn panels(dash: &Value) -> Vec<&Value> {
        let mut all = Vec::new();
        for p in dash["panels"].as_array().expect("panels") {
            all.push(p);
            all.extend(p["panels"].as_array().into_iter().flatten());
        }
        all
    }

    /// A variable's values as Grafana interpolates a multi-value variable
    /// into a raw InfluxQL query, a panel's or a variable's (the InfluxDB
    /// data source's `interpolateQueryStr`): a list of chosen values, also
    /// one, becomes `(v1|v2|...)` with each value regex-escaped; a single
    /// value (a repeated panel's own) is escaped unless it reads as a
    /// number. All with a custom all value is that value as it stands
    /// (`TemplateSrv` skips formatting it); All without one is the list of
    /// every value the variable's query returned.
    #[derive(Clone)]
    enum Selected {
        List(Vec<String>),
        One(String),
        Raw(String),
    }

    impl Selected {
        /// All, for a variable with this `allValue` and these options.
        fn all(all_value: Option<&str>, options: &[String]) -> Selected {
            match all_value {
                Some(v) => Selected::Raw(v.to_owned()),
                None => Selected::List(options.to_vec()),
            }
        }
    }

    fn interpolate(value: &Selected) -> String {
        match value {
            Selected::Raw(v) => v.clone(),
            Selected::List(values) => {
                let escaped: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
                format!("({})", escaped.join("|"))
            }
            Selected::One(v) if parses_as_float(v) => v.clone(),
            Selected::One(v) => regex_escape(v),
        }
    }

    /// Grafana's `regexEscape`: a backslash before each of `\^$*+?.()|[]{}/`.
    fn regex_escape(value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            if "\\^$*+?.()|[]{}/".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    /// JavaScript's `!isNaN(parseFloat(v))`: a number at the start.
    fn parses_as_float(v: &str) -> bool {
        let t = v.trim_start();
        let t = t.strip_prefix(['+', '-']).unwrap_or(t);
        t.starts_with(|c: char| c.is_ascii_digit())
            || (t.starts_with('.') && t[1..].starts_with(|c: char| c.is_ascii_digit()))
            || t.starts_with("Infinity")
    }

    /// A duration as Grafana writes one (`500ms`, `5s`, `1m`, `1h`), in ms.
    fn interval_ms(text: &str) -> Option<u64> {
        let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
        let scale = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        digits.parse::<u64>().ok().map(|n| n * scale)
    }

    /// `$__interval` as Grafana computes it for `panel`: its own interval,
    /// raised to the panel's minimum interval; in Grafana's text (`5s`).
    fn panel_interval(panel: &Value) -> String {
        let floor = panel["interval"]
            .as_str()
            .and_then(interval_ms)
            .unwrap_or(1);
        let ms = AUTO_INTERVAL_MS.max(floor);
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }

    /// The query Grafana sends: variables, `$timeFilter` and `$__interval`
    /// substituted.
    fn substitute(
        query: &str,
        vars: &[(&str, Selected)],
        time_filter: &str,
        interval: &str,
    ) -> String {
        let mut q = query
            .replace("$timeFilter", time_filter)
            .replace("$__interval", interval);
        for (name, value) in vars {
            q = q.replace(&format!("${{{name}}}"), &interpolate(value));
            q = q.replace(&format!("${name}"), &interpolate(value));
        }
        q
    }

    /// Runs every query of the dashboard against the server, with the
    /// variables substituted as Grafana substitutes them, for three
    /// selections: All everywhere (the custom all value `.*`); one path and
    /// one direction of it (a single chosen value each); two paths and the
    /// SFRs at their ends (several values each). For each selection the
    /// variables' own queries run first, in order, each with the values
    /// chosen for the variables before it (Grafana resolves a chained
    /// variable after its parent): each must list exactly the values the
    /// recording holds for the chosen paths. Then every panel's queries run
    /// with those values and the panel's `$__interval`. `output` is what was
    /// written; `rows` the program's rows.
    pub fn check_queries(
        server: &Influxd,
        http: &ureq::Agent,
        output: &[u8],
        rows: &Rows,
    ) -> Checked {
        let dash = load();
        let mut problems = Vec::new();
        let (from, to) = time_range(output);
        // Grafana's InfluxDB data source: `time >= <from>ms and time <= <to>ms`.
        let time_filter = format!("time >= {from}ms and time <= {to}ms");

        // What a variable must list when these paths are chosen (None: All):
        // the values of its tag in the rows of those paths. The path
        // variable itself is never narrowed.
        let listed = |name: &str, paths: Option<&Vec<String>>| -> BTreeSet<String> {
            let (i, paths) = match name {
                "path_ID" => (1, None),
                "source_SFR" => (3, paths),
                _ => (4, paths),
            };
            rows.keys()
                .filter(|(tags, _)| paths.is_none_or(|p| p.contains(&tags[1])))
                .map(|(tags, _)| tags[i].clone())
                .collect()
        };
        assert_eq!(listed("path_ID", None).len(), 40, "paths in the recording");
        assert_eq!(
            listed("source_SFR", None).len(),
            20,
            "source SFRs in the recording"
        );

        // Selection 1: All everywhere. Selection 2: one path and one of its
        // directions. Selection 3: two paths, and the SFRs at their ends.
        let picked = pick_two_paths(rows);
        let (path, source, target) = picked[0].clone();
        let paths: Vec<String> = picked.iter().map(|(p, _, _)| p.clone()).collect();
        let mut sfrs: Vec<String> = picked
            .iter()
            .flat_map(|(_, a, b)| [a.clone(), b.clone()])
            .collect();
        sfrs.sort();
        sfrs.dedup();
        // Per selection, what is chosen for each of `VARIABLES` (None: All).
        let selections: [(&str, [Option<Vec<String>>; 3]); 3] = [
            ("All", [None, None, None]),
            (
                "one",
                [Some(vec![path]), Some(vec![source]), Some(vec![target])],
            ),
            ("multi", [Some(paths), Some(sfrs.clone()), Some(sfrs)]),
        ];

        let variables = dash["templating"]["list"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut variable_queries = 0;
        let mut queries = 0;
        let mut covered = BTreeSet::new();
        for (selection, chosen) in &selections {
            let choice = |name: &str| {
                VARIABLES
                    .iter()
                    .position(|v| *v == name)
                    .and_then(|i| chosen[i].as_ref())
            };
            // The variables, resolved in order: name, value, options.
            let mut vars: Vec<(&str, Selected)> = Vec::new();
            let mut options: Vec<(&str, Vec<String>)> = Vec::new();
            for var in variables {
                let Some(&name) = VARIABLES.iter().find(|v| var["name"] == **v) else {
                    problems.push(format!(
                        "variable {}: not one of {VARIABLES:?}",
                        var["name"]
                    ));
                    continue;
                };
                let query = var["query"].as_str().unwrap_or_default();
                let q = substitute(query, &vars, &time_filter, "");
                variable_queries += 1;
                if q.contains("$timeFilter") || q.contains("$__") || has_variable(&q) {
                    problems.push(format!(
                        "variable {name} ({selection}): unsubstituted in {q}"
                    ));
                }
                let values = match server.get_query(http, &q) {
                    Ok(result) => tag_values(&result, name, &mut problems),
                    Err(e) => {
                        problems.push(format!("variable {name} ({selection}): {e}\n  {q}"));
                        Vec::new()
                    }
                };
                let want = listed(name, choice(PARENT));
                if values.iter().cloned().collect::<BTreeSet<_>>() != want {
                    problems.push(format!(
                        "variable {name} ({selection}): lists {values:?}, the recording has \
                         {want:?} for the chosen paths\n  {q}"
                    ));
                }
                let value = match choice(name) {
                    Some(v) => Selected::List(v.clone()),
                    None => Selected::all(var["allValue"].as_str(), &values),
                };
                vars.push((name, value));
                options.push((name, values));
            }
            if vars.len() != VARIABLES.len() {
                problems.push(format!(
                    "variables ({selection}): {} of {}",
                    vars.len(),
                    VARIABLES.len()
                ));
                continue;
            }

            for panel in panels(&dash) {
                let title = panel["title"].as_str().unwrap_or_default();
                let interval = panel_interval(panel);
                let targets = panel["targets"].as_array().map(Vec::as_slice);
                let grouped = targets.unwrap_or_default().iter().any(|t| {
                    t["query"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("$__interval")
                });
                let floor = interval_ms(MIN_INTERVAL).expect("MIN_INTERVAL");
                if grouped && *selection == "All" && interval_ms(&interval) < Some(floor) {
                    problems.push(format!(
                        "{title:?}: $__interval {interval}, less than the period {MIN_INTERVAL} \
                         (no minimum interval?)"
                    ));
                }
                // A repeated panel is one panel per value, each with its own
                // value of the variable (all of them with All; the first is
                // checked); check each.
                let instances: Vec<Vec<(&str, Selected)>> = match panel["repeat"].as_str() {
                    Some(var) => {
                        let all = options
                            .iter()
                            .find(|(n, _)| *n == var)
                            .map(|(_, o)| o[..o.len().min(1)].to_vec())
                            .unwrap_or_default();
                        choice(var)
                            .cloned()
                            .unwrap_or(all)
                            .into_iter()
                            .map(|value| {
                                let mut v = vars.clone();
                                v.retain(|(n, _)| *n != var);
                                v.push((var, Selected::One(value)));
                                v
                            })
                            .collect()
                    }
                    None => vec![vars.clone()],
                };
                for target in targets.unwrap_or_default() {
                    let ref_id = target["refId"].as_str().unwrap_or_default();
                    let query = target["query"].as_str().unwrap_or_default();
                    let Some(&(_, _, columns)) = EXPECTED
                        .iter()
                        .find(|(t, r, _)| *t == title && *r == ref_id)
                    else {
                        problems.push(format!(
                            "{title:?} {ref_id}: no expected columns in this test"
                        ));
                        continue;
                    };
                    covered.insert((title, ref_id));
                    for vars in &instances {
                        let q = substitute(query, vars, &time_filter, &interval);
                        queries += 1;
                        if q.contains("$timeFilter") || q.contains("$__") || has_variable(&q) {
                            problems
                                .push(format!("{title:?} {ref_id}: unsubstituted variable in {q}"));
                        }
                        let what = format!("{title:?} {ref_id} ({selection}): {q}");
                        match server.get_query(http, &q) {
                            // The stacked panel's second query is the path's
                            // other direction: none when one is chosen.
                            Ok(result)
                                if *selection == "one"
                                    && ref_id == "B"
                                    && panel["repeat"] == PARENT =>
                            {
                                if result.get("series").is_some() {
                                    problems
                                        .push(format!("{what}: series, expected none: {result}"));
                                }
                            }
                            Ok(result) => {
                                check_series(&result, columns, &mut problems, &what);
                                if title == "Grace headroom" {
                                    check_headroom(&result, output, &mut problems, &what);
                                }
                            }
                            Err(e) => problems
                                .push(format!("{title:?} {ref_id} ({selection}): {e}\n  {q}")),
                        }
                    }
                }
            }
        }
        for (title, ref_id, _) in EXPECTED {
            if !covered.contains(&(*title, *ref_id)) {
                problems.push(format!(
                    "{title:?} {ref_id}: expected by the test, not in the dashboard"
                ));
            }
        }
        Checked {
            problems,
            summary: format!(
                "dashboard: {queries} panel queries and {variable_queries} variable queries \
                 (selections All, one, multi) sent to influxd, time range {from}ms..{to}ms"
            ),
        }
    }

    /// Whether `$name` of a dashboard variable is left in `q`.
    fn has_variable(q: &str) -> bool {
        VARIABLES.iter().any(|v| q.contains(&format!("${v}")))
    }

    /// The values of a `SHOW TAG VALUES ... WITH KEY = "<name>"` answer.
    fn tag_values(result: &Value, name: &str, problems: &mut Vec<String>) -> Vec<String> {
        let mut values = Vec::new();
        for series in result["series"].as_array().into_iter().flatten() {
            if series["columns"] != serde_json::json!(["key", "value"]) {
                problems.push(format!("variable {name}: columns {}", series["columns"]));
            }
            for row in series["values"].as_array().into_iter().flatten() {
                if row[0] != name {
                    problems.push(format!("variable {name}: key {}", row[0]));
                }
                values.push(row[1].as_str().unwrap_or_default().to_owned());
            }
        }
        values
    }

    /// At least one series, each with exactly `columns` and some values.
    fn check_series(result: &Value, columns: &[&str], problems: &mut Vec<String>, what: &str) {
        let series = result["series"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if series.is_empty() {
            problems.push(format!("{what}: no series"));
        }
        // One problem per query, not one per series.
        if let Some(s) = series
            .iter()
            .find(|s| s["columns"] != serde_json::json!(columns))
        {
            problems.push(format!(
                "{what}: columns {}, expected {columns:?}",
                s["columns"]
            ));
        }
        if series
            .iter()
            .any(|s| s["values"].as_array().is_none_or(Vec::is_empty))
        {
            problems.push(format!("{what}: a series without values"));
        }
    }

    /// The headroom stat shows the `grace_headroom_ns` of the program's
    /// one self-metrics line (a replay writes one), to the nanosecond.
    fn check_headroom(result: &Value, output: &[u8], problems: &mut Vec<String>, what: &str) {
        let text = String::from_utf8_lossy(output);
        let written = text
            .lines()
            .filter(|l| l.starts_with("e2e_aggregator "))
            .find_map(|l| {
                l.split([' ', ','])
                    .find_map(|f| f.strip_prefix("grace_headroom_ns="))
            })
            .and_then(|v| v.trim_end_matches('i').parse::<i64>().ok());
        let shown = result["series"][0]["values"][0][1].as_i64();
        if written.is_none() || shown != written {
            problems.push(format!(
                "{what}: shows {shown:?}, the program wrote {written:?}"
            ));
        }
    }

    /// Two paths that have rows in both directions: `(path, source, target)`.
    fn pick_two_paths(rows: &Rows) -> Vec<(String, String, String)> {
        let directions: BTreeSet<(String, String, String)> = rows
            .keys()
            .map(|(t, _)| (t[1].clone(), t[3].clone(), t[4].clone()))
            .collect();
        let both: Vec<(String, String, String)> = directions
            .iter()
            .filter(|(p, a, b)| a < b && directions.contains(&(p.clone(), b.clone(), a.clone())))
            .cloned()
            .collect();
        assert!(
            both.len() >= 2,
            "fewer than two paths with rows in both directions"
        );
        vec![both[0].clone(), both[both.len() - 1].clone()]
    }

    /// The span of the output's timestamps, in ms, widened to whole ms.
    fn time_range(output: &[u8]) -> (i64, i64) {
        let text = std::str::from_utf8(output).expect("UTF-8");
        let stamps = text.lines().filter_map(|l| {
            l.rsplit_once(' ')
                .and_then(|(_, ts)| ts.parse::<i64>().ok())
        });
        let (lo, hi) = stamps.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        assert!(lo <= hi, "no timestamps in the output");
        (lo.div_euclid(1_000_000), hi.div_euclid(1_000_000) + 1)
    }

    /// Every `"datasource"` value in the dashboard.
    fn datasources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "datasource" {
                        out.push(child);
                    } else {
                        datasources(child, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|c| datasources(c, out)),
            _ => {}
        }
    }

    #[test]
    fn dashboard_is_importable() {
        let dash = load();
        let mut problems = Vec::new();
        let mut fail = |m: String| problems.push(m);

        // The panels' minimum interval is the default period.
        let help = std::process::Command::new(env!("CARGO_BIN_EXE_e2e-aggregator"))
            .arg("--help")
            .output()
            .expect("run e2e-aggregator --help");
        let help = String::from_utf8_lossy(&help.stdout);
        let period = help
            .split("--period <DURATION>")
            .nth(1)
            .and_then(|rest| rest.split("[default: ").nth(1))
            .and_then(|rest| rest.split(']').next());
        if period != Some(MIN_INTERVAL) {
            fail(format!(
                "--help gives the default period {period:?}, the panels' minimum interval is {MIN_INTERVAL}"
            ));
        }

        // A current schema: Grafana 10.x/11.x export 38-41 and migrate older.
        let version = dash["schemaVersion"].as_i64().unwrap_or(0);
        if !(36..=41).contains(&version) {
            fail(format!("schemaVersion {version}"));
        }
        for key in ["title", "uid"] {
            if dash[key].as_str().is_none_or(str::is_empty) {
                fail(format!("no {key}"));
            }
        }
        if !dash["id"].is_null() {
            fail("id must be null in an exported dashboard".into());
        }
        // Importable: one data-source input, and every reference goes through it.
        let inputs = dash["__inputs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let input_ok = inputs.len() == 1
            && inputs[0]["name"] == "DS_INFLUXDB"
            && inputs[0]["type"] == "datasource"
            && inputs[0]["pluginId"] == "influxdb";
        if !input_ok {
            fail(format!("__inputs: {inputs:?}"));
        }
        let datasource = serde_json::json!({"type": "influxdb", "uid": "${DS_INFLUXDB}"});
        // No hard-coded data source anywhere (the built-in annotation aside).
        let builtin = serde_json::json!({"type": "grafana", "uid": "-- Grafana --"});
        let mut sources = Vec::new();
        datasources(&dash, &mut sources);
        for ds in sources {
            if *ds != datasource && *ds != builtin {
                fail(format!("data source {ds}"));
            }
        }

        let mut ids = BTreeSet::new();
        for panel in panels(&dash) {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            let kind = panel["type"].as_str().unwrap_or_default();
            if !PANEL_TYPES.contains(&kind) {
                fail(format!("{title:?}: panel type {kind:?}"));
            }
            match panel["id"].as_i64() {
                Some(id) if ids.insert(id) => {}
                other => fail(format!("{title:?}: id {other:?} missing or not unique")),
            }
            let grid = &panel["gridPos"];
            let fits = ["h", "w", "x", "y"]
                .iter()
                .all(|k| grid[k].as_i64().is_some())
                && grid["x"].as_i64().unwrap_or(0) + grid["w"].as_i64().unwrap_or(99) <= 24;
            if !fits {
                fail(format!("{title:?}: gridPos {grid}"));
            }
            if kind == "row" {
                if panel.get("targets").is_some() {
                    fail(format!("{title:?}: a row with queries"));
                }
                continue;
            }
            if panel["interval"] != MIN_INTERVAL {
                fail(format!(
                    "{title:?}: minimum interval {}, expected the period {MIN_INTERVAL}",
                    panel["interval"]
                ));
            }
            if panel["datasource"] != datasource {
                fail(format!("{title:?}: datasource {}", panel["datasource"]));
            }
            let targets = panel["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if targets.is_empty() {
                fail(format!("{title:?}: no queries"));
            }
            let mut refs = BTreeSet::new();
            for t in targets {
                let ref_id = t["refId"].as_str().unwrap_or_default();
                if ref_id.is_empty() || !refs.insert(ref_id) {
                    fail(format!("{title:?}: refId {ref_id:?} empty or repeated"));
                }
                if t["rawQuery"] != true || t["query"].as_str().is_none_or(str::is_empty) {
                    fail(format!("{title:?} {ref_id}: not a raw InfluxQL query"));
                }
                if !matches!(t["resultFormat"].as_str(), Some("time_series" | "table")) {
                    fail(format!(
                        "{title:?} {ref_id}: resultFormat {}",
                        t["resultFormat"]
                    ));
                }
                if t["datasource"] != datasource {
                    fail(format!(
                        "{title:?} {ref_id}: datasource {}",
                        t["datasource"]
                    ));
                }
                let q = t["query"].as_str().unwrap_or_default();
                if q.contains("e2e_delays") && !q.contains("$timeFilter") {
                    fail(format!("{title:?} {ref_id}: no $timeFilter"));
                }
            }
            if let Some(var) = panel["repeat"].as_str() {
                if !VARIABLES.contains(&var) {
                    fail(format!("{title:?}: repeats over unknown variable {var}"));
                }
            }
        }

        let vars = dash["templating"]["list"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
        if names != VARIABLES {
            fail(format!("variables {names:?}"));
        }
        for v in vars {
            let name = v["name"].as_str().unwrap_or_default();
            let mut query = format!("SHOW TAG VALUES FROM \"e2e_delays\" WITH KEY = \"{name}\"");
            // Chained: the SFR variables list only the chosen paths' SFRs.
            if name != PARENT {
                query += &format!(" WHERE \"{PARENT}\" =~ /^${PARENT}$/");
            }
            let ok = v["type"] == "query"
                && v["datasource"] == datasource
                && v["query"] == query.as_str()
                && v["definition"] == query.as_str()
                && v["includeAll"] == true
                && v["multi"] == true
                // All as one regex, not a regex of every value.
                && v["allValue"] == ALL_VALUE;
            if !ok {
                fail(format!(
                    "variable {name}: {v}, expected query {query:?}, allValue {ALL_VALUE:?}"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn interpolation_matches_grafana() {
        assert_eq!(
            interpolate(&Selected::List(vec!["a.b".into(), "c/d".into()])),
            r"(a\.b|c\/d)"
        );
        assert_eq!(interpolate(&Selected::List(vec!["p-1".into()])), "(p-1)");
        assert_eq!(interpolate(&Selected::One("sfr (1)".into())), r"sfr \(1\)");
        assert_eq!(interpolate(&Selected::One("12.5x".into())), "12.5x");
        // All: the custom all value as it stands, else every option.
        let options = ["a.b".to_owned(), "c".to_owned()];
        assert_eq!(interpolate(&Selected::all(Some(".*"), &options)), ".*");
        assert_eq!(interpolate(&Selected::all(None, &options)), r"(a\.b|c)");
        assert_eq!(
            substitute(
                "WHERE \"p\" =~ /^$path_ID$/ AND $timeFilter GROUP BY time($__interval)",
                &[("path_ID", Selected::all(Some(".*"), &options))],
                "time >= 1ms",
                "5s"
            ),
            "WHERE \"p\" =~ /^.*$/ AND time >= 1ms GROUP BY time(5s)"
        );
    }

    #[test]
    fn interval_is_raised_to_the_minimum() {
        assert_eq!(interval_ms("500ms"), Some(500));
        assert_eq!(interval_ms("5s"), Some(5000));
        assert_eq!(interval_ms("2m"), Some(120_000));
        assert_eq!(interval_ms("5x"), None);
        assert_eq!(interval_ms("s"), None);
        assert_eq!(panel_interval(&serde_json::json!({"interval": "5s"})), "5s");
        assert_eq!(
            panel_interval(&serde_json::json!({"interval": "1m"})),
            "60s"
        );
        // No minimum: Grafana's own interval, less than a window.
        assert_eq!(panel_interval(&serde_json::json!({})), "500ms");
    }
}
