//! The parsers of collector/parse/ for the line shapes they share with this module:
//! each gives exactly what the Python parser gives, or `Bail` when a line needs
//! something only the Python side does (the line then goes through it whole).

use serde_json::{Map, Value};

pub type Fields = Map<String, Value>;

/// A line this module leaves to the Python parsers.
pub struct Bail;

pub type Res<T> = Result<T, Bail>;

#[derive(Default)]
pub struct Http {
    pub method: Option<String>,
    pub url: Option<String>,
    pub path: Option<String>,
    pub version: Option<String>,
    pub status_code: Option<u64>,
    pub body_bytes: Option<u64>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub duration_ns: Option<u64>,
}

pub struct Parsed {
    /// None: the message is the line itself.
    pub message: Option<String>,
    pub parser: &'static str,
    pub level: Option<&'static str>,
    pub logger: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub attributes: Option<Fields>,
    pub http: Option<Http>,
    pub flags: Vec<&'static str>,
}

impl Parsed {
    pub fn new(parser: &'static str) -> Self {
        Parsed {
            message: None,
            parser,
            level: None,
            logger: None,
            trace_id: None,
            span_id: None,
            attributes: None,
            http: None,
            flags: Vec::new(),
        }
    }
}

pub const TRACE: &str = "trace";
pub const DEBUG: &str = "debug";
pub const INFO: &str = "info";
pub const WARN: &str = "warn";
pub const ERROR: &str = "error";
pub const FATAL: &str = "fatal";

/// collector.parse.level._NAMES
pub fn level_name(word: &str) -> Option<&'static str> {
    Some(match word {
        "trace" | "trc" | "trce" | "verbose" | "finer" | "finest" | "v" | "t" => TRACE,
        "trace1" | "trace2" | "trace3" | "trace4" | "trace5" | "trace6" | "trace7" | "trace8" => {
            TRACE
        }
        "debug" | "dbg" | "dbug" | "fine" | "d" => DEBUG,
        "debug1" | "debug2" | "debug3" | "debug4" | "debug5" => DEBUG,
        "info" | "inf" | "information" | "informational" | "notice" | "i" => INFO,
        "log" | "note" => INFO,
        "warn" | "warning" | "wrn" | "w" => WARN,
        "error" | "err" | "eror" | "severe" | "fail" | "e" => ERROR,
        "fatal" | "ftl" | "critical" | "crit" | "panic" | "dpanic" | "emerg" | "emergency" => FATAL,
        "alert" | "f" | "a" => FATAL,
        _ => return None,
    })
}

/// What Python's str.isspace() and str.strip() take for whitespace.
pub fn py_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\x0b'
            | '\x0c'
            | '\r'
            | '\x1c'..='\x1f'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// collector.parse.level.normalise_level
pub fn normalise_level(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(s) => {
            let word = s.trim_matches(py_space);
            if !word.is_ascii() {
                // No non-ASCII text lower-cases to a level name (Kelvin's K gives `k`).
                return None;
            }
            level_name(&word.to_ascii_lowercase())
        }
        Value::Number(n) => match crate::json::number(n.as_str()) {
            Some(crate::json::Num::Int(v)) => match v {
                10 => Some(TRACE),
                20 => Some(DEBUG),
                30 => Some(INFO),
                40 => Some(WARN),
                50 => Some(ERROR),
                60 => Some(FATAL),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

const ROLES: [&[&str]; 5] = [
    &[
        "msg",
        "message",
        "@message",
        "log",
        "event",
        "short_message",
        "Message",
        "@m",
        "@mt",
    ],
    &[
        "level",
        "lvl",
        "severity",
        "log.level",
        "levelname",
        "level_name",
        "loglevel",
        "LogLevel",
        "@l",
        "at",
    ],
    &[
        "logger",
        "logger_name",
        "loggerName",
        "log.logger",
        "name",
        "Category",
        "SourceContext",
    ],
    &[
        "trace_id",
        "traceId",
        "trace.id",
        "traceid",
        "dd.trace_id",
        "otelTraceID",
    ],
    &[
        "span_id",
        "spanId",
        "span.id",
        "spanid",
        "dd.span_id",
        "otelSpanID",
    ],
];

/// collector.parse.structured.RECORD_KEYS
fn record_key(key: &str) -> bool {
    ROLES[0].contains(&key) || ROLES[1].contains(&key) || matches!(key, "ts" | "time" | "timestamp")
}

fn identifier(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => match crate::json::number(n.as_str()) {
            Some(crate::json::Num::Int(v)) => Some(v.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// collector.parse.structured.structured
pub fn structured(mut fields: Fields, parser: &'static str) -> Res<Parsed> {
    let mut parsed = Parsed::new(parser);
    let mut taken: [Option<&'static str>; 5] = [None; 5];
    for (role, keys) in ROLES.iter().enumerate() {
        for key in keys.iter() {
            let Some(value) = fields.get(*key) else {
                continue;
            };
            let fits = match role {
                0 => {
                    parsed.message = value.as_str().map(str::to_owned);
                    parsed.message.is_some()
                }
                1 => {
                    parsed.level = normalise_level(value);
                    parsed.level.is_some()
                }
                2 => {
                    parsed.logger = value.as_str().map(str::to_owned);
                    parsed.logger.is_some()
                }
                3 => {
                    parsed.trace_id = identifier(value);
                    parsed.trace_id.is_some()
                }
                _ => {
                    parsed.span_id = identifier(value);
                    parsed.span_id.is_some()
                }
            };
            if fits {
                taken[role] = Some(key);
                break;
            }
        }
    }
    for key in taken.iter().flatten() {
        fields.shift_remove(*key);
    }
    {
        if taken[0].is_some()
            && parsed
                .message
                .as_deref()
                .is_some_and(|m| m.contains('\x1b'))
        {
            return Err(Bail); // colour codes in a JSON string: strip_ansi's job
        }
        if let Some(Value::Object(log)) = fields.get_mut("log") {
            if parsed.level.is_none() {
                if let Some(level) = log.get("level") {
                    parsed.level = normalise_level(level);
                    if parsed.level.is_some() {
                        log.shift_remove("level");
                    }
                }
            }
            if parsed.logger.is_none() {
                if let Some(Value::String(logger)) = log.get("logger") {
                    parsed.logger = Some(logger.clone());
                    log.shift_remove("logger");
                }
            }
            if log.is_empty() {
                fields.shift_remove("log");
            }
        }
    }
    // collector.parse.structured._take_mongodb_severity
    if parsed.level.is_none() && fields.contains_key("ctx") && fields.contains_key("c") {
        let level = match fields.get("s") {
            Some(Value::String(s)) => match s.as_str() {
                "F" => Some(FATAL),
                "E" => Some(ERROR),
                "W" => Some(WARN),
                "I" => Some(INFO),
                "D" | "D1" | "D2" | "D3" | "D4" | "D5" => Some(DEBUG),
                _ => None,
            },
            _ => None,
        };
        if level.is_some() {
            parsed.level = level;
            fields.shift_remove("s");
        }
    }
    if !fields.is_empty() {
        parsed.attributes = Some(fields);
    }
    Ok(parsed)
}

/// collector.parse.jsonline.parse_json for a line that is a JSON object orjson reads
/// the same way; anything else (not an object, not JSON, numbers orjson refuses) bails.
pub fn parse_json(text: &str) -> Res<Parsed> {
    if text.contains("$serde_json::private") {
        return Err(Bail); // serde_json's own marker key would read as a number
    }
    let value: Value = serde_json::from_str(text).map_err(|_| Bail)?;
    let Value::Object(fields) = value else {
        return Err(Bail);
    };
    if !fields.values().all(crate::json::numbers_ok) {
        return Err(Bail);
    }
    structured(fields, "json")
}

fn split_ws(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_space).filter(|w| !w.is_empty())
}

/// collector.parse.logfmt.split_by_quotes: (fields, pairs, bare) or None (not logfmt).
fn split_by_quotes(line: &str) -> Option<(Fields, i64, i64)> {
    let parts: Vec<&str> = line.split('"').collect();
    let last = parts.len() - 1;
    if last % 2 == 1 {
        return None;
    }
    let mut fields = Fields::new();
    let (mut pairs, mut bare) = (0i64, 0i64);
    let mut i = 0;
    while i <= last {
        let mut words: Vec<&str> = split_ws(parts[i]).collect();
        let mut quoted_key = None;
        if i < last {
            let after = parts[i + 2];
            let closed = after.chars().next().is_some_and(py_space)
                || (after.is_empty() && i + 2 == parts.len() - 1);
            if !closed || !parts[i].ends_with('=') {
                return None;
            }
            let word = words.pop()?;
            let key = &word[..word.len() - 1];
            if key.is_empty() || key.contains('=') {
                return None;
            }
            quoted_key = Some(key);
        }
        pairs += words.len() as i64;
        for word in words {
            let (key, value) = match word.find('=') {
                Some(at) => (&word[..at], Some(&word[at + 1..])),
                None => (word, None),
            };
            if key.is_empty() {
                return None;
            }
            match value {
                Some(v) => {
                    fields.insert(key.to_owned(), Value::String(v.to_owned()));
                }
                None => {
                    fields.insert(key.to_owned(), Value::Bool(true));
                    pairs -= 1;
                    bare += 1;
                }
            }
        }
        if let Some(key) = quoted_key {
            fields.insert(key.to_owned(), Value::String(parts[i + 1].to_owned()));
            pairs += 1;
        }
        i += 2;
    }
    Some((fields, pairs, bare))
}

/// collector.parse.logfmt.parse_logfmt for lines without backslashes (others bail).
pub fn parse_logfmt(line: &str, strict: bool) -> Res<Option<Parsed>> {
    if strict {
        let end = line.find(' ').unwrap_or(line.len());
        match line.find('=') {
            Some(eq) if 0 < eq && eq < end => {}
            _ => return Ok(None),
        }
    }
    if line.contains('\\') {
        return Err(Bail);
    }
    let Some((fields, pairs, bare)) = split_by_quotes(line) else {
        return Ok(None);
    };
    if pairs == 0 {
        return Ok(None);
    }
    if strict && !(pairs >= 2 && (pairs > bare || fields.keys().any(|k| record_key(k)))) {
        return Ok(None);
    }
    structured(fields, "logfmt").map(Some)
}

/// collector.parse.access: a quoted value as servers write it, up to its closing quote
/// (the QUOTED pattern): the index of that quote in `s`, which starts after the opening one.
fn quoted_end(s: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i),
            b'\\' => {
                if i + 1 >= s.len() {
                    return None;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

fn is_ws(b: u8) -> bool {
    // Python's \s on the ASCII text this module parses (0x1c-0x1f never reach here).
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A run of non-space characters then one space, from `i`: (token, index after the space).
fn token(s: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    while j < s.len() && !is_ws(s[j]) {
        j += 1;
    }
    if j == i || j >= s.len() || s[j] != b' ' {
        return None;
    }
    Some((j, j + 1))
}

fn octet(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        1 => b[0].is_ascii_digit(),
        2 => (b'1'..=b'9').contains(&b[0]) && b[1].is_ascii_digit(),
        3 => {
            b.iter().all(u8::is_ascii_digit)
                && (b[0] == b'1'
                    || (b[0] == b'2' && (b[1] < b'5' || (b[1] == b'5' && b[2] <= b'5'))))
        }
        _ => false,
    }
}

/// collector.parse.http.client_ip for addresses without a colon (IPv6 bails).
fn client_ip(text: &str) -> Res<Option<String>> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| octet(p)) {
        return Ok(Some(text.to_owned()));
    }
    if text.contains('%') {
        return Ok(None);
    }
    if text.contains(':') {
        return Err(Bail);
    }
    Ok(None) // ipaddress takes no other IPv4 form
}

fn url_path(url: &str) -> Option<String> {
    if url.starts_with('/') {
        return Some(url.split('?').next().unwrap_or("").to_owned());
    }
    let at = url.find("://")?;
    let scheme = &url[..at];
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let rest = &url[at + 3..];
    match rest.find('/') {
        None => Some("/".to_owned()),
        Some(slash) => Some(rest[slash..].split('?').next().unwrap_or("").to_owned()),
    }
}

/// collector.parse.http.parse_request
fn parse_request(http: &mut Http, request: &str) {
    let parts: Vec<&str> = request.split(' ').collect();
    if parts.len() == 3 && parts[2].starts_with("HTTP/") {
        let version = &parts[2][5..];
        http.version = if version.is_empty() {
            None
        } else {
            Some(version.to_owned())
        };
    } else if parts.len() != 2 {
        return;
    }
    let (method, url) = (parts[0], parts[1]);
    let upper = method.is_ascii()
        && method.bytes().any(|b| b.is_ascii_uppercase())
        && !method.bytes().any(|b| b.is_ascii_lowercase());
    if !upper || url.is_empty() {
        return;
    }
    http.method = Some(method.to_owned());
    http.url = Some(url.to_owned());
    http.path = url_path(url);
}

/// collector.parse.access._extras: what nginx's formats append (a quoted forwarded-for
/// address, a request time); true if something nginx-only was there.
fn extras(http: &mut Http, attributes: &mut Fields, rest: &str) -> bool {
    let b = rest.as_bytes();
    let mut found = false;
    // \s+"(QUOTED)" at the start
    let mut i = 0;
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    if i > 0 && b.get(i) == Some(&b'"') {
        if let Some(end) = quoted_end(b, i + 1) {
            found = true;
            let value = &rest[i + 1..end];
            if value != "-" && !value.is_empty() {
                attributes.insert("forwarded_for".to_owned(), Value::String(value.to_owned()));
            }
        }
    }
    // (?<!\S)(?:rt=|request_time=)?(\d{1,9}\.\d{1,9})(?!\S): the first such token
    let digits = |t: &str| (1..=9).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit());
    for token in rest.split(|c: char| c.is_ascii() && is_ws(c as u8)) {
        let number = token
            .strip_prefix("rt=")
            .or_else(|| token.strip_prefix("request_time="))
            .unwrap_or(token);
        if let Some((whole, frac)) = number.split_once('.') {
            if digits(whole) && digits(frac) {
                let whole: u64 = whole.parse().unwrap_or(0);
                let frac: u64 = format!("{frac:0<9}").parse().unwrap_or(0);
                http.duration_ns = Some(whole * 1_000_000_000 + frac);
                return true;
            }
        }
    }
    found
}

fn dash_none(value: &str) -> Option<String> {
    if value == "-" || value.is_empty() {
        None
    } else {
        Some(value.to_owned())
    }
}

/// collector.parse.access._LOGGED: Python logging's `LEVEL:logger:` before the client
/// (`INFO:werkzeug:127.0.0.1`): the logger's name and the rest.
fn logged(client: &str) -> Option<(&str, &str)> {
    let rest = ["DEBUG:", "INFO:", "WARNING:", "ERROR:", "CRITICAL:"]
        .iter()
        .find_map(|level| client.strip_prefix(level))?;
    let (name, address) = rest.split_once(':')?;
    (!name.is_empty() && !address.is_empty()).then_some((name, address))
}

/// collector.parse.access.parse_access for lines that end after the user agent (what
/// nginx's and Apache's formats append beyond it bails). Ok(None): not an access line.
pub fn parse_access(line: &str, parser: Option<&'static str>) -> Res<Option<Parsed>> {
    let s = line.as_bytes();
    let Some((client_end, i)) = token(s, 0) else {
        return Ok(None);
    };
    let Some((_, i)) = token(s, i) else {
        return Ok(None);
    };
    let user_start = i;
    let Some((user_end, i)) = token(s, i) else {
        return Ok(None);
    };
    if s.get(i) != Some(&b'[') {
        return Ok(None);
    }
    let Some(close) = memchr::memchr(b']', &s[i + 1..]) else {
        return Ok(None);
    };
    let mut i = i + 1 + close + 1;
    if !s[i..].starts_with(b" \"") {
        return Ok(None);
    }
    let req_start = i + 2;
    let Some(req_end) = quoted_end(s, req_start) else {
        return Ok(None);
    };
    i = req_end + 1;
    if !(s.len() >= i + 5
        && s[i] == b' '
        && s[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        && s[i + 4] == b' ')
    {
        return Ok(None);
    }
    let status: u64 = line[i + 1..i + 4].parse().map_err(|_| Bail)?;
    i += 5;
    let size_start = i;
    let body_bytes = if s.get(i) == Some(&b'-') {
        i += 1;
        None
    } else {
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - size_start;
        if n == 0 || n > 18 {
            return Ok(None);
        }
        Some(line[size_start..i].parse::<u64>().map_err(|_| Bail)?)
    };
    if i < s.len() && !is_ws(s[i]) {
        return Ok(None);
    }
    let size_dash = body_bytes.is_none();
    // (?: "(referrer)" "(agent)")?
    let mut quoted = None;
    if s[i..].starts_with(b" \"") {
        if let Some(ref_end) = quoted_end(s, i + 2) {
            let j = ref_end + 1;
            if s[j..].starts_with(b" \"") {
                if let Some(agent_end) = quoted_end(s, j + 2) {
                    quoted = Some(((i + 2, ref_end), (j + 2, agent_end)));
                }
            }
        }
    }
    let rest_start = match quoted {
        Some((_, (_, agent_end))) => agent_end + 1,
        None => i,
    };
    let mut http = Http {
        status_code: Some(status),
        body_bytes,
        ..Http::default()
    };
    parse_request(&mut http, &line[req_start..req_end]);
    if let Some(((rs, re), (a_s, ae))) = quoted {
        http.referrer = dash_none(&line[rs..re]);
        http.user_agent = dash_none(&line[a_s..ae]);
    }
    let client = &line[..client_end];
    let mut attributes = Fields::new();
    let mut logger = None;
    // A client with Python logging's prefix is no address itself (`INFO` is no hex).
    if let Some((name, address)) = logged(client) {
        http.client_ip = client_ip(address)?;
        logger = http.client_ip.as_ref().map(|_| name.to_owned());
    } else {
        http.client_ip = client_ip(client)?;
    }
    if http.client_ip.is_none() {
        attributes.insert("client".to_owned(), Value::String(client.to_owned()));
    }
    let user = &line[user_start..user_end];
    if user != "-" {
        attributes.insert("user".to_owned(), Value::String(user.to_owned()));
    }
    let rest = &line[rest_start..];
    let nginx_sign = !rest.is_empty() && extras(&mut http, &mut attributes, rest);
    let server = if logger.is_some() {
        "access"
    } else if size_dash || quoted.is_none() {
        "apache"
    } else if nginx_sign {
        "nginx"
    } else {
        "access"
    };
    let parser = parser.unwrap_or(server);
    let mut parsed = Parsed::new(parser);
    parsed.level = Some(if status < 400 {
        INFO
    } else if status >= 500 {
        ERROR
    } else {
        WARN
    });
    if !attributes.is_empty() {
        parsed.attributes = Some(attributes);
    }
    parsed.http = Some(http);
    parsed.logger = logger;
    Ok(Some(parsed))
}
