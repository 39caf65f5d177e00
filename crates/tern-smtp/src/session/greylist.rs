//! Greylisting (`[spam] greylisting`): the first delivery attempt of an
//! unknown (client network, sender, recipient) triplet is deferred with
//! 451 4.7.1; real servers retry after a while and are then remembered
//! (the Store keeps the triplets), while much spam software never comes
//! back. Networks, not addresses, so a sender's pool of outgoing servers
//! (a /24, a /64) counts as one.

use super::Session;
use crate::reply::Reply;
use crate::Mode;
use std::net::IpAddr;

/// How long a triplet that passed is remembered (postgrey's 35 days).
const REMEMBER_SECS: i64 = 35 * 86_400;

impl Session {
    /// `Some(reply)` when this recipient must wait.
    pub(super) async fn greylisted(&mut self, recipient: &str) -> Option<Reply> {
        let delay = self.srv.greylist_delay?;
        if self.mode != Mode::Mta
            || self.account.is_some()
            || self.config().may_relay(self.peer.ip())
        {
            return None;
        }
        let sender = self
            .tx
            .as_ref()?
            .from
            .as_ref()
            .map(|m| m.address().to_lowercase())
            .unwrap_or_default();
        let network = network_of(self.peer.ip());
        let recipient = recipient.to_lowercase();
        let verdict = self
            .srv
            .mail
            .store()
            .greylist(
                (&network, &sender, &recipient),
                tern_core::time::unix_now(),
                delay as i64,
                REMEMBER_SECS,
            )
            .await;
        match verdict {
            Ok(tern_store::GreylistVerdict::Pass) => None,
            Ok(tern_store::GreylistVerdict::Wait(secs)) => Some(Reply::new(
                451,
                "4.7.1",
                format!("greylisted: please try again in {secs} seconds"),
            )),
            Err(e) => {
                // Greylisting is a nicety: a store fault lets mail through.
                tracing::warn!("smtp {}: greylisting: {e}", self.peer);
                None
            }
        }
    }
}

/// The client's network: its /24 (IPv4) or /64 (IPv6).
fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn networks() {
        assert_eq!(
            super::network_of("192.0.2.77".parse().unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(
            super::network_of("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }
}
