//! Test hooks: a peer that misbehaves in signalling, so browser tests can
//! check that the other side times out, refuses and cleans up. Not for use
//! outside tests.

use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p_identity::PeerId;

use super::SIGNALING_PROTOCOL;
use crate::direct::connection::RtcPeerConnection;
use crate::signal_codec::{Kind, SignalMessage, encode};

/// Opens a signalling stream to `peer` (a connection to it must exist) and
/// misbehaves as `mode` says, then holds the stream for `hold`:
/// - `garbage`: a length varint that never ends;
/// - `oversized`: a length of 1 MiB and the start of a body;
/// - `silent`: nothing at all;
/// - `offer`: a real SDP offer, then nothing (no candidates, never connects).
pub async fn misbehave(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    mode: &str,
    hold: Duration,
) -> Result<(), String> {
    let mut stream = control.open_stream(peer, SIGNALING_PROTOCOL).await.map_err(|e| e.to_string())?;
    let mut _pc = None;
    let bytes: Vec<u8> = match mode {
        "garbage" => vec![0xff; 12],
        "oversized" => {
            let mut b = Vec::new();
            prost::encoding::encode_varint(1 << 20, &mut b);
            b.extend(std::iter::repeat_n(b'x', 1024));
            b
        }
        "silent" => Vec::new(),
        "offer" => {
            let pc = RtcPeerConnection::with_configuration(&web_sys::RtcConfiguration::default())
                .map_err(|e| e.to_string())?;
            let _init = pc.new_labelled_channel("init").map_err(|e| e.to_string())?;
            let sdp = pc.create_offer().await.map_err(|e| e.to_string())?;
            _pc = Some(pc);
            encode(&SignalMessage::new(Kind::SdpOffer, sdp)).map_err(|e| e.to_string())?
        }
        other => return Err(format!("unknown mode {other}")),
    };
    stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    futures_timer::Delay::new(hold).await;
    Ok(())
}
