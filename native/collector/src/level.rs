//! collector.parse.level.detect_level for ASCII text (without 0x1c-0x1f, which Python's
//! `\s` takes and the shapes below do not expect): each regex of level.py read the way
//! sre reads it, possessive and atomic parts included. Other text bails.

use crate::parse::{Bail, Res, DEBUG, ERROR, FATAL, INFO, TRACE, WARN};

const WINDOW: usize = 80;
const SYSLOG: [&str; 8] = [FATAL, FATAL, FATAL, ERROR, WARN, INFO, INFO, DEBUG];
const STARTS: [(&str, &str); 6] = [
    ("Traceback (most recent call last):", ERROR),
    ("Exception in thread ", ERROR),
    ("Caused by: ", ERROR),
    ("Unhandled exception. ", ERROR),
    ("You have triggered an unhandledRejection, ", ERROR),
    ("panic: ", FATAL),
];
const FACILITIES: [&str; 13] = [
    "kern", "user", "mail", "daemon", "authpriv", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "ftp", "local",
];
const SEVERITIES: [&str; 9] = [
    "emerg", "alert", "crit", "err", "warn", "warning", "notice", "info", "debug",
];
const MONTHS_DAYS: [&[u8; 3]; 18] = [
    b"Jan", b"Jun", b"Jul", b"Feb", b"Mar", b"May", b"Apr", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
    b"Mon", b"Tue", b"Thu", b"Wed", b"Fri", b"Sat",
];
/// The level words of _WORD (searched in the lower-cased window).
const WORDS: [&str; 18] = [
    "trace",
    "trce",
    "debug",
    "dbug",
    "info",
    "notice",
    "warn",
    "warning",
    "err",
    "error",
    "emerg",
    "emergency",
    "severe",
    "crit",
    "critical",
    "fatal",
    "fail",
    "panic",
];

/// Whether a level word of WORDS may start with `c` (a quick test before the list).
fn word_start(c: u8) -> bool {
    matches!(
        c.to_ascii_lowercase(),
        b't' | b'd' | b'i' | b'n' | b'w' | b'e' | b's' | b'c' | b'f' | b'p'
    )
}

/// _CAPITALS: capitalised level words that open a message as a level does.
const CAPITALS: [&str; 5] = ["Err", "Error", "Warn", "Warning", "Fatal"];

/// `\s` on this text.
fn ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `\w` on this text.
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn name(word: &str) -> Option<&'static str> {
    crate::parse::level_name(&word.to_ascii_lowercase())
}

/// A level name of more than one letter (_HEADER_WORDS), in any case.
fn header_word(w: &[u8]) -> Option<&'static str> {
    if w.len() < 2 {
        return None;
    }
    name(std::str::from_utf8(w).ok()?)
}

pub fn detect_level(text: &str) -> Res<Option<&'static str>> {
    let b = text.as_bytes();
    if b.iter().any(|&c| c >= 0x80 || (0x1c..=0x1f).contains(&c)) {
        return Err(Bail);
    }
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    if node_crash(b) {
        return Ok(Some(ERROR));
    }
    if first.is_ascii_alphabetic() {
        if let Some(level) = by_prefix(text) {
            return Ok(Some(level));
        }
    } else if first == b'<' {
        if b.len() >= 3 && (b'0'..=b'7').contains(&b[1]) && b[2] == b'>' {
            return Ok(Some(SYSLOG[(b[1] - b'0') as usize]));
        }
    } else if first.is_ascii_digit() {
        if let Some(letter) = logcat(b) {
            return Ok(name(&(letter as char).to_string()));
        }
        if let Some(level) = redis(b) {
            return Ok(Some(level));
        }
        if let Some(level) = jul(b) {
            return Ok(Some(level)); // a month in digits: `12 05, 2026 8:00:00 AM ...`
        }
    } else if ws(first) {
        return Ok(by_word(text));
    }
    Ok(by_header(b)
        .or_else(|| by_word(text))
        .or_else(|| node_error(b).then_some(ERROR)))
}

/// _NODE_ERROR: a Node.js error of any name (`Timeout: took too long`, `Timeout [E]: x`,
/// `Timeout`), its first frame (`    at f (...)`) within the 21 lines after its first.
fn node_error(b: &[u8]) -> bool {
    let Some(end) = memchr::memchr(b'\n', b) else {
        return false;
    };
    if !node_error_name(&b[..end]) {
        return false;
    }
    let mut rest = &b[end + 1..];
    for _ in 0..=20 {
        if rest.starts_with(b"    at ") && rest.get(7).is_some_and(|&c| !ws(c)) {
            return true;
        }
        match memchr::memchr(b'\n', rest) {
            Some(n) => rest = &rest[n + 1..],
            None => return false,
        }
    }
    false
}

/// `[A-Z][\w$]*(?: \[[\w$]+\])?(?:: .*|:)?` on the whole first line.
fn node_error_name(head: &[u8]) -> bool {
    let name = |c: &u8| word(*c) || *c == b'$';
    if !head.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let mut i = 1 + head[1..].iter().take_while(|c| name(c)).count();
    if head[i..].starts_with(b" [") {
        let code = head[i + 2..].iter().take_while(|c| name(c)).count();
        if code == 0 || head.get(i + 2 + code) != Some(&b']') {
            return false;
        }
        i += 3 + code;
    }
    let rest = &head[i..];
    rest.is_empty() || rest == b":" || rest.starts_with(b": ")
}

/// `[^\s:(]+\s*(?:\(\s*\d+\))?:` from `q`: whether it matches.
fn android_tag(b: &[u8], q: usize) -> bool {
    let mut r = q;
    while r < b.len() && !ws(b[r]) && b[r] != b':' && b[r] != b'(' {
        r += 1;
    }
    if r == q {
        return false;
    }
    while r < b.len() && ws(b[r]) {
        r += 1;
    }
    if b.get(r) == Some(&b'(') {
        let mut t = r + 1;
        while t < b.len() && ws(b[t]) {
            t += 1;
        }
        let digits = t;
        while t < b.len() && b[t].is_ascii_digit() {
            t += 1;
        }
        return t > digits && b.get(t) == Some(&b')') && b.get(t + 1) == Some(&b':');
    }
    b.get(r) == Some(&b':')
}

fn logcat_letter(b: u8) -> bool {
    matches!(b, b'V' | b'D' | b'I' | b'W' | b'E' | b'F' | b'A')
}

fn digits_at(b: &[u8], at: usize, n: usize) -> bool {
    b.len() >= at + n && b[at..at + n].iter().all(u8::is_ascii_digit)
}

/// _LOGCAT.match: the level letter of Android logcat's threadtime or time format.
fn logcat(b: &[u8]) -> Option<u8> {
    // (?:\d{4}-)? : only one way can go on (`dddd-` then `dd-` cannot both fit).
    let mut p = if digits_at(b, 0, 4) && b.get(4) == Some(&b'-') {
        5
    } else {
        0
    };
    // \d\d-\d\d \d\d:\d\d:\d\d\.\d+
    let shape: &[Option<u8>] = &[
        None,
        None,
        Some(b'-'),
        None,
        None,
        Some(b' '),
        None,
        None,
        Some(b':'),
        None,
        None,
        Some(b':'),
        None,
        None,
        Some(b'.'),
    ];
    for (i, want) in shape.iter().enumerate() {
        let c = *b.get(p + i)?;
        match want {
            None if !c.is_ascii_digit() => return None,
            Some(w) if c != *w => return None,
            _ => {}
        }
    }
    p += shape.len();
    let start = p;
    while p < b.len() && b[p].is_ascii_digit() {
        p += 1;
    }
    if p == start {
        return None;
    }
    if b.get(p) != Some(&b' ') {
        return None;
    }
    // ` +\d+ +\d+ ([VDIWEFA]) `
    let mut q = p;
    let mut threadtime = true;
    for _ in 0..2 {
        let spaces = q;
        while q < b.len() && b[q] == b' ' {
            q += 1;
        }
        let digits = q;
        while q < b.len() && b[q].is_ascii_digit() {
            q += 1;
        }
        if digits == spaces || q == digits {
            threadtime = false;
            break;
        }
    }
    if threadtime {
        if let Some(&letter) = b.get(q + 1) {
            if b[q] == b' ' && logcat_letter(letter) && b.get(q + 2) == Some(&b' ') {
                return Some(letter);
            }
        }
    }
    // ` ([VDIWEFA])/tag...:`
    let letter = *b.get(p + 1)?;
    (logcat_letter(letter) && b.get(p + 2) == Some(&b'/') && android_tag(b, p + 3))
        .then_some(letter)
}

/// _REDIS.match: Redis's level mark after its time (`1:M 05 Dec 2026 08:00:00.123 * `).
fn redis(b: &[u8]) -> Option<&'static str> {
    let mut p = 0;
    while p < b.len() && b[p].is_ascii_digit() {
        p += 1;
    }
    if p == 0 || b.get(p) != Some(&b':') || !matches!(b.get(p + 1), Some(b'X' | b'C' | b'S' | b'M'))
    {
        return None;
    }
    // ` \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3} ([.*#-]) `: d digit, A upper, a lower.
    let shape = b" dd Aaa dddd dd:dd:dd.ddd m ";
    let rest = b.get(p + 2..p + 2 + shape.len())?;
    let fits = shape.iter().zip(rest).all(|(&want, &c)| match want {
        b'd' => c.is_ascii_digit(),
        b'A' => c.is_ascii_uppercase(),
        b'a' => c.is_ascii_lowercase(),
        b'm' => matches!(c, b'.' | b'*' | b'#' | b'-'),
        _ => c == want,
    });
    if !fits {
        return None;
    }
    Some(match rest[shape.len() - 2] {
        b'*' => INFO,
        b'#' => WARN,
        _ => DEBUG,
    })
}

/// _RUST_PANIC.match: `thread '<name>' panicked at `.
fn rust_panic(b: &[u8]) -> bool {
    let Some(rest) = b.strip_prefix(b"thread '") else {
        return false;
    };
    match memchr::memchr(b'\'', rest) {
        Some(at) => rest[at..].starts_with(b"' panicked at "),
        None => false,
    }
}

/// _EXCEPTION.match: a dotted name ending in `...Error` or `...Exception`, perhaps
/// with Node's code of the error (` [ERR_X]`), then `:` or the end of the line.
fn exception(b: &[u8]) -> bool {
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b'$';
    let mut p = 0;
    loop {
        if !b.get(p).is_some_and(|&c| ident_start(c)) {
            return false;
        }
        let start = p;
        p += 1;
        while p < b.len() && (word(b[p]) || b[p] == b'$') {
            p += 1;
        }
        let ident = &b[start..p];
        let named = (ident.len() > 5 && ident.ends_with(b"Error"))
            || (ident.len() > 9 && ident.ends_with(b"Exception"));
        match b.get(p) {
            Some(b'.') => p += 1,
            None | Some(b':') => return named,
            Some(b' ') => return named && error_code(&b[p..]),
            Some(_) => return false,
        }
    }
}

/// `(?: \[[\w$]+\])?(?::|\Z)` of _EXCEPTION where a space follows the name: Node's
/// ` [ERR_X]`, then `:` or the end of the line.
fn error_code(b: &[u8]) -> bool {
    let Some(code) = b.strip_prefix(b" [") else {
        return false;
    };
    let n = code.iter().take_while(|&&c| word(c) || c == b'$').count();
    n > 0 && code.get(n) == Some(&b']') && matches!(code.get(n + 1), None | Some(b':'))
}

/// _NODE_CRASH.match: Node's report of an uncaught exception joined: a first line without
/// spaces or control characters ending in `:` and digits (`/app/index.js:3`), any second
/// line, then a caret line (`    ^`).
fn node_crash(b: &[u8]) -> bool {
    let Some(end) = memchr::memchr(b'\n', b) else {
        return false;
    };
    let head = &b[..end];
    if !head.last().is_some_and(u8::is_ascii_digit) || head.iter().any(|&c| c <= b' ') {
        return false;
    }
    let digits = head.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    match head.len().checked_sub(digits + 1) {
        Some(colon) if colon > 0 && head[colon] == b':' => {}
        _ => return false,
    }
    let rest = &b[end + 1..];
    let Some(second) = memchr::memchr(b'\n', rest) else {
        return false;
    };
    let third = &rest[second + 1..];
    let caret = &third[..memchr::memchr(b'\n', third).unwrap_or(third.len())];
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let lead = caret.iter().take_while(|c| blank(c)).count();
    let carets = caret[lead..].iter().take_while(|&&c| c == b'^').count();
    carets > 0 && caret[lead + carets..].iter().all(blank)
}

/// `\d\d?` then `end` at `p`: where the text goes on after `end`.
fn one_or_two_digits(b: &[u8], p: usize, end: u8) -> Option<usize> {
    let mut q = p;
    while q < b.len() && q < p + 3 && b[q].is_ascii_digit() {
        q += 1;
    }
    ((1..=2).contains(&(q - p)) && b.get(q) == Some(&end)).then_some(q + 1)
}

/// java.util.logging's level names the JDK prints in ASCII (collector/jul.py's NAMES; the
/// others never meet ASCII text), and their levels (level._JUL_NAMES).
const JUL_NAMES: [(&[u8], &str); 36] = [
    (b"SEVERE", ERROR),
    (b"WARNING", WARN),
    (b"INFO", INFO),
    (b"CONFIG", INFO),
    (b"FINE", DEBUG),
    (b"FINER", TRACE),
    (b"FINEST", TRACE),
    (b"SCHWERWIEGEND", ERROR),
    (b"WARNUNG", WARN),
    (b"INFORMATION", INFO),
    (b"KONFIGURATION", INFO),
    (b"FEIN", DEBUG),
    (b"FEINER", TRACE),
    (b"AM FEINSTEN", TRACE),
    (b"GRAVE", ERROR),
    (b"ADVERTENCIA", WARN),
    (b"CONFIGURAR", INFO),
    (b"DETALLADO", DEBUG),
    (b"MUY DETALLADO", TRACE),
    (b"AVERTISSEMENT", WARN),
    (b"INFOS", INFO),
    (b"AVVERTENZA", WARN),
    (b"INFORMAZIONI", INFO),
    (b"CONFIGURAZIONE", INFO),
    (b"BUONO", DEBUG),
    (b"MIGLIORE", TRACE),
    (b"OTTIMALE", TRACE),
    (b"DETALHADO", DEBUG),
    (b"MAIS DETALHADO", TRACE),
    (b"O MAIS DETALHADO", TRACE),
    (b"ALLVARLIG", ERROR),
    (b"VARNING", WARN),
    (b"KONFIG", INFO),
    (b"FIN", DEBUG),
    (b"FINARE", TRACE),
    (b"FINASTE", TRACE),
];

/// `[^\s,]{1,8} ` at `p` (a word of the month): where the text goes on after the space.
fn jul_word(b: &[u8], p: usize) -> Option<usize> {
    let mut q = p;
    while q < b.len() && q < p + 9 && !ws(b[q]) && b[q] != b',' {
        q += 1;
    }
    ((1..=8).contains(&(q - p)) && b.get(q) == Some(&b' ')).then_some(q + 1)
}

/// level._JUL.match: java.util.logging's two lines joined (`Dec 05, 2026 8:00:00 AM
/// com.acme.Foo bar`, a newline, `SEVERE: message`), the month in one word or two
/// (`de des.`, `thg 12`): the second line's level.
fn jul(b: &[u8]) -> Option<&'static str> {
    let first = jul_word(b, 0)?;
    // `(?:[^\s,]{1,8} )?[^\s,]{1,8} `: either way, the second line says the level.
    jul_date(b, first).or_else(|| jul_date(b, jul_word(b, first)?))
}

/// ` \d\d?, \d{4} \d\d?:\d\d:\d\d \S[^\n]*\n(NAME): ` from `p`, the day: the level.
fn jul_date(b: &[u8], p: usize) -> Option<&'static str> {
    let p = one_or_two_digits(b, p, b',')?;
    if b.get(p) != Some(&b' ') || !digits_at(b, p + 1, 4) || b.get(p + 5) != Some(&b' ') {
        return None;
    }
    let p = one_or_two_digits(b, p + 6, b':')?;
    let clock = digits_at(b, p, 2)
        && b.get(p + 2) == Some(&b':')
        && digits_at(b, p + 3, 2)
        && b.get(p + 5) == Some(&b' ')
        && b.get(p + 6).is_some_and(|&c| !ws(c)); // the AM/PM marker
    if !clock {
        return None;
    }
    let second = &b[p + 6 + memchr::memchr(b'\n', &b[p + 6..])? + 1..];
    JUL_NAMES
        .iter()
        .find(|(word, _)| second.starts_with(word) && second[word.len()..].starts_with(b": "))
        .map(|(_, level)| *level)
}

/// level._NAME_LEVEL.match: a logger's `name:level` opening the line (`prisma:warn`).
fn name_level(b: &[u8]) -> Option<&'static str> {
    let mut p = 1;
    while p < b.len()
        && p < 40
        && (b[p].is_ascii_lowercase() || b[p].is_ascii_digit() || b[p] == b'_' || b[p] == b'-')
    {
        p += 1;
    }
    if b.get(p) != Some(&b':') {
        return None;
    }
    let rest = &b[p + 1..];
    let end = rest.iter().position(|&c| ws(c)).unwrap_or(rest.len());
    match &rest[..end] {
        b"trace" => Some(TRACE),
        b"debug" => Some(DEBUG),
        b"info" => Some(INFO),
        b"warn" | b"warning" => Some(WARN),
        b"error" => Some(ERROR),
        b"fatal" => Some(FATAL),
        _ => None,
    }
}

/// level._by_prefix
fn by_prefix(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    let first = b[0];
    let mut letter = None;
    if b.get(1) == Some(&b'/') {
        if logcat_letter(first) && android_tag(b, 2) {
            letter = Some(first);
        }
    } else if matches!(first, b'I' | b'W' | b'E' | b'F')
        && b.len() > 1
        && b[1..b.len().min(5)].iter().all(u8::is_ascii_digit)
    {
        // ([IWEF])(?:\d\d)?\d{4} \d\d:\d\d:\d\d: four digits, or six (CockroachDB's)
        let glog = |d: usize| {
            digits_at(b, 1, d)
                && b.get(d + 1) == Some(&b' ')
                && digits_at(b, d + 2, 2)
                && b.get(d + 4) == Some(&b':')
                && digits_at(b, d + 5, 2)
                && b.get(d + 7) == Some(&b':')
                && digits_at(b, d + 8, 2)
        };
        if glog(6) || glog(4) {
            letter = Some(first);
        }
    } else if let Some(level) = jul(b) {
        return Some(level);
    }
    if let Some(letter) = letter {
        return name(&(letter as char).to_string());
    }
    if first.is_ascii_lowercase() {
        if let Some(level) = name_level(b) {
            return Some(level);
        }
    }
    for (prefix, level) in STARTS {
        if text.starts_with(prefix) {
            return Some(level);
        }
    }
    if rust_panic(b) {
        return Some(FATAL);
    }
    if (text.contains("Error") || text.contains("Exception")) && exception(b) {
        return Some(ERROR);
    }
    None
}

/// _HEADER_LEVEL at `p` (the token up to the next space): the level it names.
fn header_level(b: &[u8], p: usize) -> Option<&'static str> {
    let mut t = p;
    while t < b.len() && !ws(b[t]) {
        t += 1;
    }
    let token = &b[p..t];
    let first = *token.first()?;
    if first == b'[' {
        if let Some(level) = thread_level(b, p) {
            return Some(level);
        }
        if token == b"[System]" {
            return Some(INFO); // MySQL 8's `[System]`, between `[Note]` and `[Warning]`
        }
    }
    let colon = token.ends_with(b":");
    let bare = token.strip_suffix(b":").unwrap_or(token);
    if matches!(first, b'[' | b'<' | b'(') {
        let (&close, inner) = bare[1..].split_last()?;
        if !matches!(close, b']' | b'>' | b')') {
            return None;
        }
        return header_word(inner);
    }
    // An upper-case level word: exactly the word's upper case.
    if first.is_ascii_uppercase() && !bare.iter().any(u8::is_ascii_lowercase) {
        if let Some(level) = header_word(bare) {
            return Some(level);
        }
    }
    // A level word in lower case, in any case before a colon, or one of _CAPITALS.
    if (3..=9).contains(&bare.len()) && word_start(bare[0]) {
        if let Some(word) = WORDS
            .iter()
            .find(|w| w.as_bytes().eq_ignore_ascii_case(bare))
        {
            if bare == word.as_bytes() || colon || CAPITALS.iter().any(|c| c.as_bytes() == bare) {
                return crate::parse::level_name(word);
            }
        }
    }
    let text = std::str::from_utf8(token).ok()?;
    let (facility, severity) = text.split_once('.')?;
    let known = FACILITIES.iter().any(|f| {
        if *f == "local" {
            facility.len() == 6
                && facility.starts_with("local")
                && (b'0'..=b'7').contains(&facility.as_bytes()[5])
        } else {
            facility == *f
        }
    });
    if known && SEVERITIES.contains(&severity) {
        return name(severity);
    }
    None
}

/// `\[[^\]\n/]{1,200}/(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\]:?(?=\s|\Z)` at `p` (a `[`):
/// log4j's thread and level in one bracket (`[main/INFO]`, `[Server thread/WARN]:`).
fn thread_level(b: &[u8], p: usize) -> Option<&'static str> {
    let mut q = p + 1;
    while q < b.len() && q - (p + 1) < 200 && !matches!(b[q], b']' | b'\n' | b'/') {
        q += 1;
    }
    if q == p + 1 || b.get(q) != Some(&b'/') {
        return None;
    }
    let close = q + 1 + memchr::memchr(b']', &b[q + 1..])?;
    let level = match &b[q + 1..close] {
        b"TRACE" => TRACE,
        b"DEBUG" => DEBUG,
        b"INFO" => INFO,
        b"WARN" => WARN,
        b"ERROR" => ERROR,
        b"FATAL" => FATAL,
        _ => return None,
    };
    let mut e = close + 1;
    if b.get(e) == Some(&b':') {
        e += 1;
    }
    (e == b.len() || ws(b[e])).then_some(level)
}

/// `[ \t]++` at `e`: where the spaces end, if there is one.
fn spaces(b: &[u8], e: usize) -> Option<usize> {
    let mut q = e;
    while q < b.len() && (b[q] == b' ' || b[q] == b'\t') {
        q += 1;
    }
    (q > e).then_some(q)
}

fn punct(c: u8) -> bool {
    matches!(
        c,
        b'.' | b'-' | b'_' | b':' | b'/' | b'@' | b'$' | b'=' | b'#'
    )
}

/// `{_FACILITY}\.` at `f`.
fn facility_dot(b: &[u8], f: usize) -> bool {
    let rest = &b[f.min(b.len())..];
    FACILITIES.iter().any(|fac| {
        if *fac == "local" {
            rest.len() >= 7
                && rest.starts_with(b"local")
                && (b'0'..=b'7').contains(&rest[5])
                && rest[6] == b'.'
        } else {
            rest.len() > fac.len() && rest.starts_with(fac.as_bytes()) && rest[fac.len()] == b'.'
        }
    })
}

/// One (atomic) _HEADER_FIELD at `p`: where the next token starts, if one fits.
fn header_field(b: &[u8], p: usize) -> Option<usize> {
    let n = b.len();
    if p >= n {
        return None;
    }
    // \[[^\]\n]{0,200}+\]\S*+
    if b[p] == b'[' {
        let mut q = p + 1;
        while q < n && q - (p + 1) < 200 && b[q] != b']' && b[q] != b'\n' {
            q += 1;
        }
        if q < n && b[q] == b']' {
            q += 1;
            while q < n && !ws(b[q]) {
                q += 1;
            }
            if let Some(next) = spaces(b, q) {
                return Some(next);
            }
        }
    }
    // (?=[^\s\d{_PUNCT}]*+(?:\d|[{_PUNCT}]\S))\S++
    let mut q = p;
    while q < n && !ws(b[q]) && !b[q].is_ascii_digit() && !punct(b[q]) {
        q += 1;
    }
    let ahead = q < n && (b[q].is_ascii_digit() || (punct(b[q]) && q + 1 < n && !ws(b[q + 1])));
    if ahead {
        let mut e = p;
        while e < n && !ws(b[e]) {
            e += 1;
        }
        if let Some(next) = spaces(b, e) {
            return Some(next);
        }
    }
    // [A-Z][A-Z\d_]*+:?
    if b[p].is_ascii_uppercase() {
        let mut e = p + 1;
        while e < n && (b[e].is_ascii_uppercase() || b[e].is_ascii_digit() || b[e] == b'_') {
            e += 1;
        }
        let after = if b.get(e) == Some(&b':') { e + 1 } else { e };
        if let Some(next) = spaces(b, after) {
            return Some(next);
        }
    }
    // Month and day names.
    if n >= p + 3
        && MONTHS_DAYS
            .iter()
            .chain([&b"Sun"])
            .any(|m| &b[p..p + 3] == *m)
    {
        if let Some(next) = spaces(b, p + 3) {
            return Some(next);
        }
    }
    // [^\w\s]++
    let mut e = p;
    while e < n && !word(b[e]) && !ws(b[e]) {
        e += 1;
    }
    if e > p {
        if let Some(next) = spaces(b, e) {
            return Some(next);
        }
    }
    // [a-z][\w-]*+(?=[ \t]++{_FACILITY}\.)
    if b[p].is_ascii_lowercase() {
        let mut e = p + 1;
        while e < n && (word(b[e]) || b[e] == b'-') {
            e += 1;
        }
        if let Some(f) = spaces(b, e) {
            if facility_dot(b, f) {
                return Some(f);
            }
        }
    }
    // npm's own tag.
    if b[p..].starts_with(b"npm") {
        if let Some(next) = spaces(b, p + 3) {
            return Some(next);
        }
    }
    None
}

/// level._by_header
fn by_header(b: &[u8]) -> Option<&'static str> {
    let mut p = 0;
    loop {
        if let Some(level) = header_level(b, p) {
            return Some(level);
        }
        p = header_field(b, p)?;
    }
}

/// level._by_word
fn by_word(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    let window = &b[..b.len().min(WINDOW)];
    if window.contains(&b'[') || window.contains(&b'<') {
        for i in 0..window.len().saturating_sub(2) {
            let letter = window[i + 1];
            if matches!(window[i], b'<' | b'[')
                && matches!(letter, b'T' | b'D' | b'I' | b'W' | b'E' | b'F')
                && matches!(window[i + 2], b'>' | b']')
            {
                return name(&(letter as char).to_string());
            }
        }
    }
    let lower = window.to_ascii_lowercase();
    let n = lower.len();
    let mut i = 0;
    while i < n {
        if !word(lower[i]) || (i > 0 && word(lower[i - 1])) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < n && word(lower[j]) {
            j += 1;
        }
        let run = std::str::from_utf8(&lower[i..j]).unwrap_or("");
        let next = lower.get(j).copied();
        let followed = match next {
            Some(b'=') | Some(b'-') => true,
            Some(b'.') => lower.get(j + 1).is_some_and(|&c| word(c)),
            _ => false,
        };
        if (3..=9).contains(&run.len()) && word_start(lower[i]) && WORDS.contains(&run) && !followed
        {
            // Monolog's `channel.LEVEL:` is a level, other dotted names and paths are not.
            let channel = i > 0
                && lower[i - 1] == b'.'
                && b.get(j) == Some(&b':')
                && b[i..j].iter().all(u8::is_ascii_uppercase);
            if i > 0 && matches!(lower[i - 1], b'.' | b'/' | b'\\' | b'-') && !channel {
                i = j;
                continue;
            }
            if j == n && n < b.len() {
                let c = b[j];
                if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'=' | b'-' | b'.') {
                    return None;
                }
            }
            if marked(b, i, j) {
                return crate::parse::level_name(run);
            }
        }
        i = j;
    }
    None
}

/// level._marked: the level word at `b[start..end]` is marked as a logger marks a level.
fn marked(b: &[u8], start: usize, end: usize) -> bool {
    if b[start..end].iter().all(u8::is_ascii_uppercase) {
        return true;
    }
    let after = &b[end..b.len().min(end + 2)];
    let before = &b[start.saturating_sub(2)..start];
    if after.first() == Some(&b':') {
        return after != b"::";
    }
    if after.first() == Some(&b'|')
        || after == b" |"
        || before.last() == Some(&b'|')
        || before == b"| "
    {
        return true;
    }
    // In brackets, perhaps padded: structlog's `[info     ]`, Logstash's `[INFO ]`.
    if matches!(before.last(), Some(b'[' | b'<' | b'(')) {
        let stop = b.len().min(end + 12);
        let mut k = end;
        while k < stop && b[k] == b' ' {
            k += 1;
        }
        if k < stop && matches!(b[k], b']' | b'>' | b')') {
            return true;
        }
    }
    level_key(&b[start.saturating_sub(12)..start])
}

/// level._LEVEL_KEY: `s` ends with a level key and its separator (`level=`, `lvl: "`).
fn level_key(s: &[u8]) -> bool {
    let mut k = s.len();
    if k > 0 && s[k - 1] == b'"' {
        k -= 1;
    }
    if k > 0 && s[k - 1] == b' ' {
        k -= 1;
    }
    if k == 0 || !matches!(s[k - 1], b'=' | b':') {
        return false;
    }
    k -= 1;
    if k > 0 && s[k - 1] == b'"' {
        k -= 1;
    }
    let key = &s[..k];
    [&b"level"[..], b"lvl", b"severity"]
        .iter()
        .any(|end| key.len() >= end.len() && key[key.len() - end.len()..].eq_ignore_ascii_case(end))
}
