//! Refusing passwords that fall to the first guesses.
//!
//! A mail password is attacked over the network, slowly (the login limiter
//! allows a handful of guesses per address and window), so what matters is
//! not entropy arithmetic but the guesses every attacker tries first: very
//! short passwords, the most common passwords, keyboard and number runs, one
//! character repeated, and the account's own name. The rules follow NIST SP
//! 800-63B §5.1.1.2: a minimum length of 8, a blocklist of common and
//! context-specific values, and no composition rules (no "one digit, one
//! symbol"), which only make passwords harder to remember.

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;

/// The most common passwords of breach corpora (and their obvious
/// variants), lower-cased; compared case-insensitively.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
    "87654321",
    "11111111",
    "00000000",
    "qwertyui",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "asdfghjk",
    "asdfghjkl",
    "zxcvbnm1",
    "iloveyou",
    "iloveyou1",
    "princess",
    "sunshine",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "letmein1",
    "letmein123",
    "trustno1",
    "superman",
    "starwars",
    "whatever",
    "dragon12",
    "monkey12",
    "master12",
    "abc12345",
    "abcd1234",
    "abcdefgh",
    "aa123456",
    "changeme",
    "changeme1",
    "secret12",
    "secret123",
    "computer",
    "internet",
    "michelle",
    "jennifer",
    "jordan23",
    "liverpool",
    "chelsea1",
    "arsenal1",
    "pokemon1",
    "samsung1",
    "google123",
    "mustang1",
    "shadow12",
    "master123",
    "admin123",
    "administrator",
    "root1234",
    "test1234",
    "testtest",
    "mailmail",
    "email123",
    "qazwsxedc",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "azertyui",
    "azerty123",
    "passpass",
    "letmeinnow",
    "password!",
    "password1!",
    "summer2024",
    "winter2024",
    "spring2024",
    "autumn2024",
    "summer2025",
    "winter2025",
    "summer2026",
    "winter2026",
    "hello123",
    "hello1234",
    "123qweasd",
    "123123123",
    "12341234",
    "121212121",
    "112233445566",
];

/// Why `password` is too weak for `address` (the account's full address),
/// or `None` when it is acceptable.
pub fn weakness(password: &str, address: &str) -> Option<String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Some(format!(
            "it has {length} characters; use at least {MIN_LENGTH} (a few words make a long password that is easy to remember)"
        ));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Some(
            "it is one of the most common passwords, tried first by every attacker".into(),
        );
    }
    let address = address.to_lowercase();
    let local = address.split('@').next().unwrap_or_default();
    let domain_label = address
        .split('@')
        .nth(1)
        .and_then(|d| d.split('.').next())
        .unwrap_or_default();
    for name in [address.as_str(), local, domain_label] {
        if name.chars().count() >= 3 && lower.contains(name) && lower.len() < name.len() + 6 {
            return Some(format!(
                "it is little more than {name:?}, part of the account's address"
            ));
        }
    }
    let distinct: std::collections::HashSet<char> = lower.chars().collect();
    if distinct.len() < 4 {
        return Some(format!(
            "it uses only {} different characters",
            distinct.len()
        ));
    }
    if is_run(&lower) {
        return Some("it is a run of consecutive keys or digits".into());
    }
    None
}

/// True for a run like `abcdefgh`, `98765432` or `qwertyuiop`: each
/// character the next (or previous) one on the alphabet or a keyboard row.
fn is_run(text: &str) -> bool {
    const ROWS: [&str; 4] = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"];
    let chars: Vec<char> = text.chars().collect();
    let steps_by = |step: i32| {
        chars
            .windows(2)
            .all(|w| (w[1] as i32) - (w[0] as i32) == step)
    };
    if steps_by(1) || steps_by(-1) {
        return true;
    }
    ROWS.iter().any(|row| {
        let reversed: String = row.chars().rev().collect();
        row.contains(text) || reversed.contains(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_guesses_are_refused() {
        let address = "alice@example.com";
        for weak in [
            "a",
            "secret",
            "password",
            "Password1",
            "12345678",
            "abcdefgh",
            "87654321",
            "qwertyuiop",
            "aaaaaaaaaaaa",
            "abababababab",
            "alice@example.com",
            "alice123",
            "Example2024",
        ] {
            assert!(weakness(weak, address).is_some(), "{weak:?} accepted");
        }
    }

    #[test]
    fn ordinary_good_passwords_pass() {
        let address = "alice@example.com";
        for good in [
            "correct horse battery staple",
            "Tr0ub4dor&3x",
            "gentle-otter-47",
            "alice loves rock climbing in june",
        ] {
            assert_eq!(weakness(good, address), None, "{good:?} refused");
        }
    }
}
