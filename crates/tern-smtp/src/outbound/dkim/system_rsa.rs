//! RSA-SHA256 signing (RSASSA-PKCS1-v1_5, RFC 8017 §8.2) through the
//! system's OpenSSL 3, loaded at run time when it is there.
//!
//! Why: RSA-2048 signing is the largest single cost of a relayed message
//! (BENCHMARKS.md, issue 12: over a third of the server's CPU), and on CPUs
//! with AVX-512 IFMA OpenSSL 3 signs in about half the time ring takes
//! (ring has no such code path): 0.36 ms against 0.66 ms a signature on the
//! benchmark machine. The library is opened with `dlopen`, not linked, so
//! Tern still builds and runs as one binary without it — ring signs then —
//! and nothing but this module touches it. Only `libcrypto.so.3` is used:
//! its ABI is stable across OpenSSL 3.x, and the functions called here are
//! the documented EVP interface.
//!
//! PKCS#1 v1.5 signatures are deterministic, so OpenSSL and ring produce
//! the same bytes for the same key and input (a test checks it), and each
//! key is probed when it is loaded (`dkim::system_signer`): a library that
//! signs differently or not at all leaves the signing to ring.

use mail_auth::common::crypto::{Algorithm, CryptoError, Sha256, SigningKey};
use mail_auth::common::headers::Writable;
use std::ffi::{c_int, c_long, c_uchar, c_ulong, c_void, CStr};
use std::sync::OnceLock;

/// `EVP_PKEY_RSA` (the NID of rsaEncryption).
const EVP_PKEY_RSA: c_int = 6;
/// The first OpenSSL 3 release, as `OpenSSL_version_num` reports it.
const OPENSSL_3: c_ulong = 0x3000_0000;

type D2iPrivateKey =
    unsafe extern "C" fn(c_int, *mut *mut c_void, *mut *const c_uchar, c_long) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void);
type GetSize = unsafe extern "C" fn(*const c_void) -> c_int;
type New = unsafe extern "C" fn() -> *mut c_void;
type DigestSignInit = unsafe extern "C" fn(
    *mut c_void,
    *mut *mut c_void,
    *const c_void,
    *mut c_void,
    *mut c_void,
) -> c_int;
type DigestSign =
    unsafe extern "C" fn(*mut c_void, *mut c_uchar, *mut usize, *const c_uchar, usize) -> c_int;
type GetMd = unsafe extern "C" fn() -> *const c_void;
type Clear = unsafe extern "C" fn();
type VersionNum = unsafe extern "C" fn() -> c_ulong;

/// The few libcrypto functions used, resolved once.
struct Api {
    d2i_private_key: D2iPrivateKey,
    pkey_free: Free,
    pkey_get_size: GetSize,
    md_ctx_new: New,
    md_ctx_free: Free,
    digest_sign_init: DigestSignInit,
    digest_sign: DigestSign,
    sha256: GetMd,
    err_clear_error: Clear,
}

/// The system's libcrypto, if it opened and is OpenSSL 3 or later.
fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        let api = load();
        match &api {
            Some(_) => tracing::debug!("DKIM: RSA signatures through the system's libcrypto.so.3"),
            None => tracing::debug!("DKIM: no usable libcrypto.so.3; RSA signatures through ring"),
        }
        api
    })
    .as_ref()
}

fn load() -> Option<Api> {
    // SAFETY: dlopen with a constant name; the handle is never closed, so
    // the function pointers taken from it stay valid for the process.
    let handle = unsafe {
        libc::dlopen(
            c"libcrypto.so.3".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL,
        )
    };
    if handle.is_null() {
        return None;
    }
    let symbol = |name: &CStr| {
        // SAFETY: a valid handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        (!p.is_null()).then_some(p)
    };
    let version = symbol(c"OpenSSL_version_num")?;
    // SAFETY (here and below): each pointer is the named libcrypto
    // function, cast to its documented OpenSSL 3 signature.
    unsafe {
        let version = std::mem::transmute::<*mut c_void, VersionNum>(version);
        if version() < OPENSSL_3 {
            return None;
        }
        use std::mem::transmute as cast;
        Some(Api {
            d2i_private_key: cast::<*mut c_void, D2iPrivateKey>(symbol(c"d2i_PrivateKey")?),
            pkey_free: cast::<*mut c_void, Free>(symbol(c"EVP_PKEY_free")?),
            pkey_get_size: cast::<*mut c_void, GetSize>(symbol(c"EVP_PKEY_get_size")?),
            md_ctx_new: cast::<*mut c_void, New>(symbol(c"EVP_MD_CTX_new")?),
            md_ctx_free: cast::<*mut c_void, Free>(symbol(c"EVP_MD_CTX_free")?),
            digest_sign_init: cast::<*mut c_void, DigestSignInit>(symbol(c"EVP_DigestSignInit")?),
            digest_sign: cast::<*mut c_void, DigestSign>(symbol(c"EVP_DigestSign")?),
            sha256: cast::<*mut c_void, GetMd>(symbol(c"EVP_sha256")?),
            err_clear_error: cast::<*mut c_void, Clear>(symbol(c"ERR_clear_error")?),
        })
    }
}

/// True when RSA signatures go through the system's OpenSSL.
pub fn available() -> bool {
    api().is_some()
}

/// An RSA private key held by libcrypto.
pub struct RsaKey {
    api: &'static Api,
    /// An `EVP_PKEY *`, owned; freed on drop.
    pkey: *mut c_void,
    /// The signature length: the modulus in bytes.
    size: usize,
}

// SAFETY: the key is never changed after it is built, and OpenSSL 3
// allows one EVP_PKEY to be used for signing from several threads at once
// (each signature has its own EVP_MD_CTX; blinding is thread-safe).
unsafe impl Send for RsaKey {}
unsafe impl Sync for RsaKey {}

impl RsaKey {
    /// The key in `der` (PKCS#1 RSAPrivateKey, as `tern dkim generate`
    /// stores it); `None` when libcrypto is not available, an error when
    /// it is but does not take the key.
    pub fn from_pkcs1_der(der: &[u8]) -> Option<Result<RsaKey, String>> {
        let api = api()?;
        let Ok(len) = c_long::try_from(der.len()) else {
            return Some(Err("RSA key too long".into()));
        };
        let mut p = der.as_ptr();
        // SAFETY: `p` points at `len` readable bytes; libcrypto copies what
        // it needs and only advances `p`.
        let pkey =
            unsafe { (api.d2i_private_key)(EVP_PKEY_RSA, std::ptr::null_mut(), &mut p, len) };
        if pkey.is_null() {
            // SAFETY: no arguments; clears this thread's error queue.
            unsafe { (api.err_clear_error)() };
            return Some(Err("libcrypto refused the RSA key".into()));
        }
        // SAFETY: a valid EVP_PKEY.
        let size = unsafe { (api.pkey_get_size)(pkey) };
        let key = RsaKey {
            api,
            pkey,
            size: usize::try_from(size).unwrap_or(0),
        };
        if key.size == 0 {
            return Some(Err("libcrypto reports no size for the RSA key".into()));
        }
        Some(Ok(key))
    }

    /// The RSASSA-PKCS1-v1_5 SHA-256 signature of `data`.
    pub fn sign_sha256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let api = self.api;
        // SAFETY: every pointer passed is valid for the call: the context
        // just made (freed below on every path), our key, a signature
        // buffer of the key's size with its length, and `data`.
        unsafe {
            let ctx = (api.md_ctx_new)();
            if ctx.is_null() {
                return Err("libcrypto could not make a digest context".into());
            }
            let mut signature = vec![0u8; self.size];
            let mut len = signature.len();
            let ok = (api.digest_sign_init)(
                ctx,
                std::ptr::null_mut(),
                (api.sha256)(),
                std::ptr::null_mut(),
                self.pkey,
            ) == 1
                && (api.digest_sign)(
                    ctx,
                    signature.as_mut_ptr(),
                    &mut len,
                    data.as_ptr(),
                    data.len(),
                ) == 1;
            (api.md_ctx_free)(ctx);
            if !ok || len > signature.len() {
                (api.err_clear_error)();
                return Err("libcrypto could not sign".into());
            }
            signature.truncate(len);
            Ok(signature)
        }
    }
}

impl Drop for RsaKey {
    fn drop(&mut self) {
        // SAFETY: the key is ours and no longer used.
        unsafe { (self.api.pkey_free)(self.pkey) }
    }
}

impl SigningKey for RsaKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(256);
        input.write(&mut data);
        self.sign_sha256(&data)
            .map_err(|e| mail_auth::Error::Crypto(CryptoError::Library(e)))
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }
}
