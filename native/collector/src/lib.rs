//! logpipe collector's hot path, compiled: wire lines of a batch to `_bulk` lines.
//!
//! `decode` walks a batch's lines in order. A `log` line of the usual shape whose
//! container is known and whose text one of the ported parsers reads is turned here into
//! its document's `create` action and source, byte for byte what the Python path
//! (collector/batch.py, parse/, enrich.py, ids.py, bulk.py) writes. Every other line
//! (source, event and gap lines, invalid lines, shapes not ported, a line longer than
//! the collector keeps whole, which Python cuts) goes to the Python handler, in its
//! place in the batch, so the result is the same either way.
//!
//! Under parsing rules, a container whose written-out dissect rules decide for it (one
//! or several, in order: collector/rules/engine.py, `Plan.fasts`) has them tried here
//! too, as `Engine.first_fit` tries them, and the first that fits applied as
//! `fitted_document` (collector/rules/document.py) applies it: the pattern cut, its
//! `long`, `ip`, `keyword`, `double` and `boolean` fields typed, its `date` fields and
//! its time read (by the rule's own Python readers, a text's result kept when the text
//! alone decides it), the time held to the allowed skew.
//! Whatever that way cannot decide (a value not of its type, a time that does not read
//! or lies beyond the skew, a line with attributes of its own that the pattern fits)
//! goes to the handler, where the rule's general way says why (or merges the line's
//! own attributes with the rule's keys).

mod json;
mod level;
mod parse;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use serde::Deserialize;

use parse::{Bail, Parsed, Res};

const MAX_NS: u64 = (1 << 63) - 1;
const MAX_SEQ: u64 = 1 << 31;
const MAX_LINES: u64 = 1 << 31;
const LOG_START: &[u8] = b"{\"kind\":\"log\",";
const EXCEPTION_GROUP: &str = "  + Exception Group Traceback (most recent call last):";
/// The levels in the order of the places the handler gives (None first).
const LEVELS: [&str; 6] = [
    parse::TRACE,
    parse::DEBUG,
    parse::INFO,
    parse::WARN,
    parse::ERROR,
    parse::FATAL,
];

#[derive(Clone, Copy)]
enum Hint {
    Auto,
    Json,
    Logfmt,
    Nginx,
    Apache,
    Plain,
}

/// The Python objects themselves, not copies: a source's seven places are one or a few
/// routes that thousands of containers share, and each copy was a small allocation that
/// the C allocator gathered up in one piece after the batch (20 CPU-ms or so for 10,000
/// new containers, on the event loop).
struct Place {
    stream: Py<PyString>,
    action: Py<PyBytes>,
    event: Py<PyBytes>,
    data_stream: Py<PyBytes>,
}

struct Source {
    hint: Hint,
    head: Vec<u8>,
    places: Vec<Place>,
    id_prefix: Vec<u8>,
    suffix_stdout: Vec<u8>,
    suffix_stderr: Vec<u8>,
    /// The first literal of the one parsing rule that decides for this container (""
    /// when several do): a line whose parsed message lacks it is made as without rules;
    /// one that holds it is the rules' (`rules` when they are given, else the handler).
    needle: Option<String>,
    /// The container's rules in order, each with its own needle (a line without it
    /// skips the rule), when every one of them is written out and its typed fields are
    /// of kinds ported here; else empty.
    rules: Vec<(String, Rule)>,
    /// `AttributeFilter.indexes(key)` when `attributes` indexes only some parsed keys
    /// (LOGPIPE_INDEXED_ATTRIBUTES); None when it indexes every one.
    indexes: Option<Py<PyAny>>,
    /// What `indexes` said of each key asked so far (this batch).
    indexed: HashMap<String, bool>,
}

/// What a typed field becomes, as collector/rules/fused.py converts it.
#[derive(Clone, Copy)]
enum Kind {
    /// Fewer than 19 ASCII digits, written as an integer; anything else is SLOW.
    Long,
    /// A dotted quad as `convert._IPV4` reads it (written as it came); else SLOW.
    Ip,
    /// Text: itself (`to_keyword` of a str).
    Keyword,
    /// `_DECIMAL`'s shape in ASCII without surrounding whitespace, read as float() reads
    /// it (correctly rounded), finite; written as orjson writes a float. Else SLOW.
    Double,
    /// true/yes/on/1, false/no/off/0 in any ASCII case, nothing around them; else SLOW.
    Boolean,
    /// The rule's `dates[n]`: its converter's text, or SLOW.
    Date(usize),
}

/// A Python reader of a text cut from the line (`(text, docker_ns) -> value or None`):
/// a date field's converter (the date's text) or the rule's time reader (ns). When a
/// text alone decides its value, text -> value of those read is kept.
struct Reader<T> {
    read: Py<PyAny>,
    cacheable: bool,
    cache: HashMap<String, T>,
}

impl<T: Clone + for<'a, 'py> FromPyObject<'a, 'py>> Reader<T> {
    fn new(read: Py<PyAny>, cacheable: bool) -> Self {
        Reader {
            read,
            cacheable,
            cache: HashMap::new(),
        }
    }

    /// The value of `text` (kept, or read now), or Slow where the reader says None or fails.
    fn value(&mut self, py: Python<'_>, text: &str, docker_ns: u64) -> Result<T, Slow> {
        if let Some(made) = self.cache.get(text) {
            return Ok(made.clone());
        }
        let got = self
            .read
            .bind(py)
            .call1((text, docker_ns))
            .map_err(|_| Slow)?;
        let made: T = got.extract::<Option<T>>().map_err(|_| Slow)?.ok_or(Slow)?;
        if self.cacheable {
            if self.cache.len() >= TIMES_KEPT {
                self.cache.clear();
            }
            self.cache.insert(text.to_owned(), made.clone());
        }
        Ok(made)
    }
}

/// A typed field's value, made by the rule from the text cut for it.
enum Typed {
    /// The text itself (ip, keyword).
    Text,
    Long(u64),
    Double(f64),
    Boolean(bool),
    Date(String),
}

/// One key of a dissect pattern: its literal (empty: the last key, the rest of the line).
struct Step {
    literal: Vec<u8>,
    padded: bool,
    /// Kept as an attribute: the key's name, as JSON (`"name":`). None: skipped or typed.
    attribute: Option<Vec<u8>>,
}

/// A written-out dissect rule (collector/rules/fused.py, CompiledRule.fit), applied here
/// to the lines that hold its needle and have no attributes of their own.
struct Rule {
    /// `,"rule":"name"`, what the document's `logpipe` gains.
    logpipe: Vec<u8>,
    prefix: Vec<u8>,
    steps: Vec<Step>,
    /// Per typed field, in the rule's order: its name as JSON (`"name":`), its kind and
    /// the step whose text it takes.
    typed: Vec<(Vec<u8>, Kind, usize)>,
    /// The date fields' converters among them (`Kind::Date(n)` is `dates[n]`).
    dates: Vec<Reader<String>>,
    /// The step of the rule's time, and the reader of a time's text (ns).
    time: Option<(usize, Reader<i64>)>,
    max_skew_ns: i64,
}

const TIMES_KEPT: usize = 4096;

/// What the rule made of a line: where the text of each of the pattern's keys is in the
/// parsed message (per step), the value of each typed field (in the rule's order), and
/// the line's own time.
struct Fitted {
    values: Vec<Range<usize>>,
    typed: Vec<Typed>,
    ns: Option<u64>,
}

/// The rule's written-out way says the line is for the general way (the handler).
struct Slow;

/// `Dissect.__call__`: where the text of each step is, or None when the pattern does not
/// fit. UTF-8 literals of UTF-8 text are found at character boundaries, as str.find.
fn cut(rule: &Rule, text: &str) -> Option<Vec<Range<usize>>> {
    let bytes = text.as_bytes();
    if !bytes.starts_with(&rule.prefix) {
        return None;
    }
    let mut pos = rule.prefix.len();
    let mut values = Vec::with_capacity(rule.steps.len());
    for step in &rule.steps {
        let literal = step.literal.as_slice();
        if literal.is_empty() {
            values.push(pos..bytes.len());
            break;
        }
        let end = pos + memchr::memmem::find(&bytes[pos..], literal)?;
        values.push(pos..end);
        pos = end + literal.len();
        if step.padded {
            while bytes[pos..].starts_with(literal) {
                pos += literal.len();
            }
        }
    }
    Some(values)
}

/// `_IPV4.fullmatch`: four octets 0-255 without leading zeros, dot-separated, ASCII.
fn dotted_quad(text: &str) -> bool {
    let mut parts = 0;
    for part in text.split('.') {
        parts += 1;
        let b = part.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 3
            && b.iter().all(u8::is_ascii_digit)
            && (b.len() == 1 || b[0] != b'0')
            && part.parse::<u16>().is_ok_and(|n| n <= 255);
        if !ok || parts > 4 {
            return false;
        }
    }
    parts == 4
}

/// fused.py's first test of a long: fewer than 19 characters, all ASCII digits.
fn short_digits(text: &str) -> bool {
    !text.is_empty() && text.len() < 19 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The end of the ASCII digits of `b` from `at`.
fn digits_end(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && b[at].is_ascii_digit() {
        at += 1;
    }
    at
}

/// `to_double` of a text `_DECIMAL` reads whole, with nothing around it (`[+-]?`, then
/// digits, maybe a point and more digits, or a point and digits; then maybe `[eE][+-]?`
/// and digits): float()'s number, correctly rounded as Rust reads it too. None for
/// anything else, and for a number beyond a double (float() gives inf: not finite).
fn decimal(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut at = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let whole = digits_end(b, at);
    let mut fraction = whole;
    if b.get(whole) == Some(&b'.') {
        fraction = digits_end(b, whole + 1);
    }
    if whole == at && fraction <= whole + 1 {
        return None; // no digit before the exponent
    }
    at = fraction;
    if matches!(b.get(at), Some(b'e' | b'E')) {
        let sign = at + 1 + usize::from(matches!(b.get(at + 1), Some(b'+' | b'-')));
        at = digits_end(b, sign);
        if at == sign {
            return None;
        }
    }
    if at != b.len() {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    f.is_finite().then_some(f)
}

/// `to_boolean` of a text that is one of its words in ASCII (any case), nothing around.
fn boolean(text: &str) -> Option<bool> {
    let word = |w: &[&str]| w.iter().any(|w| text.eq_ignore_ascii_case(w));
    if word(&["true", "yes", "on", "1"]) {
        Some(true)
    } else if word(&["false", "no", "off", "0"]) {
        Some(false)
    } else {
        None
    }
}

/// The pattern and the typed fields of `rule` on `text` (CompiledRule.fit short of the
/// dates and the time: a date's value is `Typed::Text` and the time None until read):
/// None when the pattern does not fit, Slow when a value is not of its type.
fn fit_keys(rule: &Rule, text: &str) -> Result<Option<Fitted>, Slow> {
    let Some(values) = cut(rule, text) else {
        return Ok(None);
    };
    let mut typed = Vec::with_capacity(rule.typed.len());
    for (_, kind, at) in &rule.typed {
        let value = values
            .get(*at)
            .and_then(|r| text.get(r.clone()))
            .ok_or(Slow)?;
        typed.push(match kind {
            // int() of at most 18 ASCII digits: no leading zeros.
            Kind::Long if short_digits(value) => Typed::Long(value.parse().map_err(|_| Slow)?),
            Kind::Ip if dotted_quad(value) => Typed::Text,
            Kind::Keyword | Kind::Date(_) => Typed::Text,
            Kind::Double => Typed::Double(decimal(value).ok_or(Slow)?),
            Kind::Boolean => Typed::Boolean(boolean(value).ok_or(Slow)?),
            Kind::Long | Kind::Ip => return Err(Slow),
        });
    }
    Ok(Some(Fitted {
        values,
        typed,
        ns: None,
    }))
}

/// CompiledRule.fit: what `rule` makes of the parsed `message` (None: the pattern does
/// not fit), or Slow for the general way (the handler). A panic is Slow too.
fn fit(
    py: Python<'_>,
    rule: &mut Rule,
    message: &str,
    docker_ns: u64,
) -> Result<Option<Fitted>, Slow> {
    let keys = catch_unwind(AssertUnwindSafe(|| fit_keys(rule, message))).map_err(|_| Slow)?;
    let Some(mut fitted) = keys? else {
        return Ok(None);
    };
    for ((_, kind, at), value) in rule.typed.iter().zip(fitted.typed.iter_mut()) {
        if let Kind::Date(n) = *kind {
            let text = fitted
                .values
                .get(*at)
                .and_then(|r| message.get(r.clone()))
                .ok_or(Slow)?;
            let date = rule.dates.get_mut(n).ok_or(Slow)?;
            *value = Typed::Date(date.value(py, text, docker_ns)?);
        }
    }
    fitted.ns = fit_time(py, rule, message, &fitted.values, docker_ns)?;
    Ok(Some(fitted))
}

/// The line's own time by the rule (its reader, the skew), or Slow.
fn fit_time(
    py: Python<'_>,
    rule: &mut Rule,
    text: &str,
    values: &[Range<usize>],
    docker_ns: u64,
) -> Result<Option<u64>, Slow> {
    let Some((at, read)) = &mut rule.time else {
        return Ok(None);
    };
    let when = values
        .get(*at)
        .and_then(|r| text.get(r.clone()))
        .ok_or(Slow)?;
    let ns = read.value(py, when, docker_ns)?;
    let skew = i128::from(ns) - i128::from(docker_ns);
    let max = i128::from(rule.max_skew_ns);
    if ns < 0 || skew < -max || skew > max {
        return Err(Slow);
    }
    Ok(Some(ns as u64))
}

fn one() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLog<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    src: u64,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    ts: u64,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    truncated: bool,
    #[serde(default = "one")]
    lines: u64,
}

/// A wire `log` line as wire.quick_log (msgspec's LogFields) reads it, or None.
fn wire_log(raw: &[u8]) -> Option<WireLog<'_>> {
    if !raw.starts_with(LOG_START) || raw.last() != Some(&b'}') {
        return None;
    }
    let log: WireLog = serde_json::from_slice(raw).ok()?;
    let ok = log.kind == "log"
        && (log.stream == "stdout" || log.stream == "stderr")
        && log.ts <= MAX_NS
        && log.seq <= MAX_SEQ
        && (1..=MAX_LINES).contains(&log.lines);
    ok.then_some(log)
}

/// ASCII without the separators 0x1c-0x1f, which Python's `\s` takes and Rust's does not.
fn ascii_clean(text: &str) -> bool {
    text.bytes()
        .all(|b| b < 0x80 && !(0x1c..=0x1f).contains(&b))
}

fn ws_or_separator(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

#[allow(clippy::large_enum_variant)] // one per line, never stored
enum Got {
    Done(Parsed),
    /// Plain text, its level by collector.parse.level.detect_level; with a flag.
    Plain(Option<&'static str>),
}

/// collector.parse.parse, for what is ported.
fn dispatch(text: &str, hint: Hint) -> Res<Got> {
    if text.contains('\x1b') {
        return Err(Bail); // strip_ansi and its flags stay Python's
    }
    let first = text.as_bytes().first().copied();
    match hint {
        Hint::Json | Hint::Auto if first == Some(b'{') => parse::parse_json(text).map(Got::Done),
        // What cannot start a JSON value orjson reads is no JSON to it: a plain line.
        Hint::Json => match first {
            None => Ok(Got::Plain(Some("invalid_json"))),
            Some(b) if b.is_ascii_alphabetic() && !matches!(b, b't' | b'f' | b'n') => {
                Ok(Got::Plain(Some("invalid_json")))
            }
            _ => Err(Bail),
        },
        Hint::Plain => Ok(Got::Plain(None)),
        // logfmt reads any text as Python does (its whitespace is Python's).
        Hint::Logfmt if !ascii_clean(text) => Ok(match parse::parse_logfmt(text, false)? {
            Some(parsed) => Got::Done(parsed),
            None => Got::Plain(Some("parse_failed:logfmt")),
        }),
        // Other text: what the regexes' `\s`, `\d` and positions would make of it is
        // Python's to say, unless it can only be logfmt or plain text.
        Hint::Auto if !ascii_clean(text) => {
            let c = first.unwrap_or(b' ');
            if c >= 0x80 || ws_or_separator(c) || c.is_ascii_digit() || c == b'[' {
                return Err(Bail);
            }
            if text.contains("] \"") {
                return Err(Bail);
            }
            if text.contains('=') {
                if let Some(parsed) = parse::parse_logfmt(text, true)? {
                    return Ok(Got::Done(parsed));
                }
            }
            Ok(Got::Plain(None))
        }
        _ if !ascii_clean(text) => Err(Bail),
        Hint::Logfmt => Ok(match parse::parse_logfmt(text, false)? {
            Some(parsed) => Got::Done(parsed),
            None => Got::Plain(Some("parse_failed:logfmt")),
        }),
        Hint::Nginx | Hint::Apache => {
            let name = if matches!(hint, Hint::Nginx) {
                "nginx"
            } else {
                "apache"
            };
            if let Some(parsed) = parse::parse_access(text, Some(name))? {
                return Ok(Got::Done(parsed));
            }
            // Not an access line; an error log line only if it starts as one does.
            let b = text.as_bytes();
            let maybe_error = match hint {
                Hint::Nginx => b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'/',
                _ => first == Some(b'['),
            };
            if maybe_error {
                return Err(Bail);
            }
            let flag = if matches!(hint, Hint::Nginx) {
                "parse_failed:nginx"
            } else {
                "parse_failed:apache"
            };
            Ok(Got::Plain(Some(flag)))
        }
        Hint::Auto => {
            let Some(first) = first else {
                return Ok(Got::Plain(None));
            };
            if (first.is_ascii_whitespace() || first == 0x0b)
                && text.trim_start_matches(parse::py_space).starts_with('{')
            {
                return Err(Bail);
            }
            if text.contains("] \"") {
                if let Some(parsed) = parse::parse_access(text, None)? {
                    return Ok(Got::Done(parsed));
                }
            }
            let b = text.as_bytes();
            if first.is_ascii_digit() {
                if b.get(4) == Some(&b'/')
                    && b.get(7) == Some(&b'/')
                    && b.get(19..21) == Some(b" [")
                {
                    return Err(Bail); // an nginx error log line
                }
            } else if first == b'[' && (text.contains("] [pid ") || text.contains("] [client ")) {
                return Err(Bail); // an Apache error log line
            }
            if text.contains('=') {
                if let Some(parsed) = parse::parse_logfmt(text, true)? {
                    return Ok(Got::Done(parsed));
                }
            }
            Ok(Got::Plain(None))
        }
    }
}

fn level_index(level: Option<&str>) -> usize {
    match level {
        None => 0,
        Some(l) => 1 + LEVELS.iter().position(|x| *x == l).unwrap_or(0),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url of 16 bytes without padding (22 characters).
fn b64_16(data: &[u8; 16], out: &mut Vec<u8>) {
    for chunk in data.chunks(3) {
        let b0 = chunk[0] as u32;
        let b1 = *chunk.get(1).unwrap_or(&0) as u32;
        let b2 = *chunk.get(2).unwrap_or(&0) as u32;
        let n = (b0 << 16) | (b1 << 8) | b2;
        out.push(B64[(n >> 18) as usize & 63]);
        out.push(B64[(n >> 12) as usize & 63]);
        if chunk.len() > 1 {
            out.push(B64[(n >> 6) as usize & 63]);
        }
        if chunk.len() > 2 {
            out.push(B64[n as usize & 63]);
        }
    }
}

/// collector.ids: the `_id` of a log line.
fn log_id(source: &Source, stream: &str, ts: u64, seq: u64, out: &mut Vec<u8>) {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&ts.to_be_bytes());
    if seq == 0 {
        let suffix = if stream == "stdout" {
            &source.suffix_stdout
        } else {
            &source.suffix_stderr
        };
        raw[8..].copy_from_slice(suffix);
    } else {
        let mut hasher = Blake2bVar::new(8).expect("8 is a valid blake2b size");
        hasher.update(&source.id_prefix);
        hasher.update(stream.as_bytes());
        hasher.update(b"\x1f");
        hasher.update(itoa::Buffer::new().format(seq).as_bytes());
        hasher
            .finalize_variable(&mut raw[8..])
            .expect("8 bytes asked, 8 given");
    }
    b64_16(&raw, out);
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since the epoch (UTC).
fn second(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        y,
        m,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

struct Clock {
    secs: u64,
    text: String,
}

impl Clock {
    /// collector.enrich.format_ns
    fn write(&mut self, ns: u64, out: &mut Vec<u8>) {
        let secs = ns / 1_000_000_000;
        if secs != self.secs || self.text.is_empty() {
            let text = second(secs); // first: a panic leaves the clock as it was
            self.text = text;
            self.secs = secs;
        }
        out.extend_from_slice(self.text.as_bytes());
        out.push(b'.');
        let frac = ns % 1_000_000_000;
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(frac);
        out.extend(std::iter::repeat_n(b'0', 9 - digits.len()));
        out.extend_from_slice(digits.as_bytes());
        out.push(b'Z');
    }
}

/// `head` (`,"key.inner":`) and the value as a JSON string, when there is a value.
fn opt_member(out: &mut Vec<u8>, head: &[u8], value: &Option<String>) {
    if let Some(v) = value {
        out.extend_from_slice(head);
        json::write_str(out, v);
    }
}

/// collector.enrich._http_fields, flat (the duration goes into `event`, written before).
fn write_http(out: &mut Vec<u8>, http: &parse::Http) {
    opt_member(out, b",\"http.request.method\":", &http.method);
    opt_member(out, b",\"http.request.referrer\":", &http.referrer);
    if let Some(code) = http.status_code {
        out.extend_from_slice(b",\"http.response.status_code\":");
        out.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
    }
    if let Some(n) = http.body_bytes {
        out.extend_from_slice(b",\"http.response.body.bytes\":");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
    opt_member(out, b",\"http.version\":", &http.version);
    opt_member(out, b",\"url.original\":", &http.url);
    opt_member(out, b",\"url.path\":", &http.path);
    opt_member(out, b",\"user_agent.original\":", &http.user_agent);
    opt_member(out, b",\"source.ip\":", &http.client_ip);
}

/// How deep objects may nest in a `flattened` field, itself counted (Elasticsearch's
/// `depth_limit`; collector.attributes.FLATTENED_DEPTH).
const FLATTENED_DEPTH: usize = 20;

/// Whether `value`, held by an object `level` deep, holds an object deeper than a
/// `flattened` field takes (arrays do not count as a level).
fn too_deep(value: &serde_json::Value, level: usize) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            level >= FLATTENED_DEPTH || map.values().any(|v| too_deep(v, level + 1))
        }
        serde_json::Value::Array(items) => items.iter().any(|v| too_deep(v, level)),
        _ => false,
    }
}

/// The longest path of a parsed key `attributes` indexes, in characters (a nested key's
/// path joins its parents' keys with dots): collector.attributes.LONGEST_KEY.
const LONGEST_KEY: usize = 1024;

/// Whether a key holds the character a `flattened` field keeps for itself, NUL
/// (collector.keys.RESERVED): Elasticsearch refuses it in `attributes`.
fn reserved(key: &str) -> bool {
    memchr::memchr(0, key.as_bytes()).is_some()
}

/// Whether `attributes` may not hold `key` with its `value` (collector.attributes.unfit):
/// a key that holds NUL, or a key path that may be longer than LONGEST_KEY. Keys are
/// counted in bytes, never fewer than their characters: a line this says yes to goes to
/// the Python path, which counts characters and decides.
fn unfit(key: &str, value: &serde_json::Value) -> bool {
    reserved(key) || path_over(key.len(), value)
}

/// Whether a key path `length` long, or a path under it in `value`, may be longer than
/// LONGEST_KEY, or a key under it holds NUL (see `unfit`).
fn path_over(length: usize, value: &serde_json::Value) -> bool {
    if length > LONGEST_KEY {
        return true;
    }
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, v)| reserved(key) || path_over(length + 1 + key.len(), v)),
        serde_json::Value::Array(items) => items.iter().any(|v| path_over(length, v)),
        _ => false,
    }
}

/// The `create` action and document of one line (collector.enrich.log_document and
/// collector.bulk.encode: flat, collector/shape.py), with what its rule made of it when
/// `ruled` (a rule that fit: collector/rules/document.py's `finish`); None if a value
/// cannot be written as orjson would.
#[allow(clippy::too_many_arguments)] // `py` reads the places' bytes
fn write_doc(
    py: Python<'_>,
    out: &mut Vec<u8>,
    clocks: &mut [Clock; 2],
    source: &Source,
    log: &WireLog,
    text: &str,
    parsed: &Parsed,
    ruled: Option<(&Rule, &Fitted)>,
) -> Option<usize> {
    let at = level_index(parsed.level);
    let place = source.places.get(at)?;
    let [clock, own_clock] = clocks;
    out.extend_from_slice(place.action.as_bytes(py));
    out.push(b'"');
    log_id(source, &log.stream, log.ts, log.seq, out);
    out.extend_from_slice(b"\"}}\n{\"@timestamp\":\"");
    // The line's own time when its rule read one; Docker's goes to `event.created`.
    let own = ruled.and_then(|(_, fitted)| fitted.ns);
    match own {
        Some(ns) => own_clock.write(ns, out),
        None => clock.write(log.ts, out),
    }
    out.extend_from_slice(b"\",");
    out.extend_from_slice(&source.head);
    // The shared `event.*` with one or two keys more: the duration, Docker's time.
    out.push(b',');
    out.extend_from_slice(place.event.as_bytes(py));
    if let Some(ns) = parsed.http.as_ref().and_then(|h| h.duration_ns) {
        out.extend_from_slice(b",\"event.duration\":");
        out.extend_from_slice(itoa::Buffer::new().format(ns).as_bytes());
    }
    if own.is_some() {
        out.extend_from_slice(b",\"event.created\":\"");
        clock.write(log.ts, out);
        out.push(b'"');
    }
    out.push(b',');
    out.extend_from_slice(place.data_stream.as_bytes(py));
    out.extend_from_slice(b",\"message\":");
    json::write_str(out, parsed.message.as_deref().unwrap_or(text));
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(log.stream.as_bytes());
    out.extend_from_slice(b"\",\"logpipe.parser\":\"");
    out.extend_from_slice(parsed.parser.as_bytes());
    out.push(b'"');
    if log.lines != 1 {
        out.extend_from_slice(b",\"logpipe.lines\":");
        out.extend_from_slice(itoa::Buffer::new().format(log.lines).as_bytes());
    }
    if let Some((rule, _)) = ruled {
        out.extend_from_slice(&rule.logpipe);
    }
    if let Some(level) = parsed.level {
        out.extend_from_slice(b",\"log.level\":\"");
        out.extend_from_slice(level.as_bytes());
        out.push(b'"');
    }
    if let Some(logger) = &parsed.logger {
        out.extend_from_slice(b",\"log.logger\":");
        json::write_str(out, logger);
    }
    if let Some((rule, fitted)) = ruled {
        // The pattern's keys less the typed ones, in its order (the line had none).
        let mut first = true;
        let message = parsed.message.as_deref().unwrap_or(text);
        for (step, at) in rule.steps.iter().zip(&fitted.values) {
            if let Some(key) = &step.attribute {
                let value = message.get(at.clone())?;
                out.extend_from_slice(if first { b",\"attributes\":{" } else { b"," });
                first = false;
                out.extend_from_slice(key);
                json::write_str(out, value);
            }
        }
        if !first {
            out.push(b'}');
        }
    } else if let Some(attributes) = &parsed.attributes {
        if attributes.values().any(|v| too_deep(v, 1)) {
            return None; // the Python path writes the objects too deep as JSON text
        }
        if attributes.iter().any(|(key, v)| unfit(key, v)) {
            return None; // the Python path keeps a key `attributes` refuses apart
        }
        if source.indexes.is_none() {
            out.extend_from_slice(b",\"attributes\":");
            if !json::write_map(out, attributes) {
                return None;
            }
        } else {
            // The keys indexed, then those kept unindexed, each in the line's order
            // (AttributeFilter.split); a key not asked about yet is the Python path's.
            for (field, indexed) in [
                (&b",\"attributes\":{"[..], true),
                (b",\"attributes_unindexed\":{", false),
            ] {
                let mut first = true;
                for (key, item) in attributes.iter() {
                    if *source.indexed.get(key)? != indexed {
                        continue;
                    }
                    out.extend_from_slice(if first { field } else { b"," });
                    first = false;
                    json::write_str(out, key);
                    out.push(b':');
                    if !json::write_value(out, item) {
                        return None;
                    }
                }
                if !first {
                    out.push(b'}');
                }
            }
        }
    }
    if let Some(http) = &parsed.http {
        write_http(out, http);
    }
    opt_member(out, b",\"trace.id\":", &parsed.trace_id);
    opt_member(out, b",\"span.id\":", &parsed.span_id);
    if !parsed.flags.is_empty() || log.truncated || log.lines > 1 {
        out.extend_from_slice(b",\"tags\":[");
        let mut tags: Vec<&str> = parsed.flags.clone();
        if log.truncated {
            tags.push("truncated");
        }
        if log.lines > 1 {
            tags.push("multiline");
        }
        for (i, tag) in tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, tag);
        }
        out.push(b']');
    }
    if let Some((rule, fitted)) = ruled {
        let message = parsed.message.as_deref().unwrap_or(text);
        for ((key, _, at), value) in rule.typed.iter().zip(&fitted.typed) {
            out.push(b',');
            out.extend_from_slice(key); // `"fields.<name>":`
            match value {
                Typed::Text => json::write_str(out, message.get(fitted.values.get(*at)?.clone())?),
                Typed::Long(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
                Typed::Double(f) => json::write_float(out, *f),
                Typed::Boolean(true) => out.extend_from_slice(b"true"),
                Typed::Boolean(false) => out.extend_from_slice(b"false"),
                Typed::Date(text) => json::write_str(out, text),
            }
        }
    }
    out.extend_from_slice(b"}\n");
    Some(at)
}

fn read_source(info: &Bound<'_, PyAny>) -> PyResult<Source> {
    let t = info.cast::<PyTuple>()?;
    let hint = match t.get_item(0)?.extract::<String>()?.as_str() {
        "json" => Hint::Json,
        "logfmt" => Hint::Logfmt,
        "nginx" => Hint::Nginx,
        "apache" => Hint::Apache,
        "plain" => Hint::Plain,
        _ => Hint::Auto,
    };
    let head: Vec<u8> = t.get_item(1)?.extract()?;
    let mut places = Vec::with_capacity(7);
    for place in t.get_item(2)?.cast::<PyList>()?.iter() {
        let p = place.cast::<PyTuple>()?;
        places.push(Place {
            stream: p.get_item(0)?.cast::<PyString>()?.clone().unbind(),
            action: p.get_item(1)?.cast::<PyBytes>()?.clone().unbind(),
            event: p.get_item(2)?.cast::<PyBytes>()?.clone().unbind(),
            data_stream: p.get_item(3)?.cast::<PyBytes>()?.clone().unbind(),
        });
    }
    Ok(Source {
        hint,
        head,
        places,
        id_prefix: t.get_item(3)?.extract()?,
        suffix_stdout: t.get_item(4)?.extract()?,
        suffix_stderr: t.get_item(5)?.extract()?,
        needle: if t.len() > 6 {
            t.get_item(6)?.extract()?
        } else {
            None
        },
        // Rules that do not read are left to the handler (their lines go to Python).
        rules: match t.get_item(7) {
            Ok(rules) if !rules.is_none() => read_rules(&rules).unwrap_or_default(),
            _ => Vec::new(),
        },
        indexes: match t.get_item(8) {
            Ok(indexes) if !indexes.is_none() => Some(indexes.unbind()),
            _ => None,
        },
        indexed: HashMap::new(),
    })
}

/// The rules of a source: a list of each rule's (needle, rule) in order; an error when
/// it is anything else or any of them does not read.
fn read_rules(info: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Rule)>> {
    let list = info.cast::<PyList>()?;
    let mut rules = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = item.cast::<PyTuple>()?;
        if pair.len() != 2 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "not (needle, rule)",
            ));
        }
        rules.push((pair.get_item(0)?.extract()?, read_rule(&pair.get_item(1)?)?));
    }
    Ok(rules)
}

/// `"key":` as JSON.
fn json_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 3);
    json::write_str(&mut key, name);
    key.push(b':');
    key
}

/// A rule as collector/native.py's rule_parts gives it.
fn read_rule(info: &Bound<'_, PyAny>) -> PyResult<Rule> {
    let t = info.cast::<PyTuple>()?;
    let name: String = t.get_item(0)?.extract()?;
    let prefix: String = t.get_item(1)?.extract()?;
    let mut names: Vec<Option<String>> = Vec::new();
    let mut steps = Vec::new();
    for step in t.get_item(2)?.cast::<PyList>()?.iter() {
        let (key, literal, padded): (Option<String>, String, bool) = step.extract()?;
        steps.push(Step {
            literal: literal.into_bytes(),
            padded,
            attribute: key.as_deref().map(json_key),
        });
        names.push(key);
    }
    let at = |wanted: &str| {
        names
            .iter()
            .position(|n| n.as_deref() == Some(wanted))
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("no key {wanted}")))
    };
    let mut typed = Vec::new();
    let mut dates = Vec::new();
    for field in t.get_item(3)?.cast::<PyList>()?.iter() {
        // (name, kind), or a date's (name, "date", its converter, cacheable).
        let field = field.cast::<PyTuple>()?;
        let kind: String = field.get_item(1)?.extract()?;
        let kind = match (kind.as_str(), field.len()) {
            ("long", 2) => Kind::Long,
            ("ip", 2) => Kind::Ip,
            ("keyword", 2) => Kind::Keyword,
            ("double", 2) => Kind::Double,
            ("boolean", 2) => Kind::Boolean,
            ("date", 4) => {
                dates.push(Reader::new(
                    field.get_item(2)?.unbind(),
                    field.get_item(3)?.extract()?,
                ));
                Kind::Date(dates.len() - 1)
            }
            // A kind not known here: the rule is refused (its lines go to Python).
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "kind {kind}"
                )))
            }
        };
        let field: String = field.get_item(0)?.extract()?;
        let step = at(&field)?;
        steps[step].attribute = None; // typed: under `fields`, not `attributes`
        typed.push((json_key(&format!("fields.{field}")), kind, step));
    }
    let time_field: Option<String> = t.get_item(4)?.extract()?;
    let time = match time_field {
        Some(field) => Some((
            at(&field)?,
            Reader::new(t.get_item(5)?.unbind(), t.get_item(6)?.extract()?),
        )),
        None => None,
    };
    let mut logpipe = Vec::new();
    if !name.is_empty() {
        logpipe.extend_from_slice(b",\"logpipe.rule\":");
        json::write_str(&mut logpipe, &name);
    }
    Ok(Rule {
        logpipe,
        prefix: prefix.into_bytes(),
        steps,
        typed,
        dates,
        time,
        max_skew_ns: t.get_item(7)?.extract()?,
    })
}

fn static_level(level: &Bound<'_, PyAny>) -> PyResult<Option<Option<&'static str>>> {
    if level.is_none() {
        return Ok(Some(None));
    }
    let text: String = level.extract()?;
    Ok(LEVELS.iter().find(|l| **l == text).map(|l| Some(*l)))
}

/// Where the decoding of one body is: the sources its lines declared so far (as the
/// handler gave their parts), the place of the next line and its number, what was
/// counted, and what is kept from one line to the next.
struct Walk {
    sources: HashMap<u64, Source>,
    /// The sources once every line was read, being freed (in steps).
    spent: Vec<Source>,
    /// Docker's times, and the lines' own (a rule's): each a second's text kept.
    clocks: [Clock; 2],
    out: Vec<u8>,
    /// The offset of the next line in the body (past its end when every line was read).
    at: usize,
    /// The lines before `at`, blank ones too (a line's number is its place in the body).
    number: usize,
    received: usize,
    native: usize,
    /// A `log` line whose message is longer (bytes of UTF-8) goes to the handler, which
    /// cuts it (collector/batch.py, `_cut`): rare, and cut in one place only.
    max_line_bytes: usize,
}

/// The callables a walk hands its lines and documents to (see `decode`), and the body
/// itself, which each document made here refers to (its line is read again only should
/// its original text be asked for: a dead letter, two texts under one id).
struct Calls<'a, 'py> {
    body: &'a Bound<'py, PyAny>,
    docs: &'a Bound<'py, PyList>,
    doc: &'a Bound<'py, PyAny>,
    handler: &'a Bound<'py, PyAny>,
    detect_level: &'a Bound<'py, PyAny>,
}

/// How many lines made here go by between two looks at the clock (a line handed to the
/// handler is followed by one): a look costs about 25 ns, a line made here about 1 µs.
const LINES_PER_LOOK: u32 = 64;
/// How many sources are freed between two looks at the clock (about 5 µs each).
const SOURCES_PER_LOOK: usize = 256;

impl Walk {
    fn new(max_line_bytes: usize) -> Self {
        Walk {
            sources: HashMap::new(),
            spent: Vec::new(),
            clocks: [
                Clock {
                    secs: 0,
                    text: String::new(),
                },
                Clock {
                    secs: 0,
                    text: String::new(),
                },
            ],
            out: Vec::with_capacity(2048),
            at: 0,
            number: 0,
            received: 0,
            native: 0,
            max_line_bytes,
        }
    }

    fn done(&self, body: &[u8]) -> bool {
        self.at > body.len()
    }

    /// Read the lines of `body` from `at` on, until its end or, when `until` is given, the
    /// first look at the clock at or after it (at least one line is read): whether the
    /// body is done.
    fn walk(
        &mut self,
        py: Python<'_>,
        body: &[u8],
        calls: &Calls<'_, '_>,
        until: Option<Instant>,
    ) -> PyResult<bool> {
        let mut unlooked = LINES_PER_LOOK; // lines until the next look at the clock
        while !self.done(body) {
            if unlooked == 0 {
                if until.is_some_and(|until| Instant::now() >= until) {
                    return Ok(false);
                }
                unlooked = LINES_PER_LOOK;
            }
            let start = self.at;
            let end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |at| start + at);
            self.at = end + 1;
            self.number += 1;
            let raw = &body[start..end];
            if raw
                .iter()
                .all(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
            {
                continue; // empty or blank (bytes.isspace)
            }
            self.received += 1;
            if self.line(py, raw, start, calls)? {
                self.native += 1;
                unlooked -= 1;
            } else {
                unlooked = 0; // the handler's lines can take a thousand times as long
            }
        }
        if let Some(until) = until {
            // A source's parts are a few dozen small allocations: those of 10,000 new
            // containers took 40-300 ms to free, so they are freed in steps too.
            self.spent
                .extend(self.sources.drain().map(|(_, source)| source));
            loop {
                self.spent
                    .truncate(self.spent.len().saturating_sub(SOURCES_PER_LOOK));
                if self.spent.is_empty() {
                    break;
                }
                if Instant::now() >= until {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// One non-blank line, at `offset` in the body: its document made here (true), or
    /// the line handed to the handler (false).
    fn line(
        &mut self,
        py: Python<'_>,
        raw: &[u8],
        offset: usize,
        calls: &Calls<'_, '_>,
    ) -> PyResult<bool> {
        let Calls {
            body,
            docs,
            doc,
            handler,
            detect_level,
        } = *calls;
        let number = self.number;
        let long = self.max_line_bytes;
        if let Some(log) = wire_log(raw).filter(|log| log.message.len() <= long) {
            if let Some(source) = self.sources.get_mut(&log.src) {
                let text: &str = &log.message;
                // A bug here must cost no line: a panic sends the line to Python.
                let got = catch_unwind(AssertUnwindSafe(|| dispatch(text, source.hint)));
                let parsed = match got {
                    Ok(Ok(Got::Done(parsed))) => Some(parsed),
                    Ok(Ok(Got::Plain(flag))) => {
                        let native_level = catch_unwind(|| level::detect_level(text));
                        let level = if text.starts_with(EXCEPTION_GROUP) {
                            Some(Some(parse::ERROR))
                        } else if let Ok(Ok(level)) = native_level {
                            Some(level)
                        } else {
                            static_level(&detect_level.call1((text,))?)?
                        };
                        level.map(|level| {
                            let mut parsed = Parsed::new("plain");
                            parsed.level = level;
                            parsed.flags.extend(flag);
                            parsed
                        })
                    }
                    Ok(Err(Bail)) | Err(_) => None,
                };
                // A line with the needle is the rules': tried here in order when they
                // are given (Engine.first_fit), else the handler's. A rule whose own
                // needle the line lacks is passed over, and so is one whose pattern does
                // not fit; a line with attributes of its own that a pattern fits, or one
                // the written-out way calls SLOW, is the handler's; the first rule whose
                // pattern fits shapes it; a line no pattern fits is made as without rules.
                let mut fitted = None;
                let parsed = match (parsed, &source.needle) {
                    (Some(parsed), Some(needle)) => {
                        let message = parsed.message.as_deref().unwrap_or(text);
                        if !message.contains(needle.as_str()) {
                            Some(parsed)
                        } else if source.rules.is_empty() {
                            None
                        } else {
                            let own = parsed.attributes.as_ref().is_some_and(|a| !a.is_empty());
                            let mut general = false; // the handler's: the rules' general way decides
                            for (at, (needle, rule)) in source.rules.iter_mut().enumerate() {
                                if !message.contains(needle.as_str()) {
                                    continue;
                                }
                                if own {
                                    // Its pattern on the message, as first_fit's `take`:
                                    // one that fits is the general way's (it merges the
                                    // line's own fields); one that does not is passed over.
                                    if cut(rule, message).is_some() {
                                        general = true;
                                        break;
                                    }
                                    continue;
                                }
                                match fit(py, rule, message, log.ts) {
                                    Ok(None) => continue,
                                    Ok(Some(found)) => {
                                        fitted = Some((at, found));
                                        break;
                                    }
                                    Err(Slow) => {
                                        general = true;
                                        break;
                                    }
                                }
                            }
                            (!general).then_some(parsed)
                        }
                    }
                    (parsed, _) => parsed,
                };
                if let Some(parsed) = parsed {
                    if fitted.is_none() {
                        ask_indexed(py, source, &parsed);
                    }
                    let out = &mut self.out;
                    out.clear();
                    let source = &*source;
                    let ruled = fitted
                        .as_ref()
                        .map(|(at, found)| (&source.rules[*at].1, found));
                    let written = catch_unwind(AssertUnwindSafe(|| {
                        write_doc(
                            py,
                            out,
                            &mut self.clocks,
                            source,
                            &log,
                            text,
                            &parsed,
                            ruled,
                        )
                    }));
                    if let Ok(Some(at)) = written {
                        let split = memchr::memchr(b'\n', out).unwrap_or(0);
                        // The id sits between `"_id":"` and `"}}` at the end of the action.
                        let id = std::str::from_utf8(&out[split - 25..split - 3]).unwrap_or("");
                        // The text is not made a Python string here (it cost about
                        // 0.3 µs a line, and is rarely asked for): the document gets
                        // the body and the line's offset, and `wire_message` reads
                        // the text again from the line should it be asked for.
                        let made = doc.call1((
                            PyString::new(py, id),
                            source.places[at].stream.clone_ref(py),
                            body,
                            offset,
                            PyBytes::new(py, out),
                        ))?;
                        docs.append(made)?;
                        return Ok(true);
                    }
                }
            }
        }
        let declared = handler.call1((PyBytes::new(py, raw), number))?;
        if !declared.is_none() {
            let (src, parts): (u64, Bound<'_, PyAny>) = declared.extract()?;
            if parts.is_none() {
                self.sources.remove(&src);
            } else {
                self.sources.insert(src, read_source(&parts)?);
            }
        }
        Ok(false)
    }
}

/// Decode the batch `body`: each document made here is appended to `docs` as
/// `doc(id, stream, body, offset, encoded)` (`offset`: where its line starts in `body`,
/// for `wire_message`); every other non-blank line is passed to
/// `handler(raw, number)`, which returns `(src, parts)` for a source line (parts as
/// collector/native.py's source_parts makes them; None: its lines go to the handler too;
/// with a rule's needle: those of its lines whose parsed message holds it, unless the
/// rules themselves are given and decide for the line here) and None for any other line.
/// `detect_level(text)` is the Python plain-text level finder. A `log` line whose message
/// is longer than `max_line_bytes` (bytes of UTF-8) is the handler's. Returns the number
/// of non-blank lines and how many of them were made here.
#[pyfunction]
#[pyo3(signature = (body, docs, doc, handler, detect_level, max_line_bytes=usize::MAX))]
fn decode(
    py: Python<'_>,
    body: &Bound<'_, PyBytes>,
    docs: &Bound<'_, PyList>,
    doc: &Bound<'_, PyAny>,
    handler: &Bound<'_, PyAny>,
    detect_level: &Bound<'_, PyAny>,
    max_line_bytes: usize,
) -> PyResult<(usize, usize)> {
    let calls = Calls {
        body: body.as_any(),
        docs,
        doc,
        handler,
        detect_level,
    };
    let mut walk = Walk::new(max_line_bytes);
    walk.walk(py, body.as_bytes(), &calls, None)?;
    Ok((walk.received, walk.native))
}

/// The decoding of one body in steps, so that its caller can let other work run between
/// them (an event loop's other requests): `Batch(body, max_line_bytes)`, then `step(docs, doc, handler,
/// detect_level, seconds)` until it returns True. Each step reads lines as `decode` does,
/// from where the last one stopped, the sources declared by earlier steps still known,
/// until about `seconds` have passed (at least one line; None: to the end). The
/// documents, their order, the handler's calls and the counts are those of `decode`
/// whatever the steps.
#[pyclass(module = "logpipe_collector_native")]
struct Batch {
    body: Py<PyBytes>,
    walk: Walk,
}

#[pymethods]
impl Batch {
    #[new]
    #[pyo3(signature = (body, max_line_bytes=usize::MAX))]
    fn new(body: Py<PyBytes>, max_line_bytes: usize) -> Self {
        Batch {
            body,
            walk: Walk::new(max_line_bytes),
        }
    }

    /// Read the next lines (see the class): whether every line was read (and what the
    /// steps kept of the sources freed).
    #[pyo3(signature = (docs, doc, handler, detect_level, seconds=None))]
    fn step(
        &mut self,
        py: Python<'_>,
        docs: &Bound<'_, PyList>,
        doc: &Bound<'_, PyAny>,
        handler: &Bound<'_, PyAny>,
        detect_level: &Bound<'_, PyAny>,
        seconds: Option<f64>,
    ) -> PyResult<bool> {
        let until = match seconds {
            Some(s) if s.is_finite() && s >= 0.0 => {
                Some(Instant::now() + Duration::from_secs_f64(s.min(86_400.0)))
            }
            Some(s) => {
                return Err(PyValueError::new_err(format!(
                    "seconds: {s} is not a duration"
                )))
            }
            None => None,
        };
        let body = self.body.clone_ref(py).into_bound(py);
        let calls = Calls {
            body: body.as_any(),
            docs,
            doc,
            handler,
            detect_level,
        };
        self.walk.walk(py, body.as_bytes(), &calls, until)
    }

    /// The non-blank lines read so far.
    #[getter]
    fn received(&self) -> usize {
        self.walk.received
    }

    /// How many of them were made here.
    #[getter]
    fn native(&self) -> usize {
        self.walk.native
    }

    /// Forget the sources declared so far: the lines that name them go to the handler
    /// (after a reload of the retention rules, say, which their parts were made with).
    fn forget_sources(&mut self) {
        self.walk.sources.clear();
    }
}

/// What the source's `indexes` says of each parsed key of the line not asked about yet
/// (nothing when every key is indexed). A key it gives no answer for stays unasked: the
/// line is then the Python path's.
fn ask_indexed(py: Python<'_>, source: &mut Source, parsed: &Parsed) {
    let (Some(indexes), Some(attributes)) = (&source.indexes, &parsed.attributes) else {
        return;
    };
    for key in attributes.keys() {
        if !source.indexed.contains_key(key) {
            let answer = indexes.bind(py).call1((key.as_str(),));
            if let Ok(indexed) = answer.and_then(|a| a.is_truthy()) {
                source.indexed.insert(key.clone(), indexed);
            }
        }
    }
}

/// collector.parse.level.detect_level of `text` as this module finds it: (True, the
/// level or None), or (False, None) for text it leaves to the Python function.
#[pyfunction]
fn plain_level(text: &str) -> (bool, Option<&'static str>) {
    match level::detect_level(text) {
        Ok(found) => (true, found),
        Err(Bail) => (false, None),
    }
}

/// The message of the wire `log` line that starts at `offset` in `body`, as the
/// document made of it took it (`decode` hands each document the body and its line's
/// offset instead of the text); None where no such line starts there.
#[pyfunction]
fn wire_message(body: &[u8], offset: usize) -> Option<String> {
    let rest = body.get(offset..)?;
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    wire_log(&rest[..end]).map(|log| log.message.into_owned())
}

#[pymodule]
fn logpipe_collector_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(plain_level, m)?)?;
    m.add_function(wrap_pyfunction!(wire_message, m)?)?;
    m.add_class::<Batch>()?;
    // What this build does that older ones did not (collector/native.py, `current`).
    m.add(
        "FEATURES",
        ("max_line_bytes", "long_keys", "wire_message", "nul_keys"),
    )?;
    Ok(())
}
