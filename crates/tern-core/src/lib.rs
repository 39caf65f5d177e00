//! Tern's shared ground: what every protocol crate and the binary need, and
//! nothing that belongs to one protocol.
//!
//! - [`config`]: the `tern.toml` configuration file, its defaults and checks;
//! - [`tls`]: the rustls server configuration, with a self-signed certificate
//!   generated on first start when none is configured;
//! - [`password`]: Argon2id password hashing and verification;
//! - [`address`]: validated email addresses and domain names for the directory.
//!
//! This crate does no network I/O and knows no wire format; it must never
//! depend on `tern-store` or on a protocol crate (arrows point down only).

pub mod address;
pub mod config;
pub mod password;
pub mod tls;

pub use address::{parse_domain, Address, AddressError};
pub use config::{Config, ConfigError, Durability, Protocol};
