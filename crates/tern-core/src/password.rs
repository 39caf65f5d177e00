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
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Failure to hash a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Argon2 refused the input or its parameters.
    #[error("hashing a password with Argon2id: {0}")]
    Hash(argon2::password_hash::Error),
}

/// `n` bytes from the operating system's random source (API tokens).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use argon2::password_hash::rand_core::RngCore;
    let mut out = vec![0u8; n];
    OsRng.fill_bytes(&mut out);
    out
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
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        // Other schemes (and Argon2i/d) through the generic path: they never
        // come from Tern itself, so they are rare enough to allocate.
        return Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
    }
    let mut memory = memory_pool::take();
    let ok = verify_argon2id(password, &hash, &mut memory);
    memory_pool::give_back(memory);
    ok
}

/// Argon2id verification into a caller's memory: what
/// [`PasswordVerifier::verify_password`] does, minus allocating (and the
/// kernel zeroing and unmapping) 19 MiB on every login.
fn verify_argon2id(password: &str, hash: &PasswordHash<'_>, memory: &mut Vec<Block>) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
    if argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Argon2 working memory kept between logins, one buffer per verification
/// running at once (at most [`verification_slots`] through the async path).
/// Without it every LOGIN maps, faults in and unmaps 19 MiB: a third of a
/// verification's CPU time went to the kernel.
mod memory_pool {
    use argon2::Block;
    use std::sync::Mutex;

    /// Buffers bigger than this (a hash imported with a huge memory cost)
    /// are freed after use rather than pinned.
    const MAX_KEPT_BLOCKS: usize = 64 * 1024;

    static POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

    pub(super) fn take() -> Vec<Block> {
        POOL.lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    pub(super) fn give_back(memory: Vec<Block>) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if memory.len() <= MAX_KEPT_BLOCKS && pool.len() < super::slot_count() {
            pool.push(memory);
        }
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
/// One per core: a verification is pure computation, so more at once only
/// adds memory (each slot keeps its 19 MiB in the pool).
fn verification_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(slot_count()))
}

fn slot_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
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

    /// Pooled memory carries the last verification's blocks: every later
    /// one, bigger or smaller, with another version or algorithm, must
    /// still give exactly the right answer.
    #[test]
    fn reused_memory_gives_the_same_answers() {
        let make = |algorithm, version, m_cost, output_len| {
            let params = argon2::Params::new(m_cost, 1, 1, Some(output_len)).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            Argon2::new(algorithm, version, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string()
        };
        let hashes = [
            make(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                4096,
                32,
            ),
            hash_password("pw").unwrap(),
            make(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                1024,
                16,
            ),
            make(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x10,
                2048,
                32,
            ),
            make(argon2::Algorithm::Argon2i, argon2::Version::V0x13, 1024, 32),
        ];
        for _ in 0..2 {
            for phc in &hashes {
                assert!(verify_password("pw", phc), "{phc}");
                assert!(!verify_password("pv", phc), "{phc}");
            }
        }
    }
}
