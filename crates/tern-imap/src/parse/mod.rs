//! IMAP commands (RFC 9051 §6, RFC 3501 §6 and the extensions Tern offers)
//! from their wire form into [`Command`]s.
//!
//! [`parse_command`] takes one whole command — the session has already read
//! any literals into the buffer (`{n}` CRLF and n bytes) — without the final
//! CRLF. A command that does not parse gets BAD; [`ParseError::tag`] gives
//! the tag to answer with when the line had one.

mod command;
mod fetch;
pub mod lexer;
mod search;

pub use command::parse_command;
pub use fetch::{FetchAttribute, Section, SectionPart};
pub use lexer::{SeqNumber, SequenceSet};
pub use search::{SearchKey, SearchReturn};

/// Why a command could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Syntax(&'static str),
    #[error("unknown command")]
    Unknown,
}

/// A tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// A mailbox name as the client wrote it (modified UTF-7 for IMAP4rev1
/// clients, UTF-8 after ENABLE UTF8=ACCEPT or IMAP4rev2); the session
/// decodes it.
pub type MailboxName = String;

/// What a command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // Any state (RFC 9051 §6.1).
    Capability,
    Noop,
    Logout,
    /// ID (RFC 2971): the client's fields, or NIL.
    Id(Option<Vec<(String, Option<String>)>>),

    // Not authenticated (§6.2).
    StartTls,
    Login {
        user: String,
        password: String,
    },
    /// AUTHENTICATE mechanism [initial-response] (SASL-IR, RFC 4959).
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },

    // Authenticated (§6.3).
    Enable(Vec<String>),
    Select {
        mailbox: MailboxName,
        params: SelectParams,
    },
    Examine {
        mailbox: MailboxName,
        params: SelectParams,
    },
    /// CREATE, with CREATE-SPECIAL-USE's `(USE (\Sent))` (RFC 6154 §3).
    Create {
        mailbox: MailboxName,
        special_use: Vec<String>,
    },
    Delete(MailboxName),
    Rename {
        from: MailboxName,
        to: MailboxName,
    },
    Subscribe(MailboxName),
    Unsubscribe(MailboxName),
    /// LIST with LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819).
    List {
        reference: MailboxName,
        patterns: Vec<MailboxName>,
        select: Vec<String>,
        ret: ListReturn,
    },
    Lsub {
        reference: MailboxName,
        pattern: MailboxName,
    },
    Namespace,
    Status {
        mailbox: MailboxName,
        items: Vec<StatusItem>,
    },
    /// APPEND with MULTIAPPEND (RFC 3502): one or more messages.
    Append {
        mailbox: MailboxName,
        messages: Vec<AppendMessage>,
    },
    Idle,
    GetQuota(String),
    GetQuotaRoot(MailboxName),
    /// COMPRESS DEFLATE (RFC 4978).
    Compress(String),

    // Selected (§6.4).
    Check,
    Close,
    Unselect,
    /// EXPUNGE, or UID EXPUNGE set (RFC 4315).
    Expunge {
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        charset: Option<String>,
        criteria: Vec<SearchKey>,
        ret: Option<Vec<SearchReturn>>,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        items: Vec<FetchAttribute>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    /// SORT (RFC 5256), with ESORT's RETURN when given.
    Sort {
        uid: bool,
        criteria: Vec<SortKey>,
        charset: String,
        search: Vec<SearchKey>,
        ret: Option<Vec<SearchReturn>>,
    },
    /// THREAD (RFC 5256).
    Thread {
        uid: bool,
        algorithm: String,
        charset: String,
        search: Vec<SearchKey>,
    },
}

/// SELECT/EXAMINE parameters (RFC 7162 §3.1.8, §3.2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    pub condstore: bool,
    pub qresync: Option<QresyncParams>,
}

/// `(QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]]))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    pub uid_validity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// LIST RETURN options (RFC 5258 §3.2, RFC 5819).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

/// STATUS data items (RFC 9051 §6.3.11, RFC 7162, RFC 8438, RFC 8474).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
    MailboxId,
    AppendLimit,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    /// INTERNALDATE as unix seconds, if given.
    pub date: Option<i64>,
    pub data: Vec<u8>,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// A SORT criterion (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub reverse: bool,
    pub field: SortField,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

impl ParseError {
    /// The tag of a line that failed to parse, so the BAD can carry it;
    /// `None` when the line has no usable tag (then the BAD is untagged).
    pub fn tag(line: &[u8]) -> Option<String> {
        let end = line.iter().position(|&b| b == b' ')?;
        let tag = &line[..end];
        (!tag.is_empty() && tag.iter().all(|&b| lexer::is_atom_char(b) && b != b'+'))
            .then(|| String::from_utf8_lossy(tag).into_owned())
    }
}
