//! Password hashing for accounts: Argon2id in PHC string format.
//!
//! Parameters are the `argon2` crate's defaults, which are the first of OWASP's
//! recommended Argon2id configurations (Password Storage Cheat Sheet): 19 MiB of
//! memory (`m=19456`), 2 iterations (`t=2`), 1 lane (`p=1`), version 0x13
//! (RFC 9106). One hash costs tens of milliseconds of one core and 19 MiB, which
//! is why login attempts must be rate-limited before they reach
//! [`verify_password`], never after.
//!
//! The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) carries its
//! own parameters, so hashes made today still verify if the defaults are
//! raised later. The salt is 16 random bytes from the operating system.
//!
//! Stored hashes are trusted input (they come from our own database); a
//! malformed one makes [`verify_password`] return `false`, never panic.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Failure to hash a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Argon2 refused the input or its parameters.
    #[error("hashing a password with Argon2id: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Hashes `password` with Argon2id and a fresh random salt; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Hash)
}

/// Whether `password` matches the PHC string `phc`.
///
/// Returns `false` for a wrong password and for a malformed or unsupported
/// hash alike. The comparison of hash outputs is constant-time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks a login: the password against the account's hash, or, when there
/// is no such account, against a fixed dummy hash, so that an unknown user
/// costs the same Argon2 work as a wrong password and timing reveals nothing.
pub fn verify_login(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match hash {
        Some(hash) => verify_password(password, hash),
        None => {
            let dummy =
                DUMMY.get_or_init(|| hash_password("tern-dummy-password").unwrap_or_default());
            verify_password(password, dummy);
            false
        }
    }
}

/// Argon2 verifications allowed at once: each takes 19 MiB and a core for
/// tens of milliseconds, so a flood of logins queues here instead of
/// exhausting memory and starving the mail sessions.
fn verification_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// [`verify_login`] off the async threads, at most a few at a time.
pub async fn verify_login_async(password: String, hash: Option<String>) -> bool {
    let Ok(_slot) = verification_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_login(&password, hash.as_deref()))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_without_an_account_always_fail() {
        let hash = hash_password("right").unwrap();
        assert!(verify_login("right", Some(&hash)));
        assert!(!verify_login("wrong", Some(&hash)));
        assert!(!verify_login("tern-dummy-password", None));
    }

    #[test]
    fn hash_then_verify() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stable", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn salts_differ() {
        let a = hash_password("pw").unwrap();
        let b = hash_password("pw").unwrap();
        assert_ne!(a, b);
        assert!(verify_password("pw", &a) && verify_password("pw", &b));
    }

    #[test]
    fn unicode_and_empty_passwords() {
        let phc = hash_password("pässwörd 🔑").unwrap();
        assert!(verify_password("pässwörd 🔑", &phc));
        assert!(!verify_password("passwörd 🔑", &phc));
        let empty = hash_password("").unwrap();
        assert!(verify_password("", &empty));
    }

    #[test]
    fn malformed_hashes_are_false() {
        let phc = hash_password("pw").unwrap();
        for bad in [
            "",
            "$",
            "plain",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=x,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
            &phc[..phc.len() - 4],
            &phc.replace("argon2id", "argon2x"),
        ] {
            assert!(!verify_password("pw", bad), "{bad:?}");
        }
    }

    #[test]
    fn verifies_hashes_with_other_parameters() {
        // A hash made with different (cheaper) parameters still verifies: the
        // PHC string carries them.
        let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
        let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let phc = argon.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_password("pw", &phc));
        assert!(!verify_password("pW", &phc));
    }
}
