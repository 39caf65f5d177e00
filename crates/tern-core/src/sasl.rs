//! SASL pieces shared by the protocols that take passwords.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// PLAIN: base64 of `authzid NUL authcid NUL password` (RFC 4616 §2).
pub fn decode_plain(b64: &str) -> Result<(String, String), &'static str> {
    let bytes = BASE64.decode(b64.trim()).map_err(|_| "invalid base64")?;
    let text = String::from_utf8(bytes).map_err(|_| "credentials are not UTF-8")?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed PLAIN response");
    };
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
        return Err("acting as another user is not supported");
    }
    Ok((authcid.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        let enc = |s: &str| BASE64.encode(s);
        assert_eq!(
            decode_plain(&enc("\0u@x\0pw")),
            Ok(("u@x".into(), "pw".into()))
        );
        assert_eq!(
            decode_plain(&enc("u@x\0u@x\0pw")),
            Ok(("u@x".into(), "pw".into()))
        );
        assert!(decode_plain(&enc("other\0u@x\0pw")).is_err());
        assert!(decode_plain(&enc("u@x\0pw")).is_err());
        assert!(decode_plain(&enc("a\0b\0c\0d")).is_err());
        assert!(decode_plain("!!!").is_err());
    }
}
