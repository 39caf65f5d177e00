//! Tern's shared ground: what every protocol crate and the binary need, and
//! nothing that belongs to one protocol.
//!
//! - [`config`]: the `tern.toml` configuration file, its defaults and checks;
//! - [`tls`]: the rustls server configuration, with a self-signed certificate
//!   generated on first start when none is configured;
//! - [`password`]: Argon2id password hashing and verification;
//! - [`address`]: validated email addresses and domain names for the directory;
//! - [`net`]: IP networks in CIDR notation, e.g. `smtp.relay_networks`;
//! - [`auth_limit`]: failed logins per client address, shared by every
//!   protocol that takes passwords.
//!
//! This crate does no network I/O and knows no wire format; it must never
//! depend on `tern-store` or on a protocol crate (arrows point down only).

pub mod address;
pub mod admission;
pub mod auth_limit;
pub mod config;
pub mod fuzz_corpus;
pub mod io;
pub mod net;
pub mod password;
pub mod password_strength;
pub mod sasl;
pub mod size;
pub mod spool;
pub mod time;
pub mod tls;
pub mod trace;

pub use address::{parse_domain, Address, AddressError};
pub use auth_limit::{AuthLimiter, RetryAfter};
pub use config::{
    BareLf, Config, ConfigError, Durability, Pop3Config, Pop3Deleted, Protocol, SmtpConfig,
    StoreBackend,
};
pub use net::{IpNetwork, IpNetworkError};
