//! ICE server entries as operators write them and browsers take them.
//! Platform-free: the relay parses its `--ice-servers` with it, the page its
//! `iceServers` option.

/// One `RTCIceServer`: a STUN or TURN URL, and TURN's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceServer {
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

impl IceServer {
    /// Parses `stun:host:port`, `turn:host:port?transport=udp` (also `stuns:`,
    /// `turns:`), with TURN credentials written in: `turn:user:pass@host:port`.
    /// The credentials then travel as `username`/`credential`, never in the URL.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (scheme, rest) =
            s.split_once(':').ok_or_else(|| format!("ICE server {s:?}: expected scheme:host[:port]"))?;
        if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") {
            return Err(format!("ICE server {s:?}: scheme must be stun, stuns, turn or turns"));
        }
        let (userinfo, host) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if host.is_empty() || host.starts_with(':') {
            return Err(format!("ICE server {s:?}: no host"));
        }
        let (username, credential) = match userinfo {
            None => (None, None),
            Some(u) => {
                if scheme.starts_with("stun") {
                    return Err(format!("ICE server {s:?}: STUN takes no credentials"));
                }
                let (user, pass) =
                    u.split_once(':').ok_or_else(|| format!("ICE server {s:?}: credentials are user:pass"))?;
                (Some(user.to_string()), Some(pass.to_string()))
            }
        };
        Ok(Self { url: format!("{scheme}:{host}"), username, credential })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_turn_entries_parse_and_credentials_leave_the_url() {
        assert_eq!(
            IceServer::parse("stun:127.0.0.1:3478").unwrap(),
            IceServer { url: "stun:127.0.0.1:3478".into(), username: None, credential: None }
        );
        assert_eq!(
            IceServer::parse(" turn:alice:s3cr:et@turn.example.org:3478?transport=udp ").unwrap(),
            IceServer {
                url: "turn:turn.example.org:3478?transport=udp".into(),
                username: Some("alice".into()),
                credential: Some("s3cr:et".into()),
            }
        );
        for bad in ["", "127.0.0.1:3478", "http://x", "stun:", "turn:@", "stun:u:p@host", "turn:nopass@host"] {
            assert!(IceServer::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
