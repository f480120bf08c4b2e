//! The program's output must be line protocol that a real InfluxDB 1.x accepts
//! line for line and reads back exactly as we meant it.
//!
//! The test replays `testdata/golden/realistic/input.lp` through the binary,
//! writes the whole output (passed-through lines and `e2e_delays` rows) to a
//! private `influxd` over HTTP, then reads every `e2e_delays` row back and
//! compares tags, the six float fields (bit for bit) and the timestamp with
//! what the program wrote.
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
const FIELDS: [&str; 6] = [
    "delay_forward",
    "delay_reverse",
    "delay_service",
    "avg_request_size",
    "avg_response_size",
    "avg_bandwidth",
];

/// A row's identity in InfluxDB: its tag values (in `TAGS` order) and time.
type RowKey = (Vec<String>, i64);
/// Rows by identity; values in `FIELDS` order.
type Rows = BTreeMap<RowKey, [f64; 6]>;

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
    // Stop before comparing, so a failed assertion does not outlive the server.
    drop(server);

    eprintln!(
        "wrote {lines} lines, {} e2e_delays rows; read back {}",
        expected.len(),
        stored.len()
    );
    compare(&expected, &stored);
}

/// Runs the binary over the recording in replay mode; returns its stdout.
fn run_program() -> Vec<u8> {
    let input = File::open(INPUT).unwrap_or_else(|e| panic!("open {INPUT}: {e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_e2e-aggregator"))
        .arg("--replay")
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
/// and `\=` escaped; the six fields in order, each a float; a timestamp.
fn parse_row(line: &str) -> Result<(RowKey, [f64; 6]), String> {
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
    let mut values = [0.0; 6];
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

fn same_bits(a: &[f64; 6], b: &[f64; 6]) -> bool {
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
