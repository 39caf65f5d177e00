//! The tester's IMAP client and what it makes of responses: each response
//! read whole (literals inlined), parsed into a tree of atoms, strings and
//! lists, and printed back in one canonical form, so that two servers'
//! answers compare as text once what may legitimately differ is masked
//! (the list and its RFC references: `tests/imap-diff/ALLOWED.md`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one command may take on either server.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    /// The tag of an IDLE waiting for its DONE.
    idling: Option<String>,
}

/// What a server answered to one command: its untagged responses, in the
/// order received, and the tagged completion.
#[derive(Debug, Default)]
pub struct Answer {
    pub untagged: Vec<Vec<u8>>,
    pub tagged: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let mut c = Client {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            idling: None,
        };
        let greeting = c.response()?;
        if !greeting.starts_with(b"* OK") {
            return Err(std::io::Error::other(format!(
                "greeting {:?}",
                String::from_utf8_lossy(&greeting)
            )));
        }
        Ok(c)
    }

    /// Sends `tag command` (the command may hold literals, sent
    /// non-synchronising) and reads to the tagged response. An IDLE
    /// returns at its continuation; [`Client::done`] ends it.
    pub fn command(&mut self, tag: &str, command: &[u8]) -> std::io::Result<Answer> {
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.writer.write_all(&line)?;
        let idle = command.eq_ignore_ascii_case(b"IDLE");
        let mut answer = Answer::default();
        loop {
            let r = self.response()?;
            if r.starts_with(b"+") {
                if idle {
                    self.idling = Some(tag.to_string());
                    answer.tagged = b"+".to_vec();
                    return Ok(answer);
                }
                continue; // a continuation for a literal we sent anyway
            }
            if r.starts_with(format!("{tag} ").as_bytes()) {
                answer.tagged = r;
                return Ok(answer);
            }
            answer.untagged.push(r);
        }
    }

    /// Ends an IDLE: everything that came during it and after DONE, to
    /// the IDLE's tagged response.
    pub fn done(&mut self) -> std::io::Result<Answer> {
        let tag = self
            .idling
            .take()
            .ok_or_else(|| std::io::Error::other("DONE without IDLE"))?;
        self.writer.write_all(b"DONE\r\n")?;
        let mut answer = Answer::default();
        loop {
            let r = self.response()?;
            if r.starts_with(format!("{tag} ").as_bytes()) {
                answer.tagged = r;
                return Ok(answer);
            }
            answer.untagged.push(r);
        }
    }

    /// One response: a line, and each literal it announces with the rest
    /// of the line after it. CRLFs are dropped except inside literals.
    fn response(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Err(std::io::Error::other(format!(
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&out)
                )));
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            out.extend_from_slice(&line);
            let Some(n) = literal_size(&line) else {
                return Ok(out);
            };
            out.extend_from_slice(b"\r\n");
            let mut data = vec![0; n];
            self.reader.read_exact(&mut data)?;
            out.extend_from_slice(&data);
        }
    }
}

/// The size of a literal announced at the end of `line`: `{n}` or `~{n}`.
fn literal_size(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

/// A response as a tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Node>),
}

/// Parses a response into nodes; a malformed one stays visible as atoms.
fn parse(r: &[u8]) -> Vec<Node> {
    fn go(r: &[u8], pos: &mut usize, depth: usize) -> Vec<Node> {
        let mut out = Vec::new();
        while *pos < r.len() {
            match r[*pos] {
                b' ' => *pos += 1,
                b'(' => {
                    *pos += 1;
                    out.push(Node::List(go(r, pos, depth + 1)));
                }
                b')' if depth > 0 => {
                    *pos += 1;
                    return out;
                }
                b'"' => {
                    *pos += 1;
                    let mut s = Vec::new();
                    while *pos < r.len() && r[*pos] != b'"' {
                        if r[*pos] == b'\\' && *pos + 1 < r.len() {
                            *pos += 1;
                        }
                        s.push(r[*pos]);
                        *pos += 1;
                    }
                    *pos += 1;
                    out.push(Node::Str(s));
                }
                b'{' | b'~' if literal_at(r, *pos).is_some() => {
                    let (start, n) = literal_at(r, *pos).unwrap_or_default();
                    let end = (start + n).min(r.len());
                    out.push(Node::Str(r[start..end].to_vec()));
                    *pos = end;
                }
                b'[' => {
                    // A response code opens; BODY[...] and friends are atoms.
                    *pos += 1;
                    out.push(Node::Atom("[".into()));
                }
                _ => {
                    let start = *pos;
                    let mut brackets = 0i32;
                    while *pos < r.len() {
                        let b = r[*pos];
                        if b == b'[' {
                            brackets += 1;
                        } else if b == b']' {
                            if brackets == 0 {
                                break;
                            }
                            brackets -= 1;
                        } else if matches!(b, b'(' | b')')
                            || (brackets == 0 && matches!(b, b' ' | b'"'))
                        {
                            break;
                        }
                        *pos += 1;
                    }
                    if *pos == start {
                        // A lone ']' closing a response code, or a stray ')'.
                        out.push(Node::Atom((r[*pos] as char).to_string()));
                        *pos += 1;
                    } else {
                        out.push(Node::Atom(
                            String::from_utf8_lossy(&r[start..*pos]).into_owned(),
                        ));
                    }
                }
            }
        }
        out
    }
    let mut pos = 0;
    go(r, &mut pos, 0)
}

/// A literal starting at `pos` (`{n}` or `~{n}` then CRLF): where its data
/// starts and its length.
fn literal_at(r: &[u8], pos: usize) -> Option<(usize, usize)> {
    let open = if r[pos] == b'~' { pos + 1 } else { pos };
    if r.get(open) != Some(&b'{') {
        return None;
    }
    let close = open + r[open..].iter().position(|&b| b == b'}')?;
    let n: usize = std::str::from_utf8(&r[open + 1..close])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()?;
    (r.get(close + 1..close + 3) == Some(b"\r\n")).then_some((close + 3, n))
}

fn print(nodes: &[Node], out: &mut String) {
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match n {
            Node::Atom(a) => out.push_str(a),
            Node::Str(s) if is_atom_safe(s) => out.push_str(&String::from_utf8_lossy(s)),
            Node::Str(s) => {
                out.push('"');
                for &b in s {
                    match b {
                        b'"' | b'\\' => {
                            out.push('\\');
                            out.push(b as char);
                        }
                        b'\r' => out.push_str("\\r"),
                        b'\n' => out.push_str("\\n\n    "),
                        0x20..=0x7e => out.push(b as char),
                        _ => out.push_str(&format!("\\x{b:02x}")),
                    }
                }
                out.push('"');
            }
            Node::List(l) => {
                out.push('(');
                print(l, out);
                out.push(')');
            }
        }
    }
}

/// A string that reads the same as an atom: quoting it or not is the
/// server's choice (RFC 9051 §4.3).
fn is_atom_safe(s: &[u8]) -> bool {
    !s.is_empty()
        && !s.eq_ignore_ascii_case(b"NIL")
        && s.iter().all(|&b| {
            b.is_ascii_graphic() && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\' | b'[' | b']')
        })
}

/// `* STATUS mailbox (...)`: the list after the mailbox name.
fn is_status_list(i: usize, nodes: &[Node]) -> bool {
    i == 3 && matches!(&nodes[1], Node::Atom(a) if a.eq_ignore_ascii_case("STATUS"))
}

fn lowercase(n: &mut Node) {
    match n {
        Node::Atom(a) => *a = a.to_ascii_lowercase(),
        Node::Str(s) => s.make_ascii_lowercase(),
        Node::List(l) => l.iter_mut().for_each(lowercase),
    }
}

/// The flags of an untagged `FLAGS (...)` response.
pub fn announced_flags(response: &[u8]) -> Option<Vec<String>> {
    let nodes = parse(response);
    match (nodes.first(), nodes.get(1), nodes.get(2)) {
        (Some(Node::Atom(star)), Some(Node::Atom(f)), Some(Node::List(l)))
            if star == "*" && f.eq_ignore_ascii_case("FLAGS") =>
        {
            Some(atoms(l))
        }
        _ => None,
    }
}

/// The flags a `* n FETCH (... FLAGS (...) ...)` response shows.
pub fn fetched_flags(response: &[u8]) -> Option<Vec<String>> {
    let nodes = parse(response);
    let Some(Node::List(items)) = nodes.get(3) else {
        return None;
    };
    if !matches!(nodes.get(2), Some(Node::Atom(a)) if a.eq_ignore_ascii_case("FETCH")) {
        return None;
    }
    items.chunks(2).find_map(|pair| match pair {
        [Node::Atom(k), Node::List(l)] if k.eq_ignore_ascii_case("FLAGS") => Some(atoms(l)),
        _ => None,
    })
}

fn atoms(l: &[Node]) -> Vec<String> {
    l.iter()
        .filter_map(|n| match n {
            Node::Atom(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

/// Keys after which a number is the server's own choice.
const SERVER_NUMBERS: &[&str] = &[
    "UIDVALIDITY",
    "HIGHESTMODSEQ",
    "MODSEQ",
    "APPENDUID",
    "COPYUID",
];

/// The canonical text of one response to `command`, with what may differ
/// masked.
pub fn normalize(response: &[u8], command: &str, rev2: bool) -> Option<String> {
    let mut nodes = parse(response);
    list_attributes(&mut nodes, command);
    // Untagged CAPABILITY, and ENABLED lists, name each server's own
    // extensions.
    if matches!(nodes.get(1), Some(Node::Atom(a)) if a.eq_ignore_ascii_case("CAPABILITY")) {
        return None;
    }
    // OBJECTID's MAILBOXID (RFC 8474) is Tern's; HIGHESTMODSEQ before
    // CONDSTORE is enabled is the server's choice (RFC 7162 §3.1.2.1).
    if nodes.len() >= 4
        && matches!(&nodes[2], Node::Atom(a) if a == "[")
        && matches!(&nodes[3], Node::Atom(a) if a == "MAILBOXID" || a == "HIGHESTMODSEQ")
        && matches!(&nodes[0], Node::Atom(a) if a == "*")
    {
        return None;
    }
    drop_status_text(&mut nodes);
    mask(&mut nodes, rev2);
    let mut out = String::new();
    print(&nodes, &mut out);
    Some(out)
}

/// LIST and LSUB attributes a server may add or leave out: special-use
/// ones in an extended LIST that did not ask for them (RFC 6154 §2), child
/// information where CHILDREN was not asked for (RFC 5258 §4, RFC 3348
/// lets LSUB carry it or not).
fn list_attributes(nodes: &mut [Node], command: &str) {
    let kind = match nodes.get(1) {
        Some(Node::Atom(a)) if a.eq_ignore_ascii_case("LIST") => "LIST",
        Some(Node::Atom(a)) if a.eq_ignore_ascii_case("LSUB") => "LSUB",
        _ => return,
    };
    let upper = command.to_ascii_uppercase();
    let extended = upper.starts_with("LIST (") || upper.contains(" RETURN (");
    let strip_special = extended && !upper.contains("SPECIAL-USE");
    let strip_children = kind == "LSUB" || (extended && !upper.contains("CHILDREN"));
    if let Some(Node::List(attrs)) = nodes.get_mut(2) {
        attrs.retain(|n| {
            let Node::Atom(a) = n else { return true };
            let a = a.to_ascii_lowercase();
            let special = [
                "\\all",
                "\\archive",
                "\\drafts",
                "\\flagged",
                "\\junk",
                "\\sent",
                "\\trash",
            ]
            .contains(&a.as_str());
            let children = a == "\\haschildren" || a == "\\hasnochildren";
            !(special && strip_special || children && strip_children)
        });
    }
}

/// `tag OK [code] text`: the text is for humans (RFC 9051 §7.1); the
/// CAPABILITY code lists each server's extensions.
fn drop_status_text(nodes: &mut Vec<Node>) {
    let is_status = matches!(nodes.get(1), Some(Node::Atom(a))
        if ["OK", "NO", "BAD", "BYE", "PREAUTH"].iter().any(|s| a.eq_ignore_ascii_case(s)));
    if !is_status {
        return;
    }
    let mut keep = 2;
    if matches!(nodes.get(2), Some(Node::Atom(a)) if a == "[") {
        if let Some(close) = nodes.iter().position(|n| *n == Node::Atom("]".into())) {
            keep = close + 1;
            // CAPABILITY lists each server's extensions; CLIENTBUG is an
            // optional hint, as are the codes of a NO or BAD (RFC 5530)
            // but TRYCREATE, which RFC 9051 §6.3.12 requires.
            let failed = matches!(nodes.get(1), Some(Node::Atom(s)) if s == "NO" || s == "BAD");
            if matches!(nodes.get(3), Some(Node::Atom(a))
                if a.eq_ignore_ascii_case("CAPABILITY")
                    || a.eq_ignore_ascii_case("CLIENTBUG")
                    || (failed && !a.eq_ignore_ascii_case("TRYCREATE")))
            {
                keep = 2;
            }
        }
    }
    nodes.truncate(keep);
}

/// Whether an IMAP date-time (`dd-Mon-yyyy hh:mm:ss +zzzz`, RFC 9051
/// §9) is within five minutes of the clock.
fn is_about_now(date: &[u8]) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    std::str::from_utf8(date)
        .ok()
        .and_then(date_time_unix)
        .is_some_and(|t| (t - now).abs() < 300)
}

/// An IMAP date-time as Unix time.
fn date_time_unix(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (date, rest) = s.trim_start().split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut d = date.split('-');
    let day: i64 = d.next()?.trim().parse().ok()?;
    let name = d.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))? as i64 + 1;
    let year: i64 = d.next()?.parse().ok()?;
    let mut t = time.split(':').map(|n| n.parse::<i64>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zone: i64 = zone.get(1..)?.parse().ok()?;
    let offset = sign * (zone / 100 * 3600 + zone % 100 * 60);
    // Days from 1970-01-01 to the date (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec - offset)
}

#[test]
fn date_times_are_read_as_unix_time() {
    assert_eq!(date_time_unix("01-Jan-1970 00:00:00 +0000"), Some(0));
    assert_eq!(
        date_time_unix("21-Nov-2026 22:02:00 +0000"),
        Some(1_795_298_520)
    );
    assert_eq!(date_time_unix(" 1-Jan-1970 01:00:00 +0100"), Some(0));
    assert_eq!(date_time_unix("31-Dec-1969 19:00:00 -0500"), Some(0));
    assert_eq!(
        date_time_unix("29-Feb-2024 12:00:00 +0000"),
        Some(1_709_208_000)
    );
    assert_eq!(date_time_unix("not a date"), None);
    assert!(!is_about_now(b"01-Jan-1970 00:00:00 +0000"));
}

fn mask(nodes: &mut [Node], rev2: bool) {
    // FETCH's items come in any order (RFC 9051 §7.5.2): sort the pairs.
    let is_fetch = |i: usize, nodes: &[Node]| {
        i >= 1 && matches!(&nodes[i - 1], Node::Atom(a) if a.eq_ignore_ascii_case("FETCH"))
    };
    for i in 0..nodes.len() {
        let prev = if i > 0 {
            match &nodes[i - 1] {
                Node::Atom(a) => a.to_ascii_uppercase(),
                _ => String::new(),
            }
        } else {
            String::new()
        };
        if SERVER_NUMBERS.contains(&prev.as_str()) {
            match &mut nodes[i] {
                Node::Atom(a) if a.chars().all(|c| c.is_ascii_digit()) => *a = format!("<{prev}>"),
                Node::List(l) => {
                    for n in l.iter_mut() {
                        if let Node::Atom(a) = n {
                            if a.chars().all(|c| c.is_ascii_digit()) {
                                *a = format!("<{prev}>");
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // A message added during the session without a date gets "now"
        // from each server's clock, read a moment apart.
        if prev == "INTERNALDATE" {
            if let Node::Str(date) = &nodes[i] {
                if is_about_now(date) {
                    nodes[i] = Node::Atom("<now>".into());
                }
            }
        }
        let fetch = is_fetch(i, nodes);
        let status_list = is_status_list(i, nodes);
        // MIME types, subtypes, encodings and parameter names are
        // case-insensitive (RFC 2045 §5.1, §6.1): BODYSTRUCTURE compares
        // without case.
        if matches!(prev.as_str(), "BODYSTRUCTURE" | "BODY") {
            lowercase(&mut nodes[i]);
        }
        // Flag lists and LIST attributes are sets (RFC 9051 §7.3.1, §2.3.2).
        let is_set = matches!(prev.as_str(), "FLAGS" | "PERMANENTFLAGS" | "LIST" | "LSUB");
        if let Node::List(l) = &mut nodes[i] {
            mask(l, rev2);
            // \Recent is compared in IMAP4rev1 sessions only.
            if rev2 {
                l.retain(|n| !matches!(n, Node::Atom(a) if a.eq_ignore_ascii_case("\\Recent")));
            }
            if is_set {
                // Tern announces the registered keywords clients set
                // without asking, in use or not (RFC 9051 §2.3.2).
                if matches!(prev.as_str(), "FLAGS" | "PERMANENTFLAGS") {
                    l.retain(|n| {
                        !matches!(n, Node::Atom(a)
                            if ["$Forwarded", "$Junk", "$MDNSent", "$NotJunk"].contains(&a.as_str()))
                    });
                }
                l.sort_by_key(|n| format!("{n:?}").to_ascii_lowercase());
            }
            // FETCH items and STATUS items come in any order (RFC 9051
            // §7.5.2, §7.2.4); an item asked for twice may come once.
            if fetch || status_list {
                let mut pairs: Vec<Vec<Node>> = l.chunks(2).map(|c| c.to_vec()).collect();
                pairs.sort_by_key(|p| format!("{:?}", p[0]).to_ascii_uppercase());
                pairs.dedup();
                *l = pairs.concat();
            }
        }
    }
}
