//! One IMAP connection: reading whole commands (literals included), the
//! connection states of RFC 9051 §3, dispatching to a file per command
//! group, and tagged replies.
//!
//! Untagged updates about the selected mailbox (EXISTS, EXPUNGE, FETCH
//! FLAGS) are produced by [`Session::sync`] before each tagged reply, never
//! while a FETCH, STORE or SEARCH by sequence number runs (RFC 9051 §7.5.1).

mod auth;
mod binary;
#[cfg(test)]
pub(crate) use binary::encode_binary_parts;
mod fetch;
mod idle;
#[cfg(test)]
mod in_memory_tests;
mod mailboxes;
mod messages;
mod search;
mod selected;
mod sort;
mod spooled;

use crate::parse::{self, CommandBody, ParseError};
use crate::{ImapServer, Mode};
use selected::Selected;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::admission::{self, ConnectionSlot, LimitExceeded};
pub(crate) use tern_core::io::End;
use tern_core::io::{Conn, Duplex};
use tern_store::Account;
use tokio::sync::watch;

/// A command line (between literals) longer than this is refused.
const MAX_LINE: usize = 64 * 1024;
/// Before login, literals are small: a login and a password, not a message
/// (RFC 9051 §4.3, and a memory bound for unauthenticated peers).
const MAX_LITERAL_BEFORE_LOGIN: u64 = 8 * 1024;
/// Before login a command is LOGIN, AUTHENTICATE, STARTTLS, CAPABILITY...:
/// this holds any of them many times over, and bounds what an
/// unauthenticated peer can make us hold for one command, all its lines and
/// literals together (a command continued over endless `{0+}` lines once
/// held hundreds of megabytes).
const MAX_COMMAND_BEFORE_LOGIN: usize = 64 * 1024;
/// After login the largest command is an APPEND of one message of the
/// configured maximum size; this much more is allowed for the rest of the
/// command (flags, dates, MULTIAPPEND's further messages).
const COMMAND_SLACK_AFTER_LOGIN: u64 = 1024 * 1024;
/// RFC 9051 §5.4: the autologout timer is at least 30 minutes once logged in.
const MIN_IDLE_LOGGED_IN: Duration = Duration::from_secs(30 * 60);
/// Bad commands in a row before the client gets BYE.
const MAX_BAD_COMMANDS: usize = 20;

/// A command refused while it was read.
pub(crate) struct Refused {
    why: String,
    /// What was read of it, for its tag.
    start: Vec<u8>,
    /// The connection must end: the rest of the command cannot be told
    /// from the next one (it may never end).
    fatal: bool,
    /// Not the client's fault (the server's disk is full): `NO`, not `BAD`.
    temporary: bool,
}

impl Refused {
    fn new(why: &str, start: Vec<u8>) -> Refused {
        Refused {
            why: why.to_string(),
            start,
            fatal: false,
            temporary: false,
        }
    }
}

/// What a command asked the connection to do next.
pub(crate) enum Next {
    Continue,
    Logout,
}

/// RFC 9051 §3 connection states.
pub(crate) enum State {
    NotAuthenticated,
    Authenticated,
    /// Boxed: the selected view is far bigger than the other states.
    Selected(Box<Selected>),
}

pub(crate) struct Session {
    srv: Arc<ImapServer>,
    peer: SocketAddr,
    conn: Conn,
    state: State,
    account: Option<Account>,
    /// ENABLEd: CONDSTORE (also turned on by its first use), QRESYNC,
    /// UTF8=ACCEPT, IMAP4rev2.
    condstore: bool,
    qresync: bool,
    utf8: bool,
    rev2: bool,
    bad_commands: usize,
    /// A BYE was sent: the session ends after the current command.
    closing: bool,
    stopping: watch::Receiver<bool>,
    /// This connection's place under the server's limits.
    slot: ConnectionSlot,
    /// Large APPEND literals of the command being read.
    spooled: spooled::Spooled,
}

pub(crate) async fn run(
    srv: Arc<ImapServer>,
    io: impl Duplex + 'static,
    peer: SocketAddr,
    mode: Mode,
    admission: Result<ConnectionSlot, LimitExceeded>,
    stopping: watch::Receiver<bool>,
) {
    let (slot, refused) = admission::split(admission);
    // Writes get the idle timeout of the state (updated at login).
    let write_timeout = Duration::from_secs(srv.limits.idle_timeout_secs);
    let tls = srv.tls.clone();
    let implicit_tls = mode == Mode::Tls;
    let Some(mut conn) = Conn::open(tls, io, implicit_tls, refused.is_none(), write_timeout).await
    else {
        return;
    };
    conn.trace_if(|| srv.tracer.for_client("imap", peer));
    let mut s = Session {
        srv,
        peer,
        conn,
        state: State::NotAuthenticated,
        account: None,
        condstore: false,
        qresync: false,
        utf8: false,
        rev2: false,
        bad_commands: 0,
        closing: false,
        stopping,
        slot,
        spooled: spooled::Spooled::new(),
    };
    if let Some(why) = refused {
        s.untagged(&format!("BYE too busy ({why}); try again later"));
        let _ = s.flush().await;
        return;
    }
    let caps = s.capabilities();
    s.untagged(&format!(
        "OK [CAPABILITY {caps}] Tern IMAP4rev2 server ready"
    ));
    match s.command_loop().await {
        Ok(()) | Err(End::Gone) => {}
        Err(End::Timeout) => s.untagged("BYE autologout; idle for too long"),
    }
    s.conn.close().await;
}

impl Session {
    fn idle_timeout(&self) -> Duration {
        let configured = Duration::from_secs(self.srv.limits.idle_timeout_secs);
        match self.state {
            State::NotAuthenticated => {
                configured.min(Duration::from_secs(self.srv.limits.login_timeout_secs))
            }
            _ => configured.max(MIN_IDLE_LOGGED_IN),
        }
    }

    fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// LOGIN and AUTHENTICATE only where passwords cannot be sniffed.
    fn auth_allowed(&self) -> bool {
        self.conn.password_may_travel(self.peer.ip())
    }

    pub(crate) fn untagged(&mut self, text: &str) {
        self.conn.out.extend_from_slice(b"* ");
        self.conn.out.extend_from_slice(text.as_bytes());
        self.conn.out.extend_from_slice(b"\r\n");
    }

    pub(crate) fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        if self.closing {
            // After BYE the connection ends: no command completes.
            return;
        }
        self.conn
            .out
            .extend_from_slice(format!("{tag} {status} {text}\r\n").as_bytes());
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let timeout = self.idle_timeout();
        self.conn.set_write_timeout(timeout);
        self.conn.flush().await
    }

    /// Reads one line of at most `max` bytes, LF included; `Ok(None)` at end
    /// of input, `Err(())` inside for an overlong line (consumed).
    async fn read_line(&mut self, max: usize) -> Result<Option<Result<Vec<u8>, ()>>, End> {
        let timeout = self.idle_timeout();
        self.conn.set_write_timeout(timeout);
        let line = self.conn.read_line(max, timeout).await?;
        Ok(if !line.complete {
            // The end of input, a partial line included.
            None
        } else if line.overflow {
            Some(Err(()))
        } else {
            Some(Ok(line.bytes))
        })
    }

    /// Reads a whole command: lines joined with their literals, final CRLF
    /// removed. `Ok(Err(refused))` for a command refused while reading (too
    /// long, literal too big), consumed as far as it is safe to.
    async fn read_command(&mut self) -> Result<Option<Result<Vec<u8>, Refused>>, End> {
        let mut command = Vec::new();
        // Bytes of literals that went to spool files instead of `command`;
        // they count towards the bound all the same.
        let mut spooled_bytes = 0u64;
        self.spooled.clear();
        let (max_literal, max_command) = match self.state {
            State::NotAuthenticated => (MAX_LITERAL_BEFORE_LOGIN, MAX_COMMAND_BEFORE_LOGIN as u64),
            _ => {
                let max = self.srv.limits.max_message_size;
                (max, max.saturating_add(COMMAND_SLACK_AFTER_LOGIN))
            }
        };
        let too_long = |start: Vec<u8>| Refused {
            why: format!("command too long (at most {max_command} bytes with its literals here)"),
            start,
            fatal: true,
            temporary: false,
        };
        loop {
            let line = match self.read_line(MAX_LINE).await? {
                None => return Ok(None),
                Some(Err(())) => return Ok(Some(Err(Refused::new("line too long", command)))),
                Some(Ok(line)) => line,
            };
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            command.extend_from_slice(line);
            if command.len() as u64 + spooled_bytes > max_command {
                // The rest of the command cannot be skipped safely: it may
                // never end. The connection goes.
                return Ok(Some(Err(too_long(command))));
            }
            let Some((size, sync)) = literal_announced(line) else {
                return Ok(Some(Ok(command)));
            };
            if size > max_literal {
                let why = format!("literal too big (at most {max_literal} bytes here)");
                if sync {
                    // The client waits for "+": refuse instead, and it will
                    // not send the literal (RFC 9051 §7.5).
                    return Ok(Some(Err(Refused::new(&why, command))));
                }
                // LITERAL+ was sent anyway: skip it (read and dropped,
                // never held), then refuse; if the rest of the line
                // announces another literal, its bytes cannot be told from
                // commands, and the connection ends.
                self.skip(size).await?;
                let more = self.rest_announces_literal().await?;
                return Ok(Some(Err(Refused {
                    fatal: more,
                    ..Refused::new(&why, command)
                })));
            }
            if (command.len() as u64 + spooled_bytes).saturating_add(size) > max_command {
                if sync {
                    // The client waits for "+" and will not send it.
                    return Ok(Some(Err(Refused {
                        fatal: false,
                        ..too_long(command)
                    })));
                }
                return Ok(Some(Err(too_long(command))));
            }
            if sync {
                self.conn.out.extend_from_slice(b"+ go ahead\r\n");
                self.flush().await?;
            }
            let timeout = self.idle_timeout();
            if size > tern_core::spool::SPOOL_THRESHOLD as u64 && spooled::is_append(&command) {
                // A message body: to a spool file as it arrives, and a
                // placeholder literal in the command (see `spooled`).
                let mut body = self.srv.mail.new_body();
                let (n, failed) = self.conn.read_into_spool(size, &mut body, timeout).await?;
                if n < size {
                    return Err(End::Gone);
                }
                let brace = command
                    .iter()
                    .rposition(|&b| b == b'{')
                    .unwrap_or(command.len());
                let literal8 = brace > 0 && command[brace - 1] == b'~';
                if !literal8 && body.contains_nul() && failed.is_none() {
                    // As the lexer refuses NUL in a plain literal.
                    let more = self.rest_announces_literal().await?;
                    return Ok(Some(Err(Refused {
                        fatal: more,
                        ..Refused::new("NUL in a literal; use literal8 (~{n}) for binary", command)
                    })));
                }
                if let Some(e) = failed {
                    tracing::warn!("imap {}: spooling an APPEND literal: {e}", self.peer);
                    let more = self.rest_announces_literal().await?;
                    return Ok(Some(Err(Refused {
                        why: "[OVERQUOTA] insufficient storage on the server; try again later"
                            .into(),
                        start: command,
                        fatal: more,
                        temporary: true,
                    })));
                }
                spooled_bytes += size;
                let marker = self.spooled.keep(body);
                command.truncate(brace);
                command.extend_from_slice(format!("{{{}}}\r\n", marker.len()).as_bytes());
                command.extend_from_slice(&marker);
                continue;
            }
            command.extend_from_slice(b"\r\n");
            let start = command.len();
            command.resize(start + size as usize, 0);
            self.conn.read_exact(&mut command[start..], timeout).await?;
        }
    }

    /// Reads the rest of a refused command's line: whether it announces
    /// another literal (MULTIAPPEND), whose bytes could not be told from
    /// commands, so the connection must end. An overlong rest counts too.
    async fn rest_announces_literal(&mut self) -> Result<bool, End> {
        Ok(match self.read_line(MAX_LINE).await? {
            Some(Ok(line)) => {
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                literal_announced(line.strip_suffix(b"\r").unwrap_or(line)).is_some()
            }
            _ => true,
        })
    }

    async fn skip(&mut self, n: u64) -> Result<(), End> {
        let timeout = self.idle_timeout();
        self.conn.read_chunk(n, None, timeout).await?;
        Ok(())
    }

    async fn command_loop(&mut self) -> Result<(), End> {
        loop {
            let mut stopping = self.stopping.clone();
            let command = tokio::select! {
                c = self.read_command() => c?,
                _ = stopping.wait_for(|s| *s) => {
                    self.untagged("BYE server shutting down");
                    return Ok(());
                }
            };
            let Some(command) = command else {
                return Err(End::Gone);
            };
            let bytes = match command {
                Ok(bytes) => bytes,
                Err(refused) => {
                    let tag = ParseError::tag(&refused.start);
                    if refused.temporary {
                        match tag.as_deref() {
                            Some(tag) => self.tagged(tag, "NO", &refused.why),
                            None => self.untagged(&format!("NO {}", refused.why)),
                        }
                    } else {
                        self.bad(tag.as_deref(), &refused.why);
                    }
                    if refused.fatal {
                        tracing::info!("imap {}: {}; closing", self.peer, refused.why);
                        self.untagged("BYE command too long; closing");
                        return Ok(());
                    }
                    if self.bad_commands >= MAX_BAD_COMMANDS {
                        self.untagged("BYE too many bad commands");
                        return Ok(());
                    }
                    continue;
                }
            };
            let parsed = parse::parse_command(&bytes);
            let command = match parsed {
                Ok(c) => c,
                Err(e) => {
                    let tag = ParseError::tag(&bytes);
                    self.bad(tag.as_deref(), &e.to_string());
                    if self.bad_commands >= MAX_BAD_COMMANDS {
                        self.untagged("BYE too many bad commands");
                        return Ok(());
                    }
                    continue;
                }
            };
            self.bad_commands = 0;
            if let Next::Logout = self.dispatch(command.tag, command.body).await? {
                return Ok(());
            }
            if self.closing {
                return Ok(());
            }
        }
    }

    fn bad(&mut self, tag: Option<&str>, why: &str) {
        self.bad_commands += 1;
        match tag {
            Some(tag) => self.tagged(tag, "BAD", why),
            None => self.untagged(&format!("BAD {why}")),
        }
    }

    async fn dispatch(&mut self, tag: String, body: CommandBody) -> Result<Next, End> {
        use CommandBody::*;
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        let selected = matches!(self.state, State::Selected(_));
        match body {
            Capability => {
                let caps = self.capabilities();
                self.untagged(&format!("CAPABILITY {caps}"));
                self.ok_synced(&tag, "CAPABILITY completed").await;
            }
            Noop => self.ok_synced(&tag, "NOOP completed").await,
            Logout => {
                self.untagged("BYE logging out");
                self.tagged(&tag, "OK", "LOGOUT completed");
                // The client is done: its place is free for its next
                // connection even before this socket is closed.
                self.slot.release();
                return Ok(Next::Logout);
            }
            Id(_) => {
                self.untagged("ID (\"name\" \"Tern\")");
                self.ok_synced(&tag, "ID completed").await;
            }
            StartTls => return self.starttls(&tag).await,
            Login { user, password } => self.login(&tag, &user, &password).await,
            Authenticate { mechanism, initial } => {
                self.authenticate(&tag, &mechanism, initial).await?
            }
            _ if !authenticated => self.tagged(&tag, "NO", "log in first"),
            Enable(caps) => self.enable(&tag, &caps),
            Namespace => {
                self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                self.ok_synced(&tag, "NAMESPACE completed").await;
            }
            Select { mailbox, params } => self.select(&tag, &mailbox, params, false).await,
            Examine { mailbox, params } => self.select(&tag, &mailbox, params, true).await,
            Create {
                mailbox,
                special_use,
            } => self.create(&tag, &mailbox, &special_use).await,
            Delete(mailbox) => self.delete(&tag, &mailbox).await,
            Rename { from, to } => self.rename(&tag, &from, &to).await,
            Subscribe(mailbox) => self.subscribe(&tag, &mailbox, true).await,
            Unsubscribe(mailbox) => self.subscribe(&tag, &mailbox, false).await,
            List {
                reference,
                patterns,
                select,
                ret,
            } => {
                self.list(&tag, &reference, &patterns, &select, ret, false)
                    .await
            }
            Lsub { reference, pattern } => {
                let ret = parse::ListReturn::default();
                self.list(
                    &tag,
                    &reference,
                    &[pattern],
                    &["SUBSCRIBED".to_string()],
                    ret,
                    true,
                )
                .await
            }
            Status { mailbox, items } => self.status(&tag, &mailbox, &items).await,
            Append { mailbox, messages } => self.append(&tag, &mailbox, messages).await,
            Idle => return self.idle(&tag).await,
            GetQuota(root) => self.get_quota(&tag, &root, None).await,
            GetQuotaRoot(mailbox) => self.get_quota(&tag, "", Some(&mailbox)).await,
            Compress(mechanism) => return self.compress(&tag, &mechanism).await,
            _ if !selected => self.tagged(&tag, "NO", "select a mailbox first"),
            Check => self.ok_synced(&tag, "CHECK completed").await,
            Close => self.close(&tag, true).await,
            Unselect => self.close(&tag, false).await,
            Expunge { uids } => self.expunge(&tag, uids).await,
            Search {
                uid,
                charset,
                criteria,
                ret,
            } => {
                self.search(&tag, uid, charset.as_deref(), &criteria, ret)
                    .await
            }
            Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => {
                self.fetch(&tag, uid, &set, &items, changed_since, vanished)
                    .await
            }
            Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            } => {
                self.store_flags(&tag, uid, &set, mode, silent, &flags, unchanged_since)
                    .await
            }
            Copy { uid, set, mailbox } => self.copy_or_move(&tag, uid, &set, &mailbox, false).await,
            Move { uid, set, mailbox } => self.copy_or_move(&tag, uid, &set, &mailbox, true).await,
            Sort {
                uid,
                criteria,
                charset,
                search,
                ret,
            } => {
                self.sort(&tag, uid, &criteria, &charset, &search, ret)
                    .await
            }
            Thread {
                uid,
                algorithm,
                charset,
                search,
            } => self.thread(&tag, uid, &algorithm, &charset, &search).await,
        }
        Ok(Next::Continue)
    }

    /// COMPRESS=DEFLATE (RFC 4978): from after the OK, both directions are
    /// raw deflate. Bytes the client already sent behind the command are
    /// compressed ones and are handed to the inflater, not dropped.
    async fn compress(&mut self, tag: &str, mechanism: &str) -> Result<Next, End> {
        if mechanism != "DEFLATE" {
            self.tagged(
                tag,
                "BAD",
                "unknown compression mechanism; DEFLATE is offered",
            );
            return Ok(Next::Continue);
        }
        if self.conn.is_compressed() {
            self.tagged(tag, "NO", "[COMPRESSIONACTIVE] already compressing");
            return Ok(Next::Continue);
        }
        self.tagged(tag, "OK", "DEFLATE active");
        self.conn.start_deflate().await?;
        Ok(Next::Continue)
    }

    /// Sends pending mailbox updates, then the tagged OK.
    pub(crate) async fn ok_synced(&mut self, tag: &str, text: &str) {
        self.sync(true).await;
        self.tagged(tag, "OK", text);
    }

    /// CAPABILITY for the current state (RFC 9051 §7.2.2).
    fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev2", "IMAP4rev1"];
        match self.state {
            State::NotAuthenticated => {
                // Usable only after login, but listed before it as Dovecot
                // does: clients that read the list once (Python's imaplib
                // checks it before sending ENABLE) would otherwise never
                // enable anything.
                caps.push("ENABLE");
                if !self.is_tls() {
                    caps.push("STARTTLS");
                }
                if self.auth_allowed() {
                    caps.extend(["AUTH=PLAIN", "SASL-IR"]);
                } else {
                    caps.push("LOGINDISABLED");
                }
            }
            _ => caps.extend([
                "ENABLE",
                "IDLE",
                "NAMESPACE",
                "ID",
                "UNSELECT",
                "CHILDREN",
                "UIDPLUS",
                "MOVE",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "SPECIAL-USE",
                "CREATE-SPECIAL-USE",
                "ESEARCH",
                "SEARCHRES",
                "WITHIN",
                "CONDSTORE",
                "QRESYNC",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "BINARY",
                "STATUS=SIZE",
                "SAVEDATE",
                "OBJECTID",
                "MULTIAPPEND",
                "UTF8=ACCEPT",
                "COMPRESS=DEFLATE",
                "SORT",
                "SORT=DISPLAY",
                "ESORT",
                "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES",
            ]),
        }
        caps.extend(["LITERAL+", "ID"]);
        caps.dedup();
        let mut s = caps.join(" ");
        if !matches!(self.state, State::NotAuthenticated) {
            s.push_str(&format!(
                " APPENDLIMIT={}",
                self.srv.limits.max_message_size
            ));
        }
        s
    }

    /// A mailbox name from the client, in the store's UTF-8 form.
    pub(crate) fn decode_mailbox(&self, name: &str) -> Option<String> {
        if self.utf8 || self.rev2 {
            Some(name.to_string())
        } else {
            crate::mutf7::decode(name)
        }
    }

    /// A mailbox name for the client.
    pub(crate) fn encode_mailbox(&self, name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.utf8 || self.rev2 {
            crate::response::string(&mut out, name.as_bytes(), true);
        } else {
            crate::response::string(&mut out, crate::mutf7::encode(name).as_bytes(), false);
        }
        out
    }
}

/// `{n}` or `{n+}` at the end of a line: the size and whether the client
/// waits for a continuation (synchronising literal).
fn literal_announced(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_recognised_at_the_end_of_a_line() {
        assert_eq!(literal_announced(b"a LOGIN {3}"), Some((3, true)));
        assert_eq!(
            literal_announced(b"a APPEND INBOX ~{10+}"),
            Some((10, false))
        );
        assert_eq!(literal_announced(b"a NOOP"), None);
        assert_eq!(literal_announced(b"a {x}"), None);
        assert_eq!(literal_announced(b"a {}"), None);
        assert_eq!(literal_announced(b"a {99999999999999999999}"), None);
    }
}
