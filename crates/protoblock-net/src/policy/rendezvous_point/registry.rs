//! The rendezvous point's policy, sans-IO: what it holds, for whom and for
//! how long, and its answer to each request (time comes in as `now_ms`).
//! The bounds are the module above's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use libp2p::PeerId;
use libp2p::core::{PeerRecord, SignedEnvelope};
use protoblock_proto::rendezvous::{Message, message};

/// The spec's longest namespace.
pub const MAX_NAMESPACE: usize = 255;
/// A TTL-less registration lives this long (the spec's default).
pub const DEFAULT_TTL_SECS: u64 = 2 * 60 * 60;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub max_per_peer: usize,
    pub max_total: usize,
    /// The signed peer record's encoded size. Ours hold a handful of
    /// addresses (well under 1 KiB).
    pub max_record_bytes: usize,
    pub min_ttl_secs: u64,
    pub max_ttl_secs: u64,
    pub max_discover: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_per_peer: 4,
            max_total: 4096,
            max_record_bytes: 4096,
            min_ttl_secs: 60,
            max_ttl_secs: DEFAULT_TTL_SECS,
            max_discover: 100,
        }
    }
}

impl RegistryConfig {
    /// The largest request worth reading: a register with the largest record.
    pub fn max_request_bytes(&self) -> usize {
        self.max_record_bytes + MAX_NAMESPACE + 64
    }
}

/// Why a registration or discover was refused, as the spec's status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    InvalidNamespace,
    InvalidRecord,
    InvalidTtl,
    InvalidCookie,
    NotAuthorized,
    Unavailable,
}

impl Refusal {
    fn status(self) -> message::ResponseStatus {
        use message::ResponseStatus as S;
        match self {
            Refusal::InvalidNamespace => S::EInvalidNamespace,
            Refusal::InvalidRecord => S::EInvalidSignedPeerRecord,
            Refusal::InvalidTtl => S::EInvalidTtl,
            Refusal::InvalidCookie => S::EInvalidCookie,
            Refusal::NotAuthorized => S::ENotAuthorized,
            Refusal::Unavailable => S::EUnavailable,
        }
    }
}

#[derive(Debug)]
struct Entry {
    peer: PeerId,
    namespace: String,
    record: Vec<u8>,
    ttl_secs: u64,
    expires_ms: u64,
}

/// One registration served by a discover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub namespace: String,
    pub record: Vec<u8>,
    /// Seconds left.
    pub ttl_secs: u64,
}

/// The registrations, in the order they were made (their sequence number,
/// which the discover cookie pages by).
#[derive(Debug, Default)]
pub struct Registry {
    cfg: RegistryConfig,
    by_seq: BTreeMap<u64, Entry>,
    by_key: HashMap<(PeerId, String), u64>,
    per_peer: HashMap<PeerId, usize>,
    expiries: BTreeSet<(u64, u64)>,
    next_seq: u64,
}

impl Registry {
    pub fn new(cfg: RegistryConfig) -> Self {
        Self { cfg, next_seq: 1, ..Self::default() }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_seq.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Record and namespace bytes held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.by_seq.values().map(|e| e.record.len() + e.namespace.len()).sum()
    }

    /// Registers `from` under `namespace` with `record` (already verified to
    /// be `from`'s signed record by the caller); the granted TTL.
    pub fn register(
        &mut self,
        now_ms: u64,
        from: PeerId,
        namespace: &str,
        record: Vec<u8>,
        ttl_secs: Option<u64>,
    ) -> Result<u64, Refusal> {
        self.expire(now_ms);
        if namespace.is_empty() || namespace.len() > MAX_NAMESPACE {
            return Err(Refusal::InvalidNamespace);
        }
        if record.len() > self.cfg.max_record_bytes {
            return Err(Refusal::InvalidRecord);
        }
        let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if !(self.cfg.min_ttl_secs..=self.cfg.max_ttl_secs).contains(&ttl) {
            return Err(Refusal::InvalidTtl);
        }
        let key = (from, namespace.to_owned());
        let replaces = self.by_key.get(&key).copied();
        if replaces.is_none()
            && (self.per_peer.get(&from).copied().unwrap_or(0) >= self.cfg.max_per_peer
                || self.by_seq.len() >= self.cfg.max_total)
        {
            return Err(Refusal::Unavailable);
        }
        if let Some(seq) = replaces {
            self.remove_seq(seq);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let expires_ms = now_ms.saturating_add(ttl.saturating_mul(1000));
        *self.per_peer.entry(from).or_default() += 1;
        self.by_key.insert(key, seq);
        self.expiries.insert((expires_ms, seq));
        self.by_seq
            .insert(seq, Entry { peer: from, namespace: namespace.to_owned(), record, ttl_secs: ttl, expires_ms });
        Ok(ttl)
    }

    pub fn unregister(&mut self, from: PeerId, namespace: &str) {
        if let Some(seq) = self.by_key.get(&(from, namespace.to_owned())).copied() {
            self.remove_seq(seq);
        }
    }

    /// The peer is no longer connected: its registrations go.
    pub fn peer_gone(&mut self, peer: PeerId) {
        if self.per_peer.contains_key(&peer) {
            let seqs: Vec<u64> = self.by_seq.iter().filter(|(_, e)| e.peer == peer).map(|(s, _)| *s).collect();
            for seq in seqs {
                self.remove_seq(seq);
            }
        }
    }

    /// Registrations after `cookie` (in `namespace`, or all), at most
    /// `limit` and `max_discover`; the cookie for the next page.
    pub fn discover(
        &mut self,
        now_ms: u64,
        namespace: Option<&str>,
        cookie: Option<&[u8]>,
        limit: Option<u64>,
    ) -> Result<(Vec<Served>, Vec<u8>), Refusal> {
        self.expire(now_ms);
        let after = match cookie {
            None => 0,
            Some(c) => {
                let (seq, ns) = decode_cookie(c).ok_or(Refusal::InvalidCookie)?;
                // The spec's rule: a cookie is valid only for the namespace it was made for.
                if ns != namespace.unwrap_or("") {
                    return Err(Refusal::InvalidCookie);
                }
                seq
            }
        };
        let limit = limit.map_or(self.cfg.max_discover, |l| (l as usize).min(self.cfg.max_discover));
        let mut served = Vec::new();
        let mut last = after;
        for (seq, e) in self.by_seq.range(after.saturating_add(1)..) {
            if served.len() >= limit {
                break;
            }
            last = *seq;
            if namespace.is_some_and(|ns| ns != e.namespace) {
                continue;
            }
            let left = e.expires_ms.saturating_sub(now_ms).div_ceil(1000).clamp(1, e.ttl_secs);
            served.push(Served { namespace: e.namespace.clone(), record: e.record.clone(), ttl_secs: left });
        }
        Ok((served, encode_cookie(last, namespace.unwrap_or(""))))
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some(&(at, seq)) = self.expiries.first() {
            if at > now_ms {
                break;
            }
            self.remove_seq(seq);
        }
    }

    fn remove_seq(&mut self, seq: u64) {
        let Some(e) = self.by_seq.remove(&seq) else { return };
        self.expiries.remove(&(e.expires_ms, seq));
        if let Some(n) = self.per_peer.get_mut(&e.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&e.peer);
            }
        }
        self.by_key.remove(&(e.peer, e.namespace));
    }

    /// Answers one request from `from`; `None` for an unregister (the spec
    /// has no answer to it).
    pub fn handle(&mut self, now_ms: u64, from: PeerId, request: Message) -> Option<Message> {
        use message::MessageType as T;
        match request.r#type.and_then(|t| T::try_from(t).ok()) {
            Some(T::Register) => {
                let reg = request.register.unwrap_or_default();
                let ns = reg.ns.unwrap_or_default();
                let result = match reg.signed_peer_record {
                    None => Err(Refusal::InvalidRecord),
                    Some(bytes) => match record_owner(&bytes) {
                        None => Err(Refusal::InvalidRecord),
                        Some(owner) if owner != from => Err(Refusal::NotAuthorized),
                        Some(_) => self.register(now_ms, from, &ns, bytes, reg.ttl),
                    },
                };
                Some(register_response(result))
            }
            Some(T::Unregister) => {
                if let Some(ns) = request.unregister.and_then(|u| u.ns) {
                    self.unregister(from, &ns);
                }
                None
            }
            Some(T::Discover) => {
                let d = request.discover.unwrap_or_default();
                let result = self.discover(now_ms, d.ns.as_deref(), d.cookie.as_deref(), d.limit);
                Some(discover_response(result))
            }
            // A response, or no type: a request we do not answer with data.
            _ => Some(register_response(Err(Refusal::InvalidRecord))),
        }
    }
}

/// The peer a signed peer record belongs to, if the envelope's signature
/// and payload check out. The record's size is bounded before this runs.
fn record_owner(bytes: &[u8]) -> Option<PeerId> {
    let envelope = SignedEnvelope::from_protobuf_encoding(bytes).ok()?;
    PeerRecord::from_signed_envelope(envelope).ok().map(|r| r.peer_id())
}

/// libp2p's cookie layout, which its client only echoes: 8 bytes (here the
/// last sequence number served, big-endian), then the namespace.
fn encode_cookie(seq: u64, namespace: &str) -> Vec<u8> {
    let mut c = seq.to_be_bytes().to_vec();
    c.extend_from_slice(namespace.as_bytes());
    c
}

fn decode_cookie(c: &[u8]) -> Option<(u64, &str)> {
    if c.len() < 8 || c.len() > 8 + MAX_NAMESPACE {
        return None;
    }
    let (seq, ns) = c.split_at(8);
    Some((u64::from_be_bytes(seq.try_into().ok()?), std::str::from_utf8(ns).ok()?))
}

fn register_response(result: Result<u64, Refusal>) -> Message {
    let r = match result {
        Ok(ttl) => message::RegisterResponse {
            status: Some(message::ResponseStatus::Ok as i32),
            status_text: None,
            ttl: Some(ttl),
        },
        Err(e) => message::RegisterResponse {
            status: Some(e.status() as i32),
            status_text: Some(format!("{e:?}")),
            ttl: None,
        },
    };
    Message {
        r#type: Some(message::MessageType::RegisterResponse as i32),
        register_response: Some(r),
        ..Message::default()
    }
}

fn discover_response(result: Result<(Vec<Served>, Vec<u8>), Refusal>) -> Message {
    let r = match result {
        Ok((served, cookie)) => message::DiscoverResponse {
            registrations: served
                .into_iter()
                .map(|s| message::Register {
                    ns: Some(s.namespace),
                    signed_peer_record: Some(s.record),
                    ttl: Some(s.ttl_secs),
                })
                .collect(),
            cookie: Some(cookie),
            status: Some(message::ResponseStatus::Ok as i32),
            status_text: None,
        },
        Err(e) => message::DiscoverResponse {
            registrations: Vec::new(),
            cookie: None,
            status: Some(e.status() as i32),
            status_text: Some(format!("{e:?}")),
        },
    };
    Message {
        r#type: Some(message::MessageType::DiscoverResponse as i32),
        discover_response: Some(r),
        ..Message::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    fn record(key: &Keypair, addrs: usize) -> Vec<u8> {
        let addrs = (0..addrs).map(|i| format!("/ip4/127.0.0.1/tcp/{}", 1000 + i).parse().unwrap()).collect();
        PeerRecord::new(key, addrs).unwrap().into_signed_envelope().into_protobuf_encoding()
    }

    fn register_msg(ns: &str, record: Vec<u8>, ttl: Option<u64>) -> Message {
        Message {
            r#type: Some(message::MessageType::Register as i32),
            register: Some(message::Register { ns: Some(ns.into()), signed_peer_record: Some(record), ttl }),
            ..Message::default()
        }
    }

    fn status(m: &Message) -> i32 {
        m.register_response.as_ref().and_then(|r| r.status).unwrap()
    }

    #[test]
    fn refreshing_a_registration_replaces_it_and_holds_no_more() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let mut reg = Registry::new(RegistryConfig::default());
        let rec = record(&key, 2);
        for i in 0..1_000u64 {
            let r = reg.handle(i, peer, register_msg("protoblock/x", rec.clone(), Some(3600))).unwrap();
            assert_eq!(status(&r), message::ResponseStatus::Ok as i32);
        }
        assert_eq!(reg.len(), 1);
        assert_eq!(reg.bytes(), rec.len() + "protoblock/x".len());
    }

    #[test]
    fn oversized_records_foreign_records_and_bad_ttls_are_refused() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let cfg = RegistryConfig::default();
        let mut reg = Registry::new(cfg.clone());
        let big = record(&key, 400);
        assert!(big.len() > cfg.max_record_bytes);
        let r = reg.handle(0, peer, register_msg("n", big, None)).unwrap();
        assert_eq!(status(&r), message::ResponseStatus::EInvalidSignedPeerRecord as i32);
        let other = Keypair::generate_ed25519();
        let r = reg.handle(0, peer, register_msg("n", record(&other, 1), None)).unwrap();
        assert_eq!(status(&r), message::ResponseStatus::ENotAuthorized as i32);
        let r = reg.handle(0, peer, register_msg("n", record(&key, 1), Some(72 * 3600))).unwrap();
        assert_eq!(status(&r), message::ResponseStatus::EInvalidTtl as i32);
        let r = reg.handle(0, peer, register_msg("n", b"not an envelope".to_vec(), None)).unwrap();
        assert_eq!(status(&r), message::ResponseStatus::EInvalidSignedPeerRecord as i32);
        assert!(reg.is_empty());
    }

    #[test]
    fn namespaces_per_peer_and_in_all_are_capped_and_freed_when_the_peer_goes() {
        let cfg = RegistryConfig { max_total: 10, ..RegistryConfig::default() };
        let mut reg = Registry::new(cfg.clone());
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let rec = record(&key, 1);
        for i in 0..cfg.max_per_peer {
            assert!(reg.register(0, peer, &format!("ns{i}"), rec.clone(), None).is_ok());
        }
        assert_eq!(reg.register(0, peer, "one-more", rec.clone(), None), Err(Refusal::Unavailable));
        // A refresh of a namespace it holds is still fine at the cap.
        assert!(reg.register(0, peer, "ns0", rec.clone(), None).is_ok());
        let others: Vec<PeerId> = (0..20).map(|_| PeerId::random()).collect();
        let taken = others.iter().filter(|p| reg.register(0, **p, "ns", rec.clone(), None).is_ok()).count();
        assert_eq!(taken, cfg.max_total - cfg.max_per_peer);
        reg.peer_gone(peer);
        assert_eq!(reg.len(), cfg.max_total - cfg.max_per_peer);
        assert!(reg.register(0, others[19], "ns", rec, None).is_ok(), "the slots it held are free again");
    }

    #[test]
    fn discover_pages_by_cookie_and_skips_expired_registrations() {
        let cfg = RegistryConfig { max_discover: 3, ..RegistryConfig::default() };
        let mut reg = Registry::new(cfg);
        let rec = vec![1u8; 10];
        let peers: Vec<PeerId> = (0..7).map(|_| PeerId::random()).collect();
        for (i, p) in peers.iter().enumerate() {
            let ttl = if i == 0 { 60 } else { 3600 };
            reg.register(0, *p, if i % 2 == 0 { "a" } else { "b" }, rec.clone(), Some(ttl)).unwrap();
        }
        // "a": peers 0, 2, 4, 6; peer 0 has expired by 61 s.
        let (page, cookie) = reg.discover(61_000, Some("a"), None, Some(2)).unwrap();
        assert_eq!(page.len(), 2, "peers 2 and 4");
        let (rest, cookie) = reg.discover(61_000, Some("a"), Some(&cookie), None).unwrap();
        assert_eq!(rest.len(), 1, "peer 6");
        let (none, _) = reg.discover(61_000, Some("a"), Some(&cookie), None).unwrap();
        assert!(none.is_empty());
        assert!(page.iter().chain(&rest).all(|s| s.namespace == "a" && s.ttl_secs <= 3600));
        assert_eq!(reg.len(), 6, "the expired one is gone");
        assert_eq!(reg.discover(0, Some("b"), Some(&cookie), None), Err(Refusal::InvalidCookie));
        assert_eq!(reg.discover(0, None, Some(b"short"), None), Err(Refusal::InvalidCookie));
        let (all, _) = reg.discover(61_000, None, None, Some(u64::MAX)).unwrap();
        assert_eq!(all.len(), 3, "at most max_discover");
    }
}
