//! The `tern` binary's library half: what `main.rs` wires together.
//!
//! - [`server`]: `tern serve` — listeners, sessions, graceful shutdown;
//! - [`admin`]: the directory commands (`domain`, `account`, `alias`).
//!
//! Protocol crates plug in here and nowhere else: this is the one place
//! that knows every crate (DESIGN.md, "arrows point down only").

pub mod admin;
pub mod server;
