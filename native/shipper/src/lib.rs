//! The shipper's reading path, compiled: the bytes of one read of a Docker logs response
//! in, whole lines out (`Reader`), then those lines numbered among equal timestamps,
//! repeats dropped, as the shipper's records (`Sequencers`).
//!
//! It does exactly what the Python path does (shipper/demux.py, shipper/rejoin.py,
//! shipper/cursor.py `Sequencer`, shipper/follow/numbering.py), byte for byte; tests run
//! both on the same inputs (tests/shipper/test_native.py). Anything unusual (a timestamp
//! not of the usual shape, an error message) is handed to the Python functions the
//! caller passes in, so both paths agree there by construction.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use std::borrow::Cow;
use std::collections::HashMap;

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const SYSTEM_ERROR: u8 = 3;
const PIECE: usize = 16384;
const TS_LEN: usize = 30;

/// Days from 1970-01-01 to year-month-day (proleptic Gregorian), as Python's
/// `calendar.timegm` counts them (the day is not checked against the month).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5; // day of the year of the month's first day
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468 + day - 1
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as i64;
    }
    Some(n)
}

/// Nanoseconds of a timestamp of the usual shape `YYYY-MM-DDTHH:MM:SS.fffffffffZ`
/// (30 bytes); None for anything else (then Python's parse_ts decides).
fn fast_ts(raw: &[u8]) -> Option<i128> {
    if raw.len() != TS_LEN
        || raw[4] != b'-'
        || raw[7] != b'-'
        || raw[10] != b'T'
        || raw[13] != b':'
        || raw[16] != b':'
        || raw[19] != b'.'
        || raw[29] != b'Z'
    {
        return None;
    }
    let year = digits(&raw[0..4])?;
    let month = digits(&raw[5..7])?;
    let day = digits(&raw[8..10])?;
    let hour = digits(&raw[11..13])?;
    let minute = digits(&raw[14..16])?;
    let second = digits(&raw[17..19])?;
    let frac = digits(&raw[20..29])?;
    if year < 1 || !(1..=12).contains(&month) {
        return None; // Python raises for these: let it say so
    }
    let secs = ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second;
    Some(secs as i128 * 1_000_000_000 + frac as i128)
}

/// Whether a TTY entry's timestamp and its space start at `at` (the regex of demux.py).
fn tty_stamp_at(buf: &[u8], at: usize) -> bool {
    let b = &buf[at..at + TS_LEN + 1];
    if b[10] != b'T' || b[29] != b'Z' || b[30] != b' ' {
        return false;
    }
    for (i, &c) in b[..29].iter().enumerate() {
        let ok = match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A timestamp's nanoseconds: the usual shape here, any other by Python's `parse_ts`.
fn ts_of(py: Python<'_>, parse_ts: &Py<PyAny>, raw: &[u8]) -> PyResult<i128> {
    if let Some(ts) = fast_ts(raw) {
        return Ok(ts);
    }
    parse_ts.call1(py, (PyBytes::new(py, raw),))?.extract(py)
}

/// What the Python side lends: its timestamp parser and its error class.
struct Helpers {
    parse_ts: Py<PyAny>,
    error: Py<PyAny>,
}

impl Helpers {
    fn ts(&self, py: Python<'_>, raw: &[u8]) -> PyResult<i128> {
        ts_of(py, &self.parse_ts, raw)
    }

    fn fail(&self, py: Python<'_>, message: String) -> PyErr {
        match self.error.call1(py, (message,)) {
            Ok(exc) => PyErr::from_value(exc.into_bound(py)),
            Err(err) => err,
        }
    }

    fn repr(py: Python<'_>, raw: &[u8]) -> PyResult<String> {
        Ok(PyBytes::new(py, raw).repr()?.to_string())
    }
}

struct Line {
    stream: u8,
    ts: i128,
    data: Py<PyBytes>,
    truncated: bool,
}

fn strip_line_end(data: &[u8], tty: bool) -> &[u8] {
    let mut d = data;
    if d.last() == Some(&b'\n') {
        d = &d[..d.len() - 1];
    }
    if tty {
        while d.last() == Some(&b'\r') {
            d = &d[..d.len() - 1];
        }
    }
    d
}

/// Drop a multi-byte character cut in half at the end (a truncation artefact).
fn cut_utf8(data: &[u8]) -> &[u8] {
    let n = data.len() as isize;
    let mut i = n - 1;
    while i >= 0 && i >= n - 4 && (data[i as usize] & 0xC0) == 0x80 {
        i -= 1;
    }
    if i < 0 || data[i as usize] < 0xC0 {
        return data;
    }
    let lead = data[i as usize];
    let need = if lead < 0xE0 {
        2
    } else if lead < 0xF0 {
        3
    } else {
        4
    };
    if n - i >= need {
        data
    } else {
        &data[..i as usize]
    }
}

/// The pieces of one stream's unfinished line (shipper/rejoin.py `Rejoiner`).
struct Rejoiner {
    max: usize,
    tty: bool,
    held: Vec<u8>,
    pieces: usize,
    ts: i128,
    truncated: bool,
}

impl Rejoiner {
    fn new(max: usize, tty: bool) -> Self {
        Rejoiner {
            max,
            tty,
            held: Vec::new(),
            pieces: 0,
            ts: 0,
            truncated: false,
        }
    }

    fn holding_any(&self) -> bool {
        self.pieces > 0 || self.truncated
    }

    fn push(&mut self, py: Python<'_>, stream: u8, ts: i128, data: &[u8], out: &mut Vec<Line>) {
        let complete = data.last() == Some(&b'\n') || data.len() < PIECE;
        let held = self.holding_any();
        if !held && complete {
            let d = strip_line_end(data, self.tty);
            if d.len() <= self.max {
                out.push(Line {
                    stream,
                    ts,
                    data: PyBytes::new(py, d).unbind(),
                    truncated: false,
                });
                return;
            }
        }
        if held && ts != self.ts {
            self.flush_into(py, stream, out);
        }
        if !self.holding_any() {
            self.ts = ts;
        }
        self.take(data);
        if complete {
            self.flush_into(py, stream, out);
        }
    }

    fn take(&mut self, data: &[u8]) {
        let size = self.held.len();
        if size >= self.max {
            self.truncated = true;
            return;
        }
        let room = self.max - size;
        let mut d = data;
        if d.len() > room {
            d = &d[..room];
            self.truncated = true;
        }
        self.held.extend_from_slice(d);
        self.pieces += 1;
    }

    fn flush_into(&mut self, py: Python<'_>, stream: u8, out: &mut Vec<Line>) {
        if !self.holding_any() {
            return;
        }
        let stripped = strip_line_end(&self.held, self.tty);
        let d = if self.truncated {
            cut_utf8(stripped)
        } else {
            stripped
        };
        out.push(Line {
            stream,
            ts: self.ts,
            data: PyBytes::new(py, d).unbind(),
            truncated: self.truncated,
        });
        self.held.clear();
        self.pieces = 0;
        self.truncated = false;
    }
}

enum Mode {
    Unknown,
    Frames,
    Tty,
}

/// One logs response's bytes in, whole lines out (shipper/rejoin.py `LineReader`).
#[pyclass(module = "logpipe_shipper_native")]
struct Reader {
    helpers: Helpers,
    mode: Mode,
    head: Vec<u8>,
    /// Frames: the start of an unfinished frame. TTY: the unread entries from `tty_pos`.
    buf: Vec<u8>,
    need: usize,
    tty_pos: usize,
    rejoin: [Rejoiner; 2],
}

impl Reader {
    fn start(&mut self, tty: bool) {
        self.mode = if tty { Mode::Tty } else { Mode::Frames };
        self.rejoin = [
            Rejoiner::new(self.rejoin[0].max, tty),
            Rejoiner::new(self.rejoin[0].max, tty),
        ];
    }

    fn frame(&mut self, py: Python<'_>, stream: u8, ts: i128, data: &[u8], out: &mut Vec<Line>) {
        self.rejoin[(stream - 1) as usize].push(py, stream, ts, data, out);
    }

    fn feed_frames(&mut self, py: Python<'_>, chunk: &[u8], out: &mut Vec<Line>) -> PyResult<()> {
        let joined;
        let buf: &[u8] = if !self.buf.is_empty() {
            self.buf.extend_from_slice(chunk);
            if self.buf.len() < self.need {
                return Ok(());
            }
            joined = std::mem::take(&mut self.buf);
            self.need = 0;
            &joined
        } else {
            chunk
        };
        let end = buf.len();
        let mut pos = 0;
        let mut rejoin = std::mem::replace(
            &mut self.rejoin,
            [Rejoiner::new(0, false), Rejoiner::new(0, false)],
        );
        let result = (|| -> PyResult<()> {
            while end - pos >= 8 {
                let stream = buf[pos];
                let size =
                    u32::from_be_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]])
                        as usize;
                if stream != STDOUT && stream != STDERR && stream != SYSTEM_ERROR {
                    return Err(self
                        .helpers
                        .fail(py, format!("unknown stream {stream} in frame header")));
                }
                let start = pos + 8;
                let stop = start + size;
                if stop > end {
                    self.need = 8 + size;
                    break;
                }
                let payload = &buf[start..stop];
                if stream == SYSTEM_ERROR {
                    let message = PyBytes::new(py, payload)
                        .call_method1("decode", ("utf-8", "replace"))?
                        .call_method0("strip")?
                        .to_string();
                    return Err(self.helpers.fail(py, format!("dockerd: {message}")));
                }
                let (ts, data) = if size > TS_LEN && payload[TS_LEN] == b' ' {
                    (
                        self.helpers.ts(py, &payload[..TS_LEN])?,
                        &payload[TS_LEN + 1..],
                    )
                } else {
                    let limit = payload.len().min(40);
                    match payload[..limit].iter().position(|&c| c == b' ') {
                        None => {
                            let shown = Helpers::repr(py, &payload[..limit])?;
                            return Err(self
                                .helpers
                                .fail(py, format!("entry without timestamp: {shown}")));
                        }
                        Some(space) => (
                            self.helpers.ts(py, &payload[..space])?,
                            &payload[space + 1..],
                        ),
                    }
                };
                rejoin[(stream - 1) as usize].push(py, stream, ts, data, out);
                pos = stop;
            }
            Ok(())
        })();
        self.rejoin = rejoin;
        result?;
        if pos < end {
            self.buf.clear();
            self.buf.extend_from_slice(&buf[pos..]);
        }
        Ok(())
    }

    /// The next TTY entry (shipper/demux.py `TtyDemuxer._next`), as (ts, start, stop).
    fn tty_next(&mut self, py: Python<'_>, last: bool) -> PyResult<Option<(i128, usize, usize)>> {
        let buf = &self.buf;
        let pos = self.tty_pos;
        let len = buf.len();
        if len - pos <= TS_LEN {
            return Ok(None);
        }
        let ts = self.helpers.ts(py, &buf[pos..pos + TS_LEN])?;
        let start = pos + TS_LEN + 1;
        let window = (start + PIECE).min(len);
        let mut stop = match buf[start..window].iter().position(|&c| c == b'\n') {
            Some(i) => Some(start + i + 1),
            None if len >= start + PIECE => Some(start + PIECE),
            None => {
                if last {
                    Some(len)
                } else {
                    None
                }
            }
        };
        // A next entry before `stop`: after a last line without newline.
        let scan_end = stop.unwrap_or(len);
        let mut at = start;
        while at + TS_LEN + 1 <= scan_end {
            if tty_stamp_at(buf, at) && self.helpers.ts(py, &buf[at..at + TS_LEN])? >= ts {
                stop = Some(at);
                break;
            }
            at += 1;
        }
        Ok(stop.map(|s| (ts, start, s)))
    }

    fn tty_entries(&mut self, py: Python<'_>, last: bool, out: &mut Vec<Line>) -> PyResult<()> {
        let result = (|| -> PyResult<()> {
            loop {
                match self.tty_next(py, false)? {
                    None => break,
                    Some((ts, start, stop)) => {
                        let data = self.buf[start..stop].to_vec();
                        self.tty_pos = stop;
                        self.frame(py, STDOUT, ts, &data, out);
                    }
                }
            }
            if last {
                if let Some((ts, start, stop)) = self.tty_next(py, true)? {
                    let data = self.buf[start..stop].to_vec();
                    self.tty_pos = stop;
                    self.frame(py, STDOUT, ts, &data, out);
                }
            }
            Ok(())
        })();
        self.buf.drain(..self.tty_pos);
        self.tty_pos = 0;
        result
    }

    fn feed_bytes(&mut self, py: Python<'_>, chunk: &[u8], out: &mut Vec<Line>) -> PyResult<()> {
        let owned;
        let mut chunk = chunk;
        if let Mode::Unknown = self.mode {
            self.head.extend_from_slice(chunk);
            if self.head.len() < 4 {
                return Ok(());
            }
            owned = std::mem::take(&mut self.head);
            chunk = &owned;
            let framed = (chunk[0] == STDOUT || chunk[0] == STDERR || chunk[0] == SYSTEM_ERROR)
                && chunk[1..4] == [0, 0, 0];
            self.start(!framed);
        }
        match self.mode {
            Mode::Tty => {
                self.buf.extend_from_slice(chunk);
                self.tty_entries(py, false, out)
            }
            _ => self.feed_frames(py, chunk, out),
        }
    }
}

/// Lines read, held on the native side until they are numbered.
#[pyclass(module = "logpipe_shipper_native")]
struct Lines {
    lines: Vec<Line>,
}

#[pymethods]
impl Lines {
    fn __len__(&self) -> usize {
        self.lines.len()
    }

    /// The lines as (stream, ts, data, truncated) tuples, as shipper/rejoin.py's `Line`.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Bound<'py, PyTuple>> = self
            .lines
            .iter()
            .map(|l| {
                PyTuple::new(
                    py,
                    [
                        l.stream.into_pyobject(py).unwrap().into_any(),
                        l.ts.into_pyobject(py).unwrap().into_any(),
                        l.data.bind(py).clone().into_any(),
                        pyo3::types::PyBool::new(py, l.truncated)
                            .to_owned()
                            .into_any(),
                    ],
                )
            })
            .collect::<PyResult<_>>()?;
        PyList::new(py, items)
    }
}

#[pymethods]
impl Reader {
    /// `parse_ts(bytes) -> int` and `error(message)` are the Python path's own.
    #[new]
    fn new(max_line_bytes: usize, parse_ts: Py<PyAny>, error: Py<PyAny>) -> Self {
        Reader {
            helpers: Helpers { parse_ts, error },
            mode: Mode::Unknown,
            head: Vec::new(),
            buf: Vec::new(),
            need: 0,
            tty_pos: 0,
            rejoin: [
                Rejoiner::new(max_line_bytes, false),
                Rejoiner::new(max_line_bytes, false),
            ],
        }
    }

    /// Whether the stream is a TTY's (None before its first bytes).
    #[getter]
    fn tty(&self) -> Option<bool> {
        match self.mode {
            Mode::Unknown => None,
            Mode::Tty => Some(true),
            Mode::Frames => Some(false),
        }
    }

    /// The lines that `chunk` completes.
    fn feed(&mut self, py: Python<'_>, chunk: &Bound<'_, PyAny>) -> PyResult<Lines> {
        let mut out = Vec::new();
        if let Ok(b) = chunk.cast::<PyBytes>() {
            self.feed_bytes(py, b.as_bytes(), &mut out)?;
        } else {
            let b: Vec<u8> = chunk.extract()?;
            self.feed_bytes(py, &b, &mut out)?;
        }
        Ok(Lines { lines: out })
    }

    /// Lines held at the end of the log of a stopped container (no newline at exit).
    fn finish(&mut self, py: Python<'_>) -> PyResult<Lines> {
        let mut out = Vec::new();
        if let Mode::Unknown = self.mode {
            if self.head.is_empty() {
                return Ok(Lines { lines: out });
            }
            self.start(true);
            let head = std::mem::take(&mut self.head);
            self.buf.extend_from_slice(&head);
            self.tty_entries(py, false, &mut out)?;
        }
        if let Mode::Tty = self.mode {
            self.tty_entries(py, true, &mut out)?;
        }
        for stream in [STDOUT, STDERR] {
            self.rejoin[(stream - 1) as usize].flush_into(py, stream, &mut out);
        }
        Ok(Lines { lines: out })
    }
}

/// One entry of a json-file log as dockerd writes it (other keys, like `attrs`, ignored).
#[derive(serde::Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

fn line_end(c: &u8) -> bool {
    *c == b'\n' || *c == b'\r'
}

/// A json-file log's bytes in, whole lines out (shipper/logfiles/jsonfile.py `FileLines`):
/// each entry is the frame dockerd would have sent for it, rejoined as `Reader` does.
#[pyclass(module = "logpipe_shipper_native")]
struct FileReader {
    /// shipper/demux.py `parse_ts`, for timestamps of an unusual shape.
    parse_ts: Py<PyAny>,
    /// shipper/logfiles/jsonfile.py `entry`: (stream, ts, text) of a line, or None.
    entry: Py<PyAny>,
    /// The start of an entry the last chunk cut.
    carry: Vec<u8>,
    rejoin: [Rejoiner; 2],
}

impl FileReader {
    /// The entries of `data` (whole lines), as frames. A line of another shape than
    /// dockerd's (torn by a crash, say) is the Python path's to read or skip.
    fn entries(&mut self, py: Python<'_>, data: &[u8], out: &mut Vec<Line>) -> PyResult<()> {
        for raw in data.split(line_end) {
            if raw.is_empty() {
                continue;
            }
            let (stream, ts, text): (u8, i128, Cow<[u8]>) = match self.read(py, raw) {
                Some(read) => read,
                None => {
                    let read = self.entry.call1(py, (PyBytes::new(py, raw),))?;
                    if read.is_none(py) {
                        continue;
                    }
                    let (stream, ts, text): (u8, i128, Vec<u8>) = read.extract(py)?;
                    (stream, ts, Cow::Owned(text))
                }
            };
            self.rejoin[(stream - 1) as usize].push(py, stream, ts, &text, out);
        }
        Ok(())
    }

    /// An entry of dockerd's own shape, or None for Python to decide.
    fn read<'a>(&self, py: Python<'_>, raw: &'a [u8]) -> Option<(u8, i128, Cow<'a, [u8]>)> {
        if raw.first() != Some(&b'{') {
            return None; // serde would also read an array as an entry
        }
        let entry = serde_json::from_slice::<Entry>(raw).ok()?;
        let stream = match entry.stream.as_ref() {
            "stdout" => STDOUT,
            "stderr" => STDERR,
            _ => return None,
        };
        let ts = ts_of(py, &self.parse_ts, entry.time.as_bytes()).ok()?;
        let text = match entry.log {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        };
        Some((stream, ts, text))
    }

    /// The entry carried from the last chunk, read as a whole line.
    fn end_carry(&mut self, py: Python<'_>, out: &mut Vec<Line>) -> PyResult<()> {
        let carry = std::mem::take(&mut self.carry);
        self.entries(py, &carry, out)
    }
}

#[pymethods]
impl FileReader {
    /// `parse_ts(bytes) -> int` and `entry(bytes)` (one line read, or None) are the
    /// Python path's own.
    #[new]
    fn new(max_line_bytes: usize, tty: bool, parse_ts: Py<PyAny>, entry: Py<PyAny>) -> Self {
        FileReader {
            parse_ts,
            entry,
            carry: Vec::new(),
            rejoin: [
                Rejoiner::new(max_line_bytes, tty),
                Rejoiner::new(max_line_bytes, tty),
            ],
        }
    }

    /// The lines that `chunk` completes; an entry it cuts waits for the next chunk.
    fn feed(&mut self, py: Python<'_>, chunk: &[u8]) -> PyResult<Lines> {
        let mut out = Vec::new();
        let Some(last) = chunk.iter().rposition(line_end) else {
            self.carry.extend_from_slice(chunk);
            return Ok(Lines { lines: out });
        };
        let mut whole = &chunk[..=last];
        if !self.carry.is_empty() {
            let first = whole.iter().position(line_end).unwrap_or(last);
            self.carry.extend_from_slice(&whole[..first]);
            self.end_carry(py, &mut out)?;
            whole = &whole[first..];
        }
        let result = self.entries(py, whole, &mut out);
        self.carry.extend_from_slice(&chunk[last + 1..]);
        result?;
        Ok(Lines { lines: out })
    }

    /// The end of one file: an entry without a line end is read as it is (the next file
    /// starts with an entry of its own); a line's pieces may go on in the next file.
    fn end_file(&mut self, py: Python<'_>) -> PyResult<Lines> {
        let mut out = Vec::new();
        self.end_carry(py, &mut out)?;
        Ok(Lines { lines: out })
    }

    /// The end of the log: what `end_file` reads, then the lines held unfinished.
    fn finish(&mut self, py: Python<'_>) -> PyResult<Lines> {
        let mut out = Vec::new();
        self.end_carry(py, &mut out)?;
        for stream in [STDOUT, STDERR] {
            self.rejoin[(stream - 1) as usize].flush_into(py, stream, &mut out);
        }
        Ok(Lines { lines: out })
    }
}

/// The longest entry of a `local` log read (shipper/logfiles/localfile.py `MAX_ENTRY`):
/// a length past it is a corrupt one, not an entry to wait for.
const MAX_ENTRY: usize = 1 << 20;

/// Why a `local` entry's message does not decode as a `LogEntry` (localfile.py's
/// `ProtoError`, whose messages these give word for word).
enum ProtoError {
    CutShort,
    TooLong,
    WireType(u128, u8),
    PastEntry(u128),
    Source(Vec<u8>),
}

impl ProtoError {
    fn message(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match self {
            ProtoError::CutShort => "varint cut short".to_owned(),
            ProtoError::TooLong => "varint longer than 10 bytes".to_owned(),
            ProtoError::WireType(number, wire) => format!("field {number} has wire type {wire}"),
            ProtoError::PastEntry(number) => format!("field {number} runs past the entry"),
            ProtoError::Source(source) => format!(
                "source {} is neither stdout nor stderr",
                Helpers::repr(py, source)?
            ),
        })
    }
}

/// One `LogEntry` read: its stream, time, line (without the newline the API adds) and
/// whether it is a piece of a line.
struct LocalEntry<'a> {
    stream: u8,
    ts: i128,
    line: &'a [u8],
    partial: bool,
}

/// A protobuf varint at `pos` (moved past it); as wide as ten bytes make it.
fn varint(buf: &[u8], pos: &mut usize) -> Result<u128, ProtoError> {
    let mut value: u128 = 0;
    let mut shift = 0;
    loop {
        let Some(&byte) = buf.get(*pos) else {
            return Err(ProtoError::CutShort);
        };
        *pos += 1;
        value |= u128::from(byte & 0x7F) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
        shift += 7;
        if shift >= 70 {
            return Err(ProtoError::TooLong);
        }
    }
}

/// One `LogEntry` message (localfile.py `entry`): fields 1 source, 2 time_nano, 3 line,
/// 4 partial, 5 partial_log_metadata; unknown fields skipped, the last of a repeated one
/// kept.
fn local_entry(msg: &[u8]) -> Result<LocalEntry<'_>, ProtoError> {
    let (mut source, mut line): (&[u8], &[u8]) = (&[], &[]);
    let (mut ts, mut partial) = (0i128, false);
    let end = msg.len();
    let mut pos = 0;
    while pos < end {
        let key = varint(msg, &mut pos)?;
        let (number, wire) = (key >> 3, (key & 7) as u8);
        let expected = match number {
            1 | 3 | 5 => Some(2),
            2 | 4 => Some(0),
            _ => None,
        };
        if expected.is_some_and(|w| w != wire) {
            return Err(ProtoError::WireType(number, wire));
        }
        match wire {
            0 => {
                let value = varint(msg, &mut pos)?;
                if number == 2 {
                    // an int64: a negative one is written as its two's complement
                    ts = value as i128 - if value >= 1 << 63 { 1 << 64 } else { 0 };
                } else if number == 4 {
                    partial = value != 0;
                }
            }
            2 => {
                let size = varint(msg, &mut pos)?;
                if size > (end - pos) as u128 {
                    return Err(ProtoError::PastEntry(number));
                }
                let field = &msg[pos..pos + size as usize];
                if number == 1 {
                    source = field;
                } else if number == 3 {
                    line = field;
                }
                pos += size as usize;
            }
            1 | 5 => {
                // fixed 64 or 32 bits, in no field read
                pos += if wire == 1 { 8 } else { 4 };
                if pos > end {
                    return Err(ProtoError::PastEntry(number));
                }
            }
            _ => return Err(ProtoError::WireType(number, wire)),
        }
    }
    let stream = match source {
        b"stdout" => STDOUT,
        b"stderr" => STDERR,
        _ => return Err(ProtoError::Source(source[..source.len().min(20)].to_vec())),
    };
    Ok(LocalEntry {
        stream,
        ts,
        line,
        partial,
    })
}

fn length_at(data: &[u8], pos: usize) -> usize {
    u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize
}

/// The entry at `pos` and where the next starts, if a whole, sound one is there
/// (localfile.py `_whole`).
fn whole_entry(data: &[u8], pos: usize) -> Option<(LocalEntry<'_>, usize)> {
    if data.len() - pos < 8 {
        return None;
    }
    let size = length_at(data, pos);
    let stop = pos + 8 + size;
    if size > MAX_ENTRY || stop > data.len() || data[stop - 4..stop] != data[pos..pos + 4] {
        return None;
    }
    local_entry(&data[pos + 4..stop - 4])
        .ok()
        .map(|entry| (entry, stop))
}

/// Why the entry at `pos` is not sound (localfile.py `_why_not`).
fn why_not(py: Python<'_>, data: &[u8], pos: usize) -> PyResult<String> {
    let end = data.len();
    if end - pos < 8 {
        return Ok("shorter than its lengths".to_owned());
    }
    let size = length_at(data, pos);
    if size > MAX_ENTRY {
        return Ok(format!("length {size} past {MAX_ENTRY}"));
    }
    let stop = pos + 8 + size;
    if stop > end {
        return Ok(format!("length {size} runs past the end"));
    }
    let trailer = length_at(data, stop - 4);
    if trailer != size {
        return Ok(format!("length {size} at its start, {trailer} at its end"));
    }
    match local_entry(&data[pos + 4..stop - 4]) {
        Err(err) => err.message(py),
        Ok(_) => Ok("unreadable".to_owned()),
    }
}

/// A `local` log's bytes in, a chunk at a time, whole lines out, as the logs API would
/// have given them (shipper/logfiles/localfile.py `LocalLines`, whose problems these are
/// word for word): torn and corrupt entries reported in `problems` and skipped to the next
/// sound entry, pieces rejoined as `Reader` does.
#[pyclass(module = "logpipe_shipper_native")]
struct LocalReader {
    /// The start of an entry the last chunk cut.
    carry: Vec<u8>,
    /// Bytes of the file before the carry.
    at: usize,
    /// A line with the newline the logs API adds to an entry not marked partial.
    scratch: Vec<u8>,
    rejoin: [Rejoiner; 2],
    problems: Py<PyList>,
}

impl LocalReader {
    /// The entries at the start of `data` (`at` bytes into the file) into lines, and
    /// where the first one not whole yet begins (localfile.py `_take`); a problem ends
    /// with `suffix`. `last`: `data` is all there is (what is not whole is torn).
    fn take(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        at: usize,
        last: bool,
        suffix: &str,
        out: &mut Vec<Line>,
    ) -> PyResult<usize> {
        let end = data.len();
        let mut pos = 0;
        while pos < end {
            if let Some((entry, stop)) = whole_entry(data, pos) {
                let rejoin = &mut self.rejoin[(entry.stream - 1) as usize];
                if entry.partial {
                    rejoin.push(py, entry.stream, entry.ts, entry.line, out);
                } else {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(entry.line);
                    self.scratch.push(b'\n');
                    rejoin.push(py, entry.stream, entry.ts, &self.scratch, out);
                }
                pos = stop;
                continue;
            }
            if !last {
                if end - pos < 8 {
                    break;
                }
                let size = length_at(data, pos);
                if size <= MAX_ENTRY && pos + 8 + size > end {
                    break; // the rest of it is in the next chunk
                }
            }
            let next = (pos + 1..end.saturating_sub(7)).find(|&p| whole_entry(data, p).is_some());
            let (torn, next) = match next {
                Some(next) => (false, next),
                None if last => (true, end), // the rest is all there is
                None if end - pos <= 2 * (MAX_ENTRY + 8) => break, // may not be whole yet
                None => (false, end - (MAX_ENTRY + 8)), // nothing before this can begin one
            };
            let what = if torn {
                format!("torn entry at byte {} ({} bytes)", at + pos, end - pos)
            } else {
                format!(
                    "corrupt entry at byte {} ({} bytes skipped)",
                    at + pos,
                    next - pos
                )
            };
            let why = why_not(py, data, pos)?;
            self.problems
                .bind(py)
                .append(format!("{what}: {why}{suffix}"))?;
            pos = next;
        }
        Ok(pos)
    }
}

#[pymethods]
impl LocalReader {
    #[new]
    fn new(py: Python<'_>, max_line_bytes: usize, tty: bool) -> Self {
        LocalReader {
            carry: Vec::new(),
            at: 0,
            scratch: Vec::new(),
            rejoin: [
                Rejoiner::new(max_line_bytes, tty),
                Rejoiner::new(max_line_bytes, tty),
            ],
            problems: PyList::empty(py).unbind(),
        }
    }

    /// What could not be read, each saying where and why (the caller clears it).
    #[getter]
    fn problems<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.problems.bind(py).clone()
    }

    /// The lines that `chunk` completes; an entry it cuts waits for the next chunk.
    fn feed(&mut self, py: Python<'_>, chunk: &[u8]) -> PyResult<Lines> {
        let mut out = Vec::new();
        if self.carry.is_empty() {
            let used = self.take(py, chunk, self.at, false, "", &mut out)?;
            self.carry.extend_from_slice(&chunk[used..]);
            self.at += used;
        } else {
            let mut data = std::mem::take(&mut self.carry);
            data.extend_from_slice(chunk);
            let used = self.take(py, &data, self.at, false, "", &mut out)?;
            data.drain(..used);
            self.carry = data;
            self.at += used;
        }
        Ok(Lines { lines: out })
    }

    /// The end of one file: what is left is read as far as it goes (a torn last entry is
    /// reported, with where the bytes left began); a line's pieces may go on in the next
    /// file.
    fn end_file(&mut self, py: Python<'_>) -> PyResult<Lines> {
        self.ended(py, false)
    }

    /// The end of the log: what `end_file` reads, then the lines held unfinished.
    fn finish(&mut self, py: Python<'_>) -> PyResult<Lines> {
        self.ended(py, true)
    }
}

impl LocalReader {
    /// What the end of a file (and of the log, `log_end`: the lines held too) gives.
    fn ended(&mut self, py: Python<'_>, log_end: bool) -> PyResult<Lines> {
        let mut out = Vec::new();
        let carry = std::mem::take(&mut self.carry);
        let suffix = format!(" (byte {} of the file on)", self.at);
        self.at = 0;
        self.take(py, &carry, 0, true, &suffix, &mut out)?;
        if log_end {
            for (rejoin, stream) in self.rejoin.iter_mut().zip([STDOUT, STDERR]) {
                rejoin.flush_into(py, stream, &mut out);
            }
        }
        Ok(Lines { lines: out })
    }
}

/// One stream's numbering (shipper/cursor.py `Sequencer`); entries of one timestamp are
/// told apart by their content.
struct Sequencer {
    reached_ts: i128,
    reached_count: i64,
    ts: Option<i128>,
    seen: Vec<Py<PyBytes>>,
}

impl Sequencer {
    fn number(&mut self, py: Python<'_>, ts: i128, data: &Py<PyBytes>) -> Option<i64> {
        let seq;
        if self.ts != Some(ts) {
            self.ts = Some(ts);
            self.seen.clear();
            self.seen.push(data.clone_ref(py));
            seq = 0;
        } else {
            let bytes = data.as_bytes(py);
            match self.seen.iter().position(|s| s.as_bytes(py) == bytes) {
                Some(i) => seq = i as i64,
                None => {
                    seq = self.seen.len() as i64;
                    self.seen.push(data.clone_ref(py));
                }
            }
        }
        if ts < self.reached_ts || (ts == self.reached_ts && seq < self.reached_count) {
            return None;
        }
        self.reached_ts = ts;
        self.reached_count = seq + 1;
        Some(seq)
    }
}

/// Both streams' numbering from the positions reached (shipper/follow/numbering.py).
#[pyclass(module = "logpipe_shipper_native")]
struct Sequencers {
    streams: [Sequencer; 2],
}

#[pymethods]
impl Sequencers {
    #[new]
    fn new(stdout: (i128, i64), stderr: (i128, i64)) -> Self {
        let make = |(ts, count): (i128, i64)| Sequencer {
            reached_ts: ts,
            reached_count: count,
            ts: None,
            seen: Vec::new(),
        };
        Sequencers {
            streams: [make(stdout), make(stderr)],
        }
    }

    /// The position reached on a stream, as (ts, count).
    fn reached(&self, stream: &str) -> PyResult<(i128, i64)> {
        let s = match stream {
            "stdout" => &self.streams[0],
            "stderr" => &self.streams[1],
            _ => return Err(PyValueError::new_err(format!("no stream {stream:?}"))),
        };
        Ok((s.reached_ts, s.reached_count))
    }

    /// Number lines[start:stop]; build `record(meta, stream, ts, seq, data, truncated)`
    /// for each line not seen before (when `build`), a gap record (`gap(stream, from_ts,
    /// ts)`) before a stream's first line when it starts later than `expect[stream].ts`
    /// (the entry is taken out of `expect`). Returns (records, lines, bytes, truncated,
    /// dropped, last_ts, streams touched).
    #[allow(clippy::too_many_arguments)]
    fn number<'py>(
        &mut self,
        py: Python<'py>,
        lines: &Lines,
        start: usize,
        stop: usize,
        meta: &Bound<'py, PyAny>,
        record: &Bound<'py, PyAny>,
        build: bool,
        expect: &Bound<'py, PyDict>,
        gap: &Bound<'py, PyAny>,
        last_ts: i128,
    ) -> PyResult<(
        Bound<'py, PyList>,
        usize,
        usize,
        usize,
        usize,
        i128,
        Vec<&'static str>,
    )> {
        let names = [pyo3::intern!(py, "stdout"), pyo3::intern!(py, "stderr")];
        let out = PyList::empty(py);
        let (mut shipped, mut size, mut truncated, mut dropped) = (0usize, 0usize, 0usize, 0usize);
        let mut last = last_ts;
        let mut touched = [false, false];
        let stop = stop.min(lines.lines.len());
        for line in &lines.lines[start.min(stop)..stop] {
            let i = (line.stream - 1) as usize;
            let name: &Bound<'py, PyString> = names[i];
            if !expect.is_empty() {
                if let Some(wanted) = expect.get_item(name)? {
                    expect.del_item(name)?;
                    let wanted_ts: i128 = wanted.getattr(pyo3::intern!(py, "ts"))?.extract()?;
                    if line.ts > wanted_ts {
                        out.append(gap.call1((name, wanted_ts, line.ts))?)?;
                    }
                }
            }
            let seq = match self.streams[i].number(py, line.ts, &line.data) {
                None => {
                    dropped += 1;
                    continue;
                }
                Some(seq) => seq,
            };
            touched[i] = true;
            if line.ts > last {
                last = line.ts;
            }
            if build {
                let args = PyTuple::new(
                    py,
                    [
                        meta.clone(),
                        name.clone().into_any(),
                        line.ts.into_pyobject(py)?.into_any(),
                        seq.into_pyobject(py)?.into_any(),
                        line.data.bind(py).clone().into_any(),
                        pyo3::types::PyBool::new(py, line.truncated)
                            .to_owned()
                            .into_any(),
                    ],
                )?;
                out.append(record.call1(args)?)?;
                shipped += 1;
                size += line.data.bind(py).as_bytes().len();
                truncated += line.truncated as usize;
            }
        }
        let mut streams = Vec::new();
        if touched[0] {
            streams.push("stdout");
        }
        if touched[1] {
            streams.push("stderr");
        }
        Ok((out, shipped, size, truncated, dropped, last, streams))
    }
}

#[pymodule]
fn logpipe_shipper_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Reader>()?;
    m.add_class::<Lines>()?;
    m.add_class::<FileReader>()?;
    m.add_class::<LocalReader>()?;
    m.add_class::<Sequencers>()?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    Ok(())
}

// ---- batch encoding (shipper/batch.py `encode`, collector/wire.py `log_line`) ----------

/// Bytes of one part of a batch body being written.
const PART: usize = 256 * 1024;

/// Append `text` as msgspec writes a JSON string's inside: `"` and `\` escaped, control
/// characters as `\b \t \n \f \r` or `\u00xx`, everything else as it is.
fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in text.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&text[start..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 15) as usize],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// The message: what is not UTF-8 becomes U+FFFD (as Python's "replace"), then escaped.
fn message_into(out: &mut Vec<u8>, data: &[u8]) {
    for chunk in data.utf8_chunks() {
        escape_into(out, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
}

/// The decimal digits of `n`, as Python's str() writes an int (no allocation).
fn int_into(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// A `log` line as collector/wire.py `log_line` writes it; None when a field is not of
/// the usual type (then Python writes it).
/// `stream` and `ts` are the record's, read by the caller (which needs them too).
fn log_line_into(
    py: Python<'_>,
    out: &mut Vec<u8>,
    record: &Bound<'_, PyAny>,
    stream: &Bound<'_, PyAny>,
    ts: &Bound<'_, PyAny>,
    src: usize,
) -> PyResult<bool> {
    let stream = match stream.cast::<PyString>() {
        Ok(s) => s.to_str()?,
        Err(_) => return Ok(false),
    };
    if stream != "stdout" && stream != "stderr" {
        return Ok(false);
    }
    let ts: i64 = match ts.extract() {
        Ok(v) => v,
        Err(_) => return Ok(false),
    };
    let seq = record.getattr(pyo3::intern!(py, "seq"))?;
    let truncated = record.getattr(pyo3::intern!(py, "truncated"))?;
    let lines = record.getattr(pyo3::intern!(py, "lines"))?;
    let data = record.getattr(pyo3::intern!(py, "data"))?;
    let (Ok(seq), Ok(lines)) = (seq.extract::<i64>(), lines.extract::<i64>()) else {
        return Ok(false);
    };
    let Ok(truncated) = truncated.cast::<pyo3::types::PyBool>() else {
        return Ok(false);
    };
    let Ok(data) = data.cast::<PyBytes>() else {
        return Ok(false);
    };
    out.extend_from_slice(b"{\"kind\":\"log\",\"src\":");
    int_into(out, src as i64);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"ts\":");
    int_into(out, ts);
    out.extend_from_slice(b",\"message\":\"");
    message_into(out, data.as_bytes());
    out.push(b'"');
    if seq != 0 {
        out.extend_from_slice(b",\"seq\":");
        int_into(out, seq);
    }
    if truncated.is_true() {
        out.extend_from_slice(b",\"truncated\":true");
    }
    if lines != 1 {
        out.extend_from_slice(b",\"lines\":");
        int_into(out, lines);
    }
    out.push(b'}');
    Ok(true)
}

/// A hasher for the object addresses `encode` keys its maps by: a multiply of each
/// word, much cheaper per record than the default SipHash (no outside input reaches it).
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type AddressHash = std::hash::BuildHasherDefault<AddressHasher>;

/// shipper/batch.py `encode` up to the positions: (body, lines, last, first_ts, done),
/// `done` the list of its DoneRecords, `last` the dict of the last LogRecord or MarkRecord of each (container id, stream).
/// `classes` is (LogRecord, MarkRecord, DoneRecord); `source_line(meta, src, host)`,
/// `record_line(record, src)` and `log_line(record, src)` write the lines it leaves to
/// Python.
#[pyfunction]
fn encode<'py>(
    py: Python<'py>,
    records: &Bound<'py, PyList>,
    host: &Bound<'py, PyAny>,
    classes: (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>),
    source_line: &Bound<'py, PyAny>,
    record_line: &Bound<'py, PyAny>,
    log_line: &Bound<'py, PyAny>,
) -> PyResult<(
    Bound<'py, PyBytes>,
    usize,
    Bound<'py, PyDict>,
    Bound<'py, PyAny>,
    Bound<'py, PyList>,
)> {
    let (log_cls, mark_cls, done_cls) = classes;
    let meta_attr = pyo3::intern!(py, "meta");
    let id_attr = pyo3::intern!(py, "id");
    let stream_attr = pyo3::intern!(py, "stream");
    let ts_attr = pyo3::intern!(py, "ts");
    // The body is written in parts of about PART bytes, copied once into the bytes object
    // at the end: a single growing buffer would reach up to twice the body's size (and the
    // shipper's heap keeps its peak).
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut body: Vec<u8> = Vec::with_capacity(PART + PART / 4);
    let mut lines = 0usize;
    let mut sources: HashMap<usize, usize, AddressHash> = HashMap::default();
    // (meta object, stream object) -> index into `keys`; keys hold (meta.id, stream).
    let mut pair_key: HashMap<(usize, usize), usize, AddressHash> = HashMap::default();
    let key_index = PyDict::new(py);
    let mut last: Vec<Bound<'py, PyAny>> = Vec::new();
    let mut keys: Vec<Bound<'py, PyAny>> = Vec::new();
    let mut first_ts: Bound<'py, PyAny> = 0i64.into_pyobject(py)?.into_any();
    let mut first_native: Option<i64> = Some(0);
    let done = PyList::empty(py);
    // Kept alive while their addresses key `sources` and `pair_key`.
    let mut metas: Vec<Bound<'py, PyAny>> = Vec::new();
    let mut held: Vec<Bound<'py, PyAny>> = Vec::new();

    let push_line = |body: &mut Vec<u8>, line: &[u8]| {
        body.extend_from_slice(line);
        body.push(b'\n');
    };
    let mut remember = |record: &Bound<'py, PyAny>,
                        meta: &Bound<'py, PyAny>,
                        stream: Bound<'py, PyAny>|
     -> PyResult<()> {
        let pair = (meta.as_ptr() as usize, stream.as_ptr() as usize);
        let index = match pair_key.get(&pair) {
            Some(&i) => i,
            None => {
                let key = PyTuple::new(py, [meta.getattr(id_attr)?, stream.clone()])?.into_any();
                let i = match key_index.get_item(&key)? {
                    Some(i) => i.extract::<usize>()?,
                    None => {
                        let i = keys.len();
                        key_index.set_item(&key, i)?;
                        keys.push(key);
                        last.push(record.clone());
                        i
                    }
                };
                pair_key.insert(pair, i);
                held.push(meta.clone());
                held.push(stream);
                i
            }
        };
        last[index] = record.clone();
        Ok(())
    };

    for record in records.iter() {
        if body.len() >= PART {
            let full = std::mem::replace(&mut body, Vec::with_capacity(PART + PART / 4));
            parts.push(full);
        }
        let kind = record.get_type();
        let is_log = kind.is(&log_cls);
        if !is_log {
            if record.is_instance(&mark_cls)? {
                let meta = record.getattr(meta_attr)?;
                remember(&record, &meta, record.getattr(stream_attr)?)?;
                continue;
            }
            if record.is_instance(&done_cls)? {
                done.append(record)?;
                continue;
            }
        }
        let meta = record.getattr(meta_attr)?;
        let ptr = meta.as_ptr() as usize;
        let src = match sources.get(&ptr) {
            Some(&s) => s,
            None => {
                let s = sources.len();
                sources.insert(ptr, s);
                let line = source_line.call1((&meta, s, host))?;
                push_line(&mut body, line.cast::<PyBytes>()?.as_bytes());
                metas.push(meta.clone());
                s
            }
        };
        let is_log_record = is_log || record.is_instance(&log_cls)?;
        // A line's stream and ts, read once: its line, its position and the first ts.
        let (stream, ts) = if is_log_record {
            (record.getattr(stream_attr)?, record.getattr(ts_attr)?)
        } else {
            (py.None().into_bound(py), py.None().into_bound(py))
        };
        if is_log {
            let mark = body.len();
            if !log_line_into(py, &mut body, &record, &stream, &ts, src)? {
                body.truncate(mark);
                let line = log_line.call1((&record, src))?;
                body.extend_from_slice(line.cast::<PyBytes>()?.as_bytes());
            }
            body.push(b'\n');
        } else {
            let line = record_line.call1((&record, src))?;
            push_line(&mut body, line.cast::<PyBytes>()?.as_bytes());
        }
        lines += 1;
        if is_log_record {
            remember(&record, &meta, stream)?;
            match (first_native, ts.extract::<i64>()) {
                (Some(first), Ok(t)) => {
                    if t < first || first == 0 {
                        first_native = Some(t);
                        first_ts = ts;
                    }
                }
                _ => {
                    // not a small int: compare as Python does
                    if ts.lt(&first_ts)? || !first_ts.is_truthy()? {
                        first_ts = ts;
                    }
                    first_native = None;
                }
            }
        }
    }
    let positions = PyDict::new(py);
    for (key, record) in keys.iter().zip(last.iter()) {
        positions.set_item(key, record)?;
    }
    parts.push(body);
    let size = if lines > 0 {
        parts.iter().map(Vec::len).sum()
    } else {
        0
    };
    let body = PyBytes::new_with(py, size, |out| {
        let mut at = 0;
        for part in parts.iter().take_while(|_| size > 0) {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Ok(())
    })?;
    Ok((body, lines, positions, first_ts, done))
}
