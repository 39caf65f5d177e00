//! A milter client (`[milter]`): the Sendmail/Postfix mail filter protocol
//! (version 6, as libmilter and Postfix speak it), so filters an
//! administrator already runs — rspamd, OpenDKIM, clamav-milter — judge
//! and change Tern's mail as they would Postfix's.
//!
//! One [`Screen`] per configured filter. At the end of each message the
//! whole SMTP conversation is replayed to the filter on a fresh
//! connection: option negotiation, CONNECT, HELO, MAIL, RCPT, DATA, the
//! header fields, end of header, the body in chunks, end of body; then
//! QUIT. Every packet is a 4-byte big-endian length, a command byte and
//! its data. The filter answers each step it did not opt out of with
//! continue, accept, reject, temporary failure, discard or a reply code,
//! and at the end of the body may first ask for changes: header fields
//! added, inserted or changed, the body replaced, quarantine.
//!
//! What Tern does with the answers: reject → 550 5.7.1 (or the filter's own
//! reply), temporary failure → 451 4.7.1, discard → accepted and dropped,
//! quarantine → delivered into Junk; header and body changes are applied to
//! the stored copy. Recipient and sender changes are not supported (logged).

use crate::screen::{Screen, ScreenInput, Screening};
use async_trait::async_trait;
use std::time::Duration;
use tern_core::config::{MilterConfig, MilterScope, OnFailure};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version we speak.
const VERSION: u32 = 6;
/// Actions we allow the filter: add/change headers, replace the body,
/// quarantine (SMFIF_ADDHDRS | CHGBODY | CHGHDRS | QUARANTINE).
const ACTIONS: u32 = 0x01 | 0x02 | 0x10 | 0x20;
/// Steps the filter may skip or answer without a reply: every one of
/// them (SMFIP_* 0x1..0x100000, as libmilter 8.14 knows them).
const PROTOCOL: u32 = 0x001F_FFFF;
/// The largest packet accepted from a filter (a replaced body comes in
/// chunks; headers are small).
const MAX_PACKET: usize = 1024 * 1024;
/// Body bytes per BODY packet (libmilter's MILTER_CHUNK_SIZE).
const CHUNK: usize = 65535;

// SMFIP_* bits: the filter asks not to be sent a step, or not to reply.
const NOCONNECT: u32 = 0x1;
const NOHELO: u32 = 0x2;
const NOMAIL: u32 = 0x4;
const NORCPT: u32 = 0x8;
const NOBODY: u32 = 0x10;
const NOHDRS: u32 = 0x20;
const NOEOH: u32 = 0x40;
const NR_HDR: u32 = 0x80;
const NODATA: u32 = 0x200;
const NR_CONN: u32 = 0x1000;
const NR_HELO: u32 = 0x2000;
const NR_MAIL: u32 = 0x4000;
const NR_RCPT: u32 = 0x8000;
const NR_DATA: u32 = 0x10000;
const NR_EOH: u32 = 0x40000;
const NR_BODY: u32 = 0x80000;
const HDR_LEADSPC: u32 = 0x100000;

/// A filter's verdict on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Take it (with `changes` applied).
    Accept,
    /// Refuse: code, enhanced status, text.
    Reject(u16, String, String),
    /// Take it and drop it.
    Discard,
}

/// What the filter asked to change at the end of the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// `(name, value)` to add at the end of the header.
    pub add: Vec<(String, String)>,
    /// `(index, name, value)` to insert (0: first).
    pub insert: Vec<(u32, String, String)>,
    /// `(occurrence, name, value)`: the nth field of that name (1-based)
    /// gets `value`; an empty value removes it.
    pub change: Vec<(u32, String, String)>,
    /// The whole new body, when replaced.
    pub body: Option<Vec<u8>>,
    /// Quarantine, with the filter's reason.
    pub quarantine: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MilterError {
    #[error("connecting to milter {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("talking to the milter: {0}")]
    Io(#[from] std::io::Error),
    #[error("the milter broke the protocol: {0}")]
    Protocol(String),
    #[error("the milter took longer than {0} s")]
    Timeout(u64),
}

/// One configured filter.
pub struct Milter {
    address: String,
    config: MilterConfig,
    /// Our host name, for the `j` macro.
    hostname: String,
}

/// The message and its envelope as the filter is shown them.
pub struct Conversation<'a> {
    pub client_name: &'a str,
    pub client_ip: Option<std::net::IpAddr>,
    pub helo: &'a str,
    pub mail_from: &'a str,
    pub rcpt_to: Vec<String>,
    pub message: &'a [u8],
    /// Our host name (the `j` macro) and queue id (`i`).
    pub hostname: &'a str,
    pub queue_id: &'a str,
}

impl Milter {
    pub fn new(address: String, config: MilterConfig, hostname: String) -> Milter {
        Milter {
            address,
            config,
            hostname,
        }
    }

    /// Replays the conversation to the filter; its verdict and changes.
    pub async fn run(&self, c: &Conversation<'_>) -> Result<(Verdict, Changes), MilterError> {
        let limit = Duration::from_secs(self.config.timeout_secs);
        let address = self.address.as_str();
        let work = async {
            if let Some(path) = address
                .strip_prefix("unix:")
                .or_else(|| address.starts_with('/').then_some(address))
            {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| MilterError::Connect(address.into(), e))?;
                session(stream, c).await
            } else {
                let tcp = address.strip_prefix("inet:").unwrap_or(address);
                let stream = tokio::net::TcpStream::connect(tcp)
                    .await
                    .map_err(|e| MilterError::Connect(address.into(), e))?;
                session(stream, c).await
            }
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| MilterError::Timeout(self.config.timeout_secs))?
    }
}

/// One packet: command byte and data.
struct Packet {
    command: u8,
    data: Vec<u8>,
}

async fn send(io: &mut (impl AsyncWrite + Unpin), command: u8, data: &[u8]) -> std::io::Result<()> {
    // Our packets are bounded (CHUNK, header fields, addresses).
    let len = u32::try_from(data.len() + 1).unwrap_or(u32::MAX);
    let mut packet = Vec::with_capacity(5 + data.len());
    packet.extend_from_slice(&len.to_be_bytes());
    packet.push(command);
    packet.extend_from_slice(data);
    io.write_all(&packet).await
}

async fn receive(io: &mut (impl AsyncRead + Unpin)) -> Result<Packet, MilterError> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_PACKET {
        return Err(MilterError::Protocol(format!("a packet of {len} bytes")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(Packet {
        command: buf[0],
        data: buf.split_off(1),
    })
}

/// NUL-terminated strings, concatenated.
fn cstrings(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        // A NUL inside would end the string early; none belongs there.
        out.extend(p.iter().filter(|&&b| b != 0));
        out.push(0);
    }
    out
}

/// The reply to one step: `None` to go on, else the verdict that ends the
/// conversation early.
async fn step_reply(io: &mut (impl AsyncRead + Unpin)) -> Result<Option<Verdict>, MilterError> {
    loop {
        let p = receive(io).await?;
        match p.command {
            b'c' => return Ok(None),
            // "progress": the filter is still working.
            b'p' => continue,
            b'a' => return Ok(Some(Verdict::Accept)),
            other => return final_verdict(other, &p.data).map(Some),
        }
    }
}

fn final_verdict(command: u8, data: &[u8]) -> Result<Verdict, MilterError> {
    match command {
        b'a' | b'c' => Ok(Verdict::Accept),
        b'r' => Ok(Verdict::Reject(
            550,
            "5.7.1".into(),
            "message refused by a filter".into(),
        )),
        b't' => Ok(Verdict::Reject(
            451,
            "4.7.1".into(),
            "a filter asks to try again later".into(),
        )),
        b'd' => Ok(Verdict::Discard),
        b'y' => Ok(parse_replycode(data)),
        other => Err(MilterError::Protocol(format!(
            "unexpected reply {:?}",
            char::from(other)
        ))),
    }
}

/// `SMFIR_REPLYCODE`: "550 5.7.1 text" (NUL-terminated). Only 4xx and 5xx
/// codes are honoured; anything else becomes a plain 550.
pub fn parse_replycode(data: &[u8]) -> Verdict {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let text = String::from_utf8_lossy(&data[..end]);
    let mut words = text.splitn(3, ' ');
    let code = words.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code @ 400..=599) => {
            let rest: Vec<&str> = words.collect();
            let (status, text) = match rest.first() {
                Some(s) if is_enhanced(s, code) => (
                    s.to_string(),
                    rest.get(1).copied().unwrap_or("").to_string(),
                ),
                _ => (
                    if code >= 500 { "5.7.1" } else { "4.7.1" }.to_string(),
                    rest.join(" "),
                ),
            };
            // Multi-line replies arrive with CRLFs and "550-" prefixes;
            // keep one line of text.
            let text = text.lines().next().unwrap_or("").trim().to_string();
            let text = if text.is_empty() {
                "message refused by a filter".to_string()
            } else {
                text
            };
            Verdict::Reject(code, status, text)
        }
        _ => Verdict::Reject(550, "5.7.1".into(), "message refused by a filter".into()),
    }
}

fn is_enhanced(s: &str, code: u16) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0] == (code / 100).to_string()
}

async fn session(
    mut io: impl AsyncRead + AsyncWrite + Unpin,
    c: &Conversation<'_>,
) -> Result<(Verdict, Changes), MilterError> {
    // Option negotiation.
    let mut optneg = Vec::new();
    optneg.extend_from_slice(&VERSION.to_be_bytes());
    optneg.extend_from_slice(&ACTIONS.to_be_bytes());
    optneg.extend_from_slice(&PROTOCOL.to_be_bytes());
    send(&mut io, b'O', &optneg).await?;
    let answer = receive(&mut io).await?;
    if answer.command != b'O' || answer.data.len() < 12 {
        return Err(MilterError::Protocol("no option negotiation".into()));
    }
    let word = |i: usize| {
        u32::from_be_bytes([
            answer.data[i],
            answer.data[i + 1],
            answer.data[i + 2],
            answer.data[i + 3],
        ])
    };
    let (version, protocol) = (word(0), word(8));
    if version < 2 {
        return Err(MilterError::Protocol(format!("version {version}")));
    }
    let skip = |bit: u32| protocol & bit != 0;

    macro_rules! step {
        ($command:expr, $data:expr, $no:expr, $no_reply:expr) => {
            if !skip($no) {
                send(&mut io, $command, $data).await?;
                if !skip($no_reply) {
                    if let Some(verdict) = step_reply(&mut io).await? {
                        let _ = send(&mut io, b'Q', &[]).await;
                        return Ok((verdict, Changes::default()));
                    }
                }
            }
        };
    }

    // Macros the filters commonly read: our name, the queue id.
    let mut macros = vec![b'C'];
    macros.extend(cstrings(&[
        b"j",
        c.hostname.as_bytes(),
        b"{daemon_name}",
        b"tern",
        b"i",
        c.queue_id.as_bytes(),
    ]));
    send(&mut io, b'D', &macros).await?;

    let (family, address) = match c.client_ip {
        Some(std::net::IpAddr::V4(ip)) => (b'4', ip.to_string()),
        Some(std::net::IpAddr::V6(ip)) => (b'6', ip.to_string()),
        None => (b'U', String::new()),
    };
    let mut connect = cstrings(&[c.client_name.as_bytes()]);
    connect.push(family);
    if family != b'U' {
        connect.extend_from_slice(&25u16.to_be_bytes());
    }
    connect.extend(cstrings(&[address.as_bytes()]));
    step!(b'C', &connect, NOCONNECT, NR_CONN);
    step!(b'H', &cstrings(&[c.helo.as_bytes()]), NOHELO, NR_HELO);
    let from = format!("<{}>", c.mail_from);
    step!(b'M', &cstrings(&[from.as_bytes()]), NOMAIL, NR_MAIL);
    for rcpt in &c.rcpt_to {
        let to = format!("<{rcpt}>");
        step!(b'R', &cstrings(&[to.as_bytes()]), NORCPT, NR_RCPT);
    }
    if version >= 4 {
        step!(b'T', &[], NODATA, NR_DATA);
    }
    let (header, body) = split_message(c.message);
    for (name, value) in unfolded_fields(header) {
        // Without HDR_LEADSPC the filter expects the value without the
        // space after the colon, as Sendmail sends it.
        let value = if skip(HDR_LEADSPC) {
            value.as_str()
        } else {
            value.trim_start_matches([' ', '\t'])
        };
        step!(
            b'L',
            &cstrings(&[name.as_bytes(), value.as_bytes()]),
            NOHDRS,
            NR_HDR
        );
    }
    step!(b'N', &[], NOEOH, NR_EOH);
    if !skip(NOBODY) {
        for chunk in body.chunks(CHUNK) {
            step!(b'B', chunk, NOBODY, NR_BODY);
        }
    }
    send(&mut io, b'E', &[]).await?;
    let mut changes = Changes::default();
    let verdict = loop {
        let p = receive(&mut io).await?;
        match p.command {
            b'p' => {}
            b'h' => {
                let [name, value] = two_strings(&p.data)?;
                changes.add.push((name, value));
            }
            b'i' | b'm' if p.data.len() >= 4 => {
                let index = u32::from_be_bytes([p.data[0], p.data[1], p.data[2], p.data[3]]);
                let [name, value] = two_strings(&p.data[4..])?;
                if p.command == b'i' {
                    changes.insert.push((index, name, value));
                } else {
                    changes.change.push((index, name, value));
                }
            }
            b'b' => changes
                .body
                .get_or_insert_with(Vec::new)
                .extend_from_slice(&p.data),
            b'q' => {
                let end = p.data.iter().position(|&b| b == 0).unwrap_or(p.data.len());
                changes.quarantine = Some(String::from_utf8_lossy(&p.data[..end]).into_owned());
            }
            b'+' | b'-' | b'2' | b'e' => {
                tracing::warn!(
                    "milter asked to change the envelope ({}); not supported, ignored",
                    char::from(p.command)
                );
            }
            other => break final_verdict(other, &p.data)?,
        }
    };
    let _ = send(&mut io, b'Q', &[]).await;
    Ok((verdict, changes))
}

fn two_strings(data: &[u8]) -> Result<[String; 2], MilterError> {
    let mut parts = data.split(|&b| b == 0);
    let name = parts.next().unwrap_or_default();
    let value = parts.next().unwrap_or_default();
    if name.is_empty() {
        return Err(MilterError::Protocol(
            "a header change without a name".into(),
        ));
    }
    Ok([
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ])
}

/// The header section (without the empty line) and the body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    let fields = crate::fields::header_fields(message);
    let end = fields.last().map_or(0, |(r, _)| r.end);
    let rest = &message[end..];
    let body = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
        .unwrap_or(rest);
    (&message[..end], body)
}

/// `(name, value)` of each field; a folded value keeps its line breaks as
/// bare LF, as Postfix passes them to filters.
fn unfolded_fields(header: &[u8]) -> Vec<(String, String)> {
    crate::fields::header_fields(header)
        .into_iter()
        .map(|(range, name)| {
            let field = &header[range];
            let value = &field[(name.len() + 1).min(field.len())..];
            let value = String::from_utf8_lossy(value)
                .replace("\r\n", "\n")
                .trim_end_matches('\n')
                .to_string();
            (String::from_utf8_lossy(name).into_owned(), value)
        })
        .collect()
}

/// `message` with `changes` applied.
pub fn apply(message: &[u8], changes: &Changes) -> Vec<u8> {
    let (header, body) = split_message(message);
    let mut fields: Vec<(String, Vec<u8>)> = crate::fields::header_fields(header)
        .into_iter()
        .map(|(range, name)| {
            (
                String::from_utf8_lossy(name).into_owned(),
                header[range].to_vec(),
            )
        })
        .collect();
    let render = |name: &str, value: &str| {
        let value = value.replace("\r\n", "\n").replace('\n', "\r\n");
        let space = if value.starts_with([' ', '\t']) {
            ""
        } else {
            " "
        };
        format!("{name}:{space}{value}\r\n").into_bytes()
    };
    for (occurrence, name, value) in &changes.change {
        let found = fields
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name))
            .nth((*occurrence).max(1) as usize - 1)
            .map(|(i, _)| i);
        match (found, value.is_empty()) {
            (Some(i), true) => {
                fields.remove(i);
            }
            (Some(i), false) => fields[i].1 = render(name, value),
            // Changing a field that is not there adds it (libmilter).
            (None, false) => fields.push((name.clone(), render(name, value))),
            (None, true) => {}
        }
    }
    for (index, name, value) in &changes.insert {
        let at = (*index as usize).min(fields.len());
        fields.insert(at, (name.clone(), render(name, value)));
    }
    for (name, value) in &changes.add {
        fields.push((name.clone(), render(name, value)));
    }
    let mut out = Vec::with_capacity(message.len() + 256);
    for (_, raw) in &fields {
        out.extend_from_slice(raw);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(changes.body.as_deref().unwrap_or(body));
    out
}

#[async_trait]
impl Screen for Milter {
    fn name(&self) -> &str {
        "milter"
    }

    async fn screen(&self, input: &ScreenInput<'_>) -> Screening {
        let envelope = input.envelope;
        if self.config.scope == MilterScope::Inbound
            && envelope.origin != crate::delivery::Origin::Inbound
        {
            return Screening::pass();
        }
        let helo = input.trace.map(|t| t.helo.as_str()).unwrap_or("localhost");
        let ip = input.trace.map(|t| t.peer);
        let client_name = ip.map(|ip| format!("[{ip}]")).unwrap_or_default();
        let rcpt_to = envelope
            .local
            .iter()
            .map(|r| r.address.clone())
            .chain(envelope.remote.iter().map(|r| r.address.clone()))
            .collect();
        let queue_id = crate::headers::new_id();
        let conversation = Conversation {
            client_name: &client_name,
            client_ip: ip,
            helo,
            mail_from: &envelope.mail_from,
            rcpt_to,
            message: input.raw,
            hostname: &self.hostname,
            queue_id: &queue_id,
        };
        match self.run(&conversation).await {
            Ok((Verdict::Reject(code, status, text), _)) => {
                tracing::info!(
                    "milter {}: refused <{}>: {code} {status} {text}",
                    self.address,
                    envelope.mail_from
                );
                Screening::refuse(code, &status, text)
            }
            Ok((Verdict::Discard, _)) => {
                tracing::info!(
                    "milter {}: discarded a message from <{}>",
                    self.address,
                    envelope.mail_from
                );
                Screening {
                    discard: true,
                    ..Screening::default()
                }
            }
            Ok((Verdict::Accept, changes)) => {
                if changes == Changes::default() {
                    return Screening::pass();
                }
                Screening {
                    rewrite: Some(apply(input.raw, &changes)),
                    quarantine: changes.quarantine.is_some(),
                    ..Screening::default()
                }
            }
            Err(e) => match self.config.on_failure {
                OnFailure::Defer => {
                    tracing::error!("{e}; mail deferred (milter.on_failure = \"defer\")");
                    Screening::refuse(
                        451,
                        "4.7.1",
                        "a mail filter is unavailable; try again later",
                    )
                }
                OnFailure::Accept => {
                    tracing::error!(
                        "{e}; mail accepted unfiltered (milter.on_failure = \"accept\")"
                    );
                    Screening::pass()
                }
            },
        }
    }
}

/// One fuzzing input (fuzz/fuzz_targets/milter.rs): the bytes as a
/// filter's reply code and header-change packets, and as a message the
/// changes are applied to; panics are the bugs.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let _ = parse_replycode(data);
    let mut changes = Changes::default();
    for packet in data.split(|&b| b == b'\n') {
        if let Ok([name, value]) = two_strings(packet) {
            let index = packet.first().copied().unwrap_or(0) as u32;
            match index % 4 {
                0 => changes.add.push((name, value)),
                1 => changes.insert.push((index, name, value)),
                2 => changes.change.push((index, name, value)),
                _ => changes.body = Some(packet.to_vec()),
            }
        }
    }
    let _ = apply(b"From: a@b\r\nSubject: s\r\n\r\nbody\r\n", &changes);
    let fixed = Changes {
        add: vec![("X-A".into(), "1".into())],
        insert: vec![(1, "X-B".into(), "2\n\tfolded".into())],
        change: vec![
            (1, "Subject".into(), String::new()),
            (2, "From".into(), "x".into()),
        ],
        ..Changes::default()
    };
    let _ = apply(data, &fixed);
    let _ = unfolded_fields(data);
}

/// Replays the seed corpus of the `milter` fuzz target (fuzz/corpus/).
#[cfg(test)]
mod fuzz_corpus {
    #[test]
    fn milter() {
        tern_core::fuzz_corpus::replay("milter", super::fuzz_one);
    }
}

#[cfg(test)]
mod tests;
