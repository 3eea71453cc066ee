//! This build's RFC 4648 codecs against data-encoding, which upstream uses:
//! the same string for random bytes, and the same verdict and bytes for
//! random strings (valid encodings, damaged ones, and symbol soup).

use multibase::Base;
use proptest::prelude::*;

fn spec(symbols: &str, padding: bool, translate: Option<(&str, &str)>) -> data_encoding::Encoding {
    let mut s = data_encoding::Specification::new();
    s.symbols.push_str(symbols);
    if padding {
        s.padding = Some('=');
    }
    if let Some((from, to)) = translate {
        s.translate.from.push_str(from);
        s.translate.to.push_str(to);
    }
    s.encoding().unwrap()
}

const LOWER32: &str = "abcdefghijklmnopqrstuvwxyz234567";
const UPPER32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX32L: &str = "0123456789abcdefghijklmnopqrstuv";
const HEX32U: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
const AZ: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const AZL: &str = "abcdefghijklmnopqrstuvwxyz";
const AV: &str = "ABCDEFGHIJKLMNOPQRSTUV";
const AVL: &str = "abcdefghijklmnopqrstuv";

/// Upstream's definitions (multibase 0.9.3 `src/encoding.rs`).
fn pairs() -> Vec<(Base, data_encoding::Encoding)> {
    vec![
        (Base::Base2, spec("01", false, None)),
        (Base::Base8, spec("01234567", false, None)),
        (Base::Base16Lower, data_encoding::HEXLOWER_PERMISSIVE),
        (Base::Base16Upper, data_encoding::HEXUPPER_PERMISSIVE),
        (Base::Base32Lower, spec(LOWER32, false, Some((AZ, AZL)))),
        (Base::Base32Upper, spec(UPPER32, false, Some((AZL, AZ)))),
        (Base::Base32PadLower, spec(LOWER32, true, Some((AZ, AZL)))),
        (Base::Base32PadUpper, spec(UPPER32, true, Some((AZL, AZ)))),
        (Base::Base32HexLower, spec(HEX32L, false, Some((AV, AVL)))),
        (Base::Base32HexUpper, spec(HEX32U, false, Some((AVL, AV)))),
        (Base::Base32HexPadLower, spec(HEX32L, true, Some((AV, AVL)))),
        (Base::Base32HexPadUpper, spec(HEX32U, true, Some((AVL, AV)))),
        (Base::Base32Z, spec("ybndrfg8ejkmcpqxot1uwisza345h769", false, None)),
        (Base::Base64, data_encoding::BASE64_NOPAD),
        (Base::Base64Pad, data_encoding::BASE64),
        (Base::Base64Url, data_encoding::BASE64URL_NOPAD),
        (Base::Base64UrlPad, data_encoding::BASE64URL),
    ]
}

fn same_decode(base: Base, de: &data_encoding::Encoding, s: &str) -> Result<(), TestCaseError> {
    let ours = base.decode(s).ok();
    let theirs = de.decode(s.as_bytes()).ok();
    prop_assert_eq!(ours, theirs, "{:?} decoding {:?}", base, s);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encodings_match(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        for (base, de) in pairs() {
            let ours = base.encode(&bytes);
            prop_assert_eq!(&ours, &de.encode(&bytes), "{:?}", base);
            prop_assert_eq!(base.decode(&ours).unwrap(), bytes.clone());
        }
    }

    #[test]
    fn damaged_encodings_get_the_same_verdict(
        bytes in prop::collection::vec(any::<u8>(), 0..24),
        cut in 0usize..8,
        at in any::<prop::sample::Index>(),
        with in prop::sample::select(vec!['=', 'A', 'a', 'z', 'Z', '0', '1', '7', '8', '9', '-', '_', '+', '/', '!', ' ']),
    ) {
        for (base, de) in pairs() {
            let good = base.encode(&bytes);
            // Truncated (lengths no encoder makes, and missing padding).
            let short = &good[..good.len().saturating_sub(cut)];
            same_decode(base, &de, short)?;
            // One symbol replaced (other case, padding inside, foreign symbols, trailing bits).
            if !good.is_empty() {
                let i = at.index(good.len());
                let mut s: Vec<char> = good.chars().collect();
                s[i] = with;
                same_decode(base, &de, &s.into_iter().collect::<String>())?;
            }
        }
    }

    #[test]
    fn symbol_soup_gets_the_same_verdict(s in "[a-zA-Z0-9=+/_\\-]{0,20}") {
        for (base, de) in pairs() {
            same_decode(base, &de, &s)?;
        }
    }
}
