//! JSON output with orjson's exact bytes: its string escapes, Python's integers, and
//! its floats (shortest round-trip digits; fixed notation from 1e-5 to 1e16).

use serde_json::{Map, Value};

const HEX: &[u8; 16] = b"0123456789abcdef";

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether one of the eight bytes of `word` is below 0x20, a quote or a backslash.
fn needs_escape(word: u64) -> bool {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (control | zero(word ^ (ONES * b'"' as u64)) | zero(word ^ (ONES * b'\\' as u64))) != 0
}

/// `s` as a JSON string, escaped as orjson escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Eight bytes at a time while none needs an escape (most text).
    let mut clean = 0;
    while clean + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[clean..clean + 8].try_into().unwrap_or([0; 8]));
        if needs_escape(word) {
            break;
        }
        clean += 8;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A number of the parsed JSON text as Python holds it after orjson.loads.
pub enum Num {
    Int(i128),
    Float(f64),
}

/// What orjson.loads makes of a JSON number's text (serde_json keeps it as written):
/// an integer within 64 bits (signed or unsigned) stays one, any other number is a
/// float, and `-0` is the integer 0.
pub fn number(text: &str) -> Option<Num> {
    let integral = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integral {
        if let Ok(v) = text.parse::<i128>() {
            if v >= i64::MIN as i128 && v <= u64::MAX as i128 {
                return Some(Num::Int(v));
            }
        }
    }
    let f: f64 = text.parse().ok()?;
    if f.is_finite() {
        Some(Num::Float(f))
    } else {
        None // orjson refuses it (the line is then not JSON to it)
    }
}

/// A finite float as orjson writes it: the shortest digits that read back the same, in
/// fixed notation from 1e-5 up to 1e16 (`0.00001`, `1e16` is `1e+16`), else with an
/// exponent without zero padding (`1e-6`).
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    if f == 0.0 {
        out.extend_from_slice(if f.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(f.abs());
    // Digits and the exponent of the first digit (value = d.ddd * 10^exp).
    let (mantissa, exp_part) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, ""),
    };
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    digits.extend_from_slice(int_part.as_bytes());
    digits.extend_from_slice(frac_part.as_bytes());
    let mut point = int_part.len() as i32 + exp_part; // digits before the decimal point
    let lead = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..lead);
    point -= lead as i32;
    while digits.len() > 1 && *digits.last().unwrap() == b'0' {
        digits.pop();
    }
    let exp = point - 1;
    if f.is_sign_negative() {
        out.push(b'-');
    }
    let n = digits.len() as i32;
    if (-5..16).contains(&exp) {
        if exp >= n - 1 {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', (exp - (n - 1)) as usize));
            out.extend_from_slice(b".0");
        } else if exp >= 0 {
            out.extend_from_slice(&digits[..(exp + 1) as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[(exp + 1) as usize..]);
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(&digits);
        }
    } else {
        out.push(digits[0]);
        if n > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp >= 0 { b'+' } else { b'-' });
        out.extend_from_slice(itoa::Buffer::new().format(exp.abs()).as_bytes());
    }
}

/// A value as orjson.dumps(orjson.loads(text)) writes it; false if a number cannot be.
pub fn write_value(out: &mut Vec<u8>, value: &Value) -> bool {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match number(n.as_str()) {
            Some(Num::Int(v)) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
            Some(Num::Float(f)) => write_float(out, f),
            None => return false,
        },
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_value(out, item) {
                    return false;
                }
            }
            out.push(b']');
        }
        Value::Object(map) => return write_map(out, map),
    }
    true
}

/// An object as orjson writes a dict of the same items in the same order.
pub fn write_map(out: &mut Vec<u8>, map: &Map<String, Value>) -> bool {
    out.push(b'{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        if !write_value(out, item) {
            return false;
        }
    }
    out.push(b'}');
    true
}

/// Whether every number in `value` reads the way orjson reads it (finite).
pub fn numbers_ok(value: &Value) -> bool {
    match value {
        Value::Number(n) => number(n.as_str()).is_some(),
        Value::Array(items) => items.iter().all(numbers_ok),
        Value::Object(map) => map.values().all(numbers_ok),
        _ => true,
    }
}
