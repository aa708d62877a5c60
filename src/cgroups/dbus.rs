//! A small, synchronous D-Bus client: just what the systemd cgroup driver needs to call
//! systemd's manager and wait for its jobs. No threads and no event loop (the container init is
//! cloned from this process, which must then have one thread), so no D-Bus crate with a
//! background executor; every read has a deadline.
//!
//! Wire format (D-Bus specification, "Message Protocol"): little-endian messages, a 16-byte
//! fixed header, header fields `a(yv)`, padding to 8, then the body. Values are aligned to their
//! natural size relative to the start of the message; the body starts 8-aligned, so aligning
//! relative to the body's start is the same.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A D-Bus value, as far as systemd's manager interface needs them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    /// The element signature, and the elements (dict entries are `Struct`s of two).
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
    /// Any type this client does not interpret (a double, a unix fd index), skipped over.
    Other,
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    /// A property for the `a(sv)` arrays of StartTransientUnit and SetUnitProperties.
    pub fn prop(name: &str, v: Value) -> Value {
        Value::Struct(vec![Value::str(name), Value::variant(v)])
    }

    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => format!("({})", fields.iter().map(Value::signature).collect::<String>()),
            Value::Variant(_) => "v".into(),
            Value::Other => "?".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            Value::Variant(v) => v.as_str(),
            _ => None,
        }
    }
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    while !buf.len().is_multiple_of(align) {
        buf.push(0);
    }
}

/// A fixed-size value at its natural alignment (its own size), little-endian.
fn aligned(buf: &mut Vec<u8>, bytes: &[u8]) {
    pad(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

fn alignment(sig: u8) -> usize {
    match sig {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// Appends `v` to `buf` (whose offset 0 is 8-aligned in the message).
pub fn marshal(buf: &mut Vec<u8>, v: &Value) -> Result<()> {
    let string = |buf: &mut Vec<u8>, s: &str| -> Result<()> {
        if s.contains('\0') {
            return Err(proto(format!("string {s:?} holds a NUL byte")));
        }
        pad(buf, 4);
        buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
        buf.push(0);
        Ok(())
    };
    match v {
        Value::Byte(b) => buf.push(*b),
        Value::Bool(b) => aligned(buf, &u32::from(*b).to_le_bytes()),
        Value::I32(n) => aligned(buf, &n.to_le_bytes()),
        Value::U32(n) => aligned(buf, &n.to_le_bytes()),
        Value::I64(n) => aligned(buf, &n.to_le_bytes()),
        Value::U64(n) => aligned(buf, &n.to_le_bytes()),
        Value::Str(s) | Value::Path(s) => string(buf, s)?,
        Value::Sig(s) => {
            if s.len() > 255 {
                return Err(proto(format!("signature {s:?} is too long")));
            }
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Array(elem, items) => {
            pad(buf, 4);
            let len_at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            // The length counts the elements, not the padding before the first one.
            pad(buf, alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
            let start = buf.len();
            for item in items {
                if item.signature() != *elem {
                    return Err(proto(format!("array of {elem} holds a {}", item.signature())));
                }
                marshal(buf, item)?;
            }
            let len = (buf.len() - start) as u32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Value::Struct(fields) => {
            pad(buf, 8);
            for f in fields {
                marshal(buf, f)?;
            }
        }
        Value::Variant(inner) => {
            marshal(buf, &Value::Sig(inner.signature()))?;
            marshal(buf, inner)?;
        }
        Value::Other => return Err(proto("cannot send an uninterpreted value".into())),
    }
    Ok(())
}

fn proto(msg: String) -> Error {
    Error::Systemd(format!("D-Bus: {msg}"))
}

/// Reads values of a signature from a little-endian buffer, offsets relative to an 8-aligned
/// start.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn align(&mut self, a: usize) -> Result<()> {
        let to = self.pos.div_ceil(a) * a;
        if to > self.buf.len() {
            return Err(proto("message truncated".into()));
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| proto("message truncated".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        self.align(8)?;
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len)?.to_vec();
        self.take(1)?; // the NUL
        String::from_utf8(bytes).map_err(|_| proto("string is not UTF-8".into()))
    }

    /// One complete type from the front of `sig`; returns the value and the rest of `sig`.
    fn value<'s>(&mut self, sig: &'s [u8], depth: u32) -> Result<(Value, &'s [u8])> {
        if depth > 64 {
            return Err(proto("values nested too deeply".into()));
        }
        let (&t, rest) = sig.split_first().ok_or_else(|| proto("signature ends early".into()))?;
        let v = match t {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' | b'q' => {
                self.align(2)?;
                self.take(2)?;
                Value::Other
            }
            b'i' => Value::I32(self.u32()? as i32),
            b'u' => Value::U32(self.u32()?),
            b'h' => {
                self.u32()?;
                Value::Other
            }
            b'x' => Value::I64(self.u64()? as i64),
            b't' => Value::U64(self.u64()?),
            b'd' => {
                self.u64()?;
                Value::Other
            }
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if t == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Sig(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                let (v, left) = self.value(inner.as_bytes(), depth + 1)?;
                if !left.is_empty() {
                    return Err(proto(format!("variant signature {inner:?} holds more than one type")));
                }
                Value::variant(v)
            }
            b'a' => {
                let elem_len = single_type_len(rest)?;
                let elem = &rest[..elem_len];
                let len = self.u32()? as usize;
                self.align(alignment(elem[0]))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.buf.len())
                    .ok_or_else(|| proto("array runs past the message".into()))?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem, depth + 1)?.0);
                }
                let elem_sig = String::from_utf8_lossy(elem).into_owned();
                return Ok((Value::Array(elem_sig, items), &rest[elem_len..]));
            }
            b'(' | b'{' => {
                self.align(8)?;
                let close = if t == b'(' { b')' } else { b'}' };
                let mut fields = Vec::new();
                let mut inner = rest;
                loop {
                    match inner.first() {
                        Some(c) if *c == close => break,
                        Some(_) => {
                            let (v, left) = self.value(inner, depth + 1)?;
                            fields.push(v);
                            inner = left;
                        }
                        None => return Err(proto("unclosed struct in signature".into())),
                    }
                }
                return Ok((Value::Struct(fields), &inner[1..]));
            }
            other => return Err(proto(format!("unknown type code {:?}", other as char))),
        };
        Ok((v, rest))
    }
}

/// The length of the first complete type in `sig`.
fn single_type_len(sig: &[u8]) -> Result<usize> {
    match sig.first() {
        None => Err(proto("signature ends early".into())),
        Some(b'a') => Ok(1 + single_type_len(&sig[1..])?),
        Some(b'(') | Some(b'{') => {
            let mut depth = 0;
            for (i, c) in sig.iter().enumerate() {
                match c {
                    b'(' | b'{' => depth += 1,
                    b')' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
            }
            Err(proto("unclosed struct in signature".into()))
        }
        Some(_) => Ok(1),
    }
}

/// Parses a whole body of signature `sig`.
pub fn unmarshal(buf: &[u8], sig: &str) -> Result<Vec<Value>> {
    let mut r = Reader { buf, pos: 0 };
    let mut rest = sig.as_bytes();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (v, left) = r.value(rest, 0)?;
        out.push(v);
        rest = left;
    }
    Ok(out)
}

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A received message: the header fields this client reads, and the body.
#[derive(Debug, Default)]
pub struct Message {
    pub kind: u8,
    /// The sender's serial (replies name it as theirs); only the tests look at it here.
    #[cfg_attr(not(test), allow(dead_code))]
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub body: Vec<Value>,
}

/// A method call's bytes.
pub fn method_call(
    serial: u32,
    destination: Option<&str>,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Value],
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut sig = String::new();
    for a in args {
        marshal(&mut body, a)?;
        sig.push_str(&a.signature());
    }
    let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::variant(v)]);
    let mut fields =
        vec![field(1, Value::Path(path.into())), field(2, Value::str(interface)), field(3, Value::str(member))];
    if let Some(d) = destination {
        fields.push(field(6, Value::str(d)));
    }
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut msg = vec![b'l', METHOD_CALL, 0, 1];
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    marshal(&mut msg, &Value::Array("(yv)".into(), fields))?;
    pad(&mut msg, 8);
    msg.extend_from_slice(&body);
    Ok(msg)
}

/// Parses one complete message; `Ok(None)` while `buf` holds only part of one. Returns the
/// message and how many bytes it took.
pub fn parse_message(buf: &[u8]) -> Result<Option<(Message, usize)>> {
    if buf.len() < 16 {
        return Ok(None);
    }
    if buf[0] != b'l' {
        return Err(proto("a big-endian message (this client reads little-endian only)".into()));
    }
    let le32 = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
    let (body_len, fields_len) = (le32(4), le32(12));
    if body_len > 1 << 27 || fields_len > 1 << 26 {
        return Err(proto("message larger than the protocol allows".into()));
    }
    let header_end = (16 + fields_len).div_ceil(8) * 8;
    let total = header_end + body_len;
    if buf.len() < total {
        return Ok(None);
    }
    let mut msg = Message { kind: buf[1], serial: le32(8) as u32, ..Default::default() };
    let fields = unmarshal(&buf[..16 + fields_len], "yyyyuua(yv)")?;
    let mut sig = String::new();
    if let Some(Value::Array(_, entries)) = fields.get(6) {
        for e in entries {
            let Value::Struct(f) = e else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else { continue };
            let text = v.as_str().map(String::from);
            match code {
                1 => msg.path = text,
                2 => msg.interface = text,
                3 => msg.member = text,
                4 => msg.error_name = text,
                5 => {
                    if let Value::U32(n) = **v {
                        msg.reply_serial = Some(n);
                    }
                }
                8 => sig = text.unwrap_or_default(),
                _ => {}
            }
        }
    }
    msg.body = unmarshal(&buf[header_end..total], &sig)?;
    Ok(Some((msg, total)))
}

/// A connection: systemd's private socket (peer to peer) or the system bus.
pub struct Conn {
    sock: UnixStream,
    serial: u32,
    /// On the bus, calls name their destination; on the private socket there is none.
    bus: bool,
    inbox: Vec<u8>,
    /// Messages that arrived while waiting for something else (signals before a reply).
    pub queued: VecDeque<Message>,
}

pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

impl Conn {
    /// Connects and authenticates (EXTERNAL, as our uid); on the bus, says Hello.
    pub fn connect(path: &str, bus: bool, deadline: Instant) -> Result<Conn> {
        let sock = UnixStream::connect(path).map_err(|e| Error::Systemd(format!("connect to {path}: {e}")))?;
        let mut conn = Conn { sock, serial: 0, bus, inbox: Vec::new(), queued: VecDeque::new() };
        conn.auth(deadline).map_err(|e| Error::Systemd(format!("{path}: {e}")))?;
        if bus {
            conn.call(deadline, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", &[])
                .map_err(|e| Error::Systemd(format!("{path}: Hello: {}", e.1)))?;
        }
        Ok(conn)
    }

    pub fn is_bus(&self) -> bool {
        self.bus
    }

    fn auth(&mut self, deadline: Instant) -> std::result::Result<(), String> {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\n");
        self.sock.write_all(hello.as_bytes()).map_err(|e| format!("authenticate: {e}"))?;
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            self.set_timeout(deadline)?;
            let mut b = [0u8; 1];
            match self.sock.read(&mut b) {
                Ok(0) => return Err("authenticate: the peer closed the connection".into()),
                Ok(_) => line.push(b[0]),
                Err(e) => return Err(format!("authenticate: {e}")),
            }
            if line.len() > 512 {
                return Err("authenticate: answer too long".into());
            }
        }
        let answer = String::from_utf8_lossy(&line);
        if !answer.starts_with("OK ") {
            return Err(format!("authentication refused: {}", answer.trim()));
        }
        self.sock.write_all(b"BEGIN\r\n").map_err(|e| format!("authenticate: {e}"))
    }

    fn set_timeout(&self, deadline: Instant) -> std::result::Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        self.sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(|e| e.to_string())
    }

    /// Sends a call and returns its serial.
    pub fn send(&mut self, dest: &str, path: &str, iface: &str, member: &str, args: &[Value]) -> Result<u32> {
        self.serial += 1;
        let bytes = method_call(self.serial, self.bus.then_some(dest), path, iface, member, args)?;
        self.sock.write_all(&bytes).map_err(|e| Error::Systemd(format!("send {member}: {e}")))?;
        Ok(self.serial)
    }

    /// The next message from the peer.
    pub fn receive(&mut self, deadline: Instant) -> std::result::Result<Message, String> {
        loop {
            if let Some((msg, used)) = parse_message(&self.inbox).map_err(|e| e.to_string())? {
                self.inbox.drain(..used);
                return Ok(msg);
            }
            self.set_timeout(deadline)?;
            let mut chunk = [0u8; 4096];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err("the peer closed the connection".into()),
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err("timed out".into())
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Calls a method and waits for its reply; other messages are queued. The error is
    /// (D-Bus error name or "", message).
    pub fn call(
        &mut self,
        deadline: Instant,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
    ) -> std::result::Result<Vec<Value>, (String, String)> {
        let serial = self.send(dest, path, iface, member, args).map_err(|e| (String::new(), e.to_string()))?;
        loop {
            let msg = self.receive(deadline).map_err(|e| (String::new(), format!("{member}: {e}")))?;
            if msg.reply_serial == Some(serial) && matches!(msg.kind, METHOD_RETURN | ERROR) {
                if msg.kind == ERROR {
                    let text = msg.body.first().and_then(Value::as_str).unwrap_or("").to_string();
                    return Err((msg.error_name.unwrap_or_default(), text));
                }
                return Ok(msg.body);
            }
            if msg.kind == SIGNAL {
                self.queued.push_back(msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_aligned_values() {
        let mut b = Vec::new();
        marshal(&mut b, &Value::Byte(7)).unwrap();
        marshal(&mut b, &Value::U32(1)).unwrap();
        assert_eq!(b, [7, 0, 0, 0, 1, 0, 0, 0]);
        let mut b = Vec::new();
        marshal(&mut b, &Value::str("ab")).unwrap();
        assert_eq!(b, [2, 0, 0, 0, b'a', b'b', 0]);
        marshal(&mut b, &Value::U64(5)).unwrap();
        assert_eq!(b.len(), 16);
        assert_eq!(b[8], 5);
        assert!(marshal(&mut Vec::new(), &Value::str("a\0b")).is_err());
    }

    #[test]
    fn array_length_excludes_the_padding_before_its_first_element() {
        let mut b = Vec::new();
        marshal(&mut b, &Value::Array("t".into(), vec![Value::U64(1), Value::U64(2)])).unwrap();
        // length 16, then 4 bytes of padding to 8, then the two u64s.
        assert_eq!(&b[..4], &16u32.to_le_bytes());
        assert_eq!(b.len(), 24);
        let mut b = Vec::new();
        marshal(&mut b, &Value::Array("t".into(), vec![])).unwrap();
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(marshal(&mut Vec::new(), &Value::Array("s".into(), vec![Value::U32(1)])).is_err());
    }

    #[test]
    fn start_transient_unit_signature_and_round_trip() {
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::prop("Delegate", Value::Bool(true)),
                Value::prop("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                Value::prop("MemoryMax", Value::U64(64 << 20)),
                Value::prop("AllowedCPUs", Value::Array("y".into(), vec![Value::Byte(3)])),
            ],
        );
        let aux = Value::Array("(sa(sv))".into(), vec![]);
        let args = [Value::str("berth-x.scope"), Value::str("fail"), props, aux];
        let sig: String = args.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
        let mut body = Vec::new();
        for a in &args {
            marshal(&mut body, a).unwrap();
        }
        assert_eq!(unmarshal(&body, &sig).unwrap(), args);
    }

    #[test]
    fn a_method_call_parses_back() {
        let bytes = method_call(
            9,
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            &[Value::str("a.scope"), Value::str("replace")],
        )
        .unwrap();
        assert_eq!(&bytes[..4], b"l\x01\x00\x01");
        let (msg, used) = parse_message(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(msg.serial, 9);
        assert_eq!(msg.member.as_deref(), Some("StopUnit"));
        assert_eq!(msg.path.as_deref(), Some("/org/freedesktop/systemd1"));
        assert_eq!(msg.body, [Value::str("a.scope"), Value::str("replace")]);
        // A partial message waits for more bytes.
        assert!(parse_message(&bytes[..bytes.len() - 1]).unwrap().is_none());
    }

    /// An error reply and a JobRemoved signal as systemd sends them.
    fn reply(kind: u8, fields: Vec<Value>, body: &[Value]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in body {
            marshal(&mut b, v).unwrap();
        }
        let mut msg = vec![b'l', kind, 1, 1];
        msg.extend_from_slice(&(b.len() as u32).to_le_bytes());
        msg.extend_from_slice(&77u32.to_le_bytes());
        marshal(&mut msg, &Value::Array("(yv)".into(), fields)).unwrap();
        pad(&mut msg, 8);
        msg.extend_from_slice(&b);
        msg
    }

    #[test]
    fn parses_errors_and_signals() {
        let f = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::variant(v)]);
        let err = reply(
            ERROR,
            vec![
                f(4, Value::str("org.freedesktop.systemd1.NoSuchUnit")),
                f(5, Value::U32(3)),
                f(8, Value::Sig("s".into())),
            ],
            &[Value::str("Unit a.scope not loaded.")],
        );
        let (m, _) = parse_message(&err).unwrap().unwrap();
        assert_eq!(m.kind, ERROR);
        assert_eq!(m.reply_serial, Some(3));
        assert_eq!(m.error_name.as_deref(), Some("org.freedesktop.systemd1.NoSuchUnit"));
        assert_eq!(m.body[0].as_str(), Some("Unit a.scope not loaded."));
        let body = [
            Value::U32(5),
            Value::Path("/org/freedesktop/systemd1/job/5".into()),
            Value::str("a.scope"),
            Value::str("done"),
        ];
        let sig = Value::Sig("uoss".into());
        let sigmsg = reply(SIGNAL, vec![f(3, Value::str("JobRemoved")), f(8, sig)], &body);
        let two = [sigmsg.clone(), err].concat();
        let (m, used) = parse_message(&two).unwrap().unwrap();
        assert_eq!(used, sigmsg.len());
        assert_eq!(m.member.as_deref(), Some("JobRemoved"));
        assert_eq!(m.body, body);
    }

    #[test]
    fn variants_and_dicts_parse() {
        let v = Value::variant(Value::Array("{sv}".into(), vec![]));
        let mut b = Vec::new();
        marshal(&mut b, &Value::variant(Value::str("/system.slice/x.scope"))).unwrap();
        assert_eq!(unmarshal(&b, "v").unwrap()[0].as_str(), Some("/system.slice/x.scope"));
        assert!(unmarshal(&[1, b'q', 0], "v").is_err());
        assert_eq!(v.signature(), "v");
        assert!(unmarshal(&[0xff, 0xff, 0xff, 0x0f], "as").is_err());
    }
}
