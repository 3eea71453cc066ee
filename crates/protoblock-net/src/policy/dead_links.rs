//! Which connections are dead: libp2p's ping reports each failure and
//! leaves the connection open, so a link that stalled whole (seen under a
//! thousand-client crowd: neither side reading, neither closing) would be
//! kept for good. A connection whose pings fail `limit` times in a row is
//! closed, and both ends redial. Sans-IO: the driver feeds ping results and
//! closes what this names.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
pub struct DeadLinks<C> {
    /// Failures in a row before a connection counts as dead (0: never).
    limit: u8,
    failures: HashMap<C, u8>,
}

impl<C: Copy + Eq + Hash> DeadLinks<C> {
    pub fn new(limit: u8) -> Self {
        Self { limit, failures: HashMap::new() }
    }

    /// A ping on `conn` succeeded or failed. True: close `conn` now.
    pub fn on_ping(&mut self, conn: C, ok: bool) -> bool {
        if ok {
            self.failures.remove(&conn);
            return false;
        }
        let n = self.failures.entry(conn).or_default();
        *n = n.saturating_add(1);
        if self.limit > 0 && *n >= self.limit {
            self.failures.remove(&conn);
            return true;
        }
        false
    }

    /// Forget a closed connection (the map holds open ones only).
    pub fn on_closed(&mut self, conn: C) {
        self.failures.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_make_a_link_dead_and_a_success_forgives_them() {
        let mut d = DeadLinks::new(3);
        assert!(!d.on_ping(1, false));
        assert!(!d.on_ping(1, false));
        assert!(!d.on_ping(1, true), "an answer resets the count");
        assert!(!d.on_ping(1, false));
        assert!(!d.on_ping(1, false));
        assert!(!d.on_ping(2, false), "counted per connection");
        assert!(d.on_ping(1, false), "the third failure in a row");
        assert!(d.failures.len() == 1, "a link named dead is forgotten");
        d.on_closed(2);
        assert!(d.failures.is_empty());
    }

    #[test]
    fn a_limit_of_zero_never_closes() {
        let mut d = DeadLinks::new(0);
        assert!((0..100).all(|_| !d.on_ping(7, false)));
    }
}
