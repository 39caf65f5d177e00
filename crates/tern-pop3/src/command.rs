//! POP3 command lines (RFC 1939 §3: a keyword, then arguments separated by
//! single spaces) into [`Command`]s. Pure: no I/O, every input a test away.

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    User(String),
    /// The rest of the line: a password may contain spaces.
    Pass(String),
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Stls,
    Utf8,
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    Top {
        msg: u32,
        lines: u32,
    },
    Dele(u32),
    Rset,
    Noop,
    Quit,
}

/// Why a line is not a command; the text goes after `-ERR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Unknown,
    Syntax(&'static str),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Unknown => f.write_str("unknown command"),
            CommandError::Syntax(why) => f.write_str(why),
        }
    }
}

/// Parses one line without its CRLF.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(line)
        .map_err(|_| CommandError::Syntax("the command is not valid UTF-8"))?;
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    let none = |cmd: Command| match rest {
        None => Ok(cmd),
        Some(_) => Err(CommandError::Syntax("this command takes no arguments")),
    };
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    match keyword.to_ascii_uppercase().as_str() {
        "CAPA" => none(Command::Capa),
        "USER" => match rest {
            Some(name) if !name.is_empty() => Ok(Command::User(name.to_string())),
            _ => Err(CommandError::Syntax("USER needs a name")),
        },
        "PASS" => Ok(Command::Pass(rest.unwrap_or("").to_string())),
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [m] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: None,
            }),
            [m, i] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: Some(i.to_string()),
            }),
            _ => Err(CommandError::Syntax(
                "AUTH takes a mechanism and an initial response",
            )),
        },
        "STLS" => none(Command::Stls),
        "UTF8" => none(Command::Utf8),
        "STAT" => none(Command::Stat),
        "LIST" => optional_number(&args).map(Command::List),
        "UIDL" => optional_number(&args).map(Command::Uidl),
        "RETR" => one_number(&args).map(Command::Retr),
        "DELE" => one_number(&args).map(Command::Dele),
        "TOP" => match args.as_slice() {
            [m, n] => Ok(Command::Top {
                msg: number(m)?,
                lines: count(n)?,
            }),
            _ => Err(CommandError::Syntax(
                "TOP needs a message number and a line count",
            )),
        },
        "RSET" => none(Command::Rset),
        "NOOP" => none(Command::Noop),
        "QUIT" => none(Command::Quit),
        _ => Err(CommandError::Unknown),
    }
}

/// A message number: 1 or more (RFC 1939 §3).
fn number(s: &str) -> Result<u32, CommandError> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(CommandError::Syntax("invalid message number")),
    }
}

fn count(s: &str) -> Result<u32, CommandError> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Syntax("invalid line count"));
    }
    s.parse()
        .map_err(|_| CommandError::Syntax("invalid line count"))
}

fn one_number(args: &[&str]) -> Result<u32, CommandError> {
    match args {
        [n] => number(n),
        _ => Err(CommandError::Syntax(
            "this command needs one message number",
        )),
    }
}

fn optional_number(args: &[&str]) -> Result<Option<u32>, CommandError> {
    match args {
        [] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err(CommandError::Syntax("at most one message number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, CommandError> {
        parse(s.as_bytes())
    }

    #[test]
    fn commands() {
        assert_eq!(
            p("user bob@example.test"),
            Ok(Command::User("bob@example.test".into()))
        );
        assert_eq!(
            p("PASS with spaces in it"),
            Ok(Command::Pass("with spaces in it".into()))
        );
        assert_eq!(p("LIST"), Ok(Command::List(None)));
        assert_eq!(p("list 3"), Ok(Command::List(Some(3))));
        assert_eq!(p("TOP 2 0"), Ok(Command::Top { msg: 2, lines: 0 }));
        assert_eq!(p("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(
            p("AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            p("AUTH"),
            Ok(Command::Auth {
                mechanism: None,
                initial: None
            })
        );
        assert_eq!(p("QUIT"), Ok(Command::Quit));
    }

    #[test]
    fn bad_commands() {
        for bad in [
            "RETR",
            "RETR 0",
            "RETR -1",
            "RETR x",
            "RETR 1 2",
            "DELE +1",
            "TOP 1",
            "TOP 1 x",
            "STAT now",
            "USER",
            "LIST 1 2",
            "RETR 99999999999",
        ] {
            assert!(matches!(p(bad), Err(CommandError::Syntax(_))), "{bad}");
        }
        assert_eq!(p("APOP bob 0123"), Err(CommandError::Unknown));
        assert_eq!(p(""), Err(CommandError::Unknown));
        assert!(parse(b"USER \xff").is_err());
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    #[test]
    fn no_input_makes_the_parser_panic() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let alphabet = b" 0123456789-+RETRTOPLISTUIDLDELEUSERPASSAUTHPLAIN\xff\x00\xc3\xa9";
        for _ in 0..100_000 {
            let len = next() % 24;
            let line: Vec<u8> = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            let _ = parse(&line);
        }
    }
}
