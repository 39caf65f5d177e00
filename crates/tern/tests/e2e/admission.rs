//! Connection admission under a flood (issue 10): connections that never log
//! in have their own share and a short idle timeout, a flooding address
//! displaces only its own connections, and logged-in users and clients from
//! fresh addresses are served throughout. Client addresses are played with
//! sources in 127.0.0.0/8, which all reach a loopback listener.

use crate::harness::TestDir;
use crate::imap::{addr, Imap, USER};
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn a_flood_of_connections_that_never_log_in_locks_nobody_out() {
    let t = TestDir::with_config(
        "[limits]\nmax_connections = 12\nmax_unauthenticated = 8\nmax_connections_per_ip = 50",
    );
    t.add_account(USER);
    let server = t.start();
    let imap = addr(&server, "imap");

    // A user logs in before the flood.
    let mut user = Imap::connect_from(imap, ip("127.0.0.2"));
    assert!(user.response().starts_with("* OK "));
    user.run(&format!("LOGIN {USER} secret")).ok();

    // The flood: one address fills the unauthenticated share and then some.
    let mut flood = Vec::new();
    for _ in 0..8 {
        let mut c = Imap::connect_from(imap, ip("127.0.0.66"));
        assert!(c.response().starts_with("* OK "));
        flood.push(c);
    }
    // More from the flooding address: the share is full and it holds the
    // most, so each newcomer from it displaces its own oldest, never another.
    let mut late = Imap::connect_from(imap, ip("127.0.0.66"));
    let greeting = late.response();
    assert!(greeting.starts_with("* BYE"), "{greeting:?}");

    // A client from a fresh address is served, in place of the flood's oldest.
    let mut fresh = Imap::connect_from(imap, ip("127.0.0.3"));
    let greeting = fresh.response();
    assert!(greeting.starts_with("* OK "), "{greeting:?}");
    fresh.run(&format!("LOGIN {USER} secret")).ok();
    assert!(
        flood[0].is_closed(),
        "the flood's oldest connection was evicted"
    );
    // The user logged in before the flood still works.
    user.run("NOOP").ok();
    fresh.run("SELECT INBOX").ok();
}

#[test]
fn a_connection_that_does_not_log_in_is_let_go_sooner() {
    let t = TestDir::with_config("[limits]\nlogin_timeout_secs = 1\nidle_timeout_secs = 300");
    t.add_account(USER);
    let server = t.start();
    let imap = addr(&server, "imap");
    let mut user = Imap::login(imap);
    let mut idle = Imap::connect(imap);
    // Say nothing: the server closes the one not logged in after a second.
    let bye = idle.response();
    assert!(bye.starts_with("* BYE"), "{bye:?}");
    assert!(idle.is_closed());
    // The logged-in one keeps the ordinary idle timeout.
    user.run("NOOP").ok();
}
