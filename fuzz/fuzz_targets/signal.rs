//! `/webrtc-signaling` messages (SDP offers, answers, ICE candidates) read
//! from an arbitrary stream until it ends or errs. None may panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protoblock_webrtc::signal_codec::read_message;

fuzz_target!(|data: &[u8]| {
    futures::executor::block_on(async {
        let mut r = futures::io::Cursor::new(data);
        for _ in 0..64 {
            match read_message(&mut r).await {
                Ok(Some(m)) => {
                    let _ = m.message_kind();
                }
                Ok(None) | Err(_) => break,
            }
        }
    });
});
