//! The alphabets. The RFC 4648 family (bases 2, 8, 16, 32, 64, with and
//! without padding) is encoded by [`Encoding`] below, written for this build in
//! place of data-encoding's general engine; the others go to base-x.
//!
//! Semantics kept from data-encoding (and checked against it by
//! `tests/differential.rs`): big-endian bit packing; decoding refuses a length
//! no encoding produces, non-zero trailing bits, padding in the wrong place
//! or amount, and any symbol outside the alphabet; the base32 and base16
//! decoders also take the other letter case.

#[cfg(not(feature = "std"))]
use alloc::{string::String, vec::Vec};

/// A decoding failure (which one does not matter to multibase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

/// A power-of-two base over an ASCII alphabet of `1 << bits` symbols.
pub struct Encoding {
    symbols: &'static [u8],
    bits: u32,
    padding: bool,
    /// Decoding also takes the symbols' other ASCII case.
    any_case: bool,
}

const fn enc(symbols: &'static str, padding: bool, any_case: bool) -> Encoding {
    let bits = symbols.len().trailing_zeros();
    assert!(symbols.len() == 1 << bits);
    Encoding { symbols: symbols.as_bytes(), bits, padding, any_case }
}

impl Encoding {
    /// Symbols in one padded block: the least multiple of `bits` that is a
    /// whole number of bytes, over `bits`.
    fn block(&self) -> usize {
        8 / gcd(8, self.bits) as usize
    }

    pub fn encode(&self, input: &[u8]) -> String {
        let mut out = String::with_capacity((input.len() * 8).div_ceil(self.bits as usize) + self.block());
        let mask = (1u32 << self.bits) - 1;
        let (mut acc, mut n) = (0u32, 0u32);
        for &b in input {
            acc = (acc << 8) | u32::from(b);
            n += 8;
            while n >= self.bits {
                n -= self.bits;
                out.push(char::from(self.symbols[((acc >> n) & mask) as usize]));
            }
            acc &= (1 << n) - 1;
        }
        if n > 0 {
            out.push(char::from(self.symbols[((acc << (self.bits - n)) & mask) as usize]));
        }
        if self.padding {
            while !out.len().is_multiple_of(self.block()) {
                out.push('=');
            }
        }
        out
    }

    fn value(&self, c: u8) -> Option<u32> {
        let find = |c: u8| self.symbols.iter().position(|&s| s == c).map(|i| i as u32);
        find(c).or_else(|| {
            if self.any_case {
                find(c.to_ascii_lowercase()).or_else(|| find(c.to_ascii_uppercase()))
            } else {
                None
            }
        })
    }

    /// Padded input decodes block by block (each block of `block()` symbols
    /// padded on its own, as data-encoding allows: "AAA=AA==" is two blocks).
    pub fn decode(&self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(input.len() * self.bits as usize / 8);
        if !self.padding {
            self.decode_unpadded(input, &mut out)?;
            return Ok(out);
        }
        if !input.len().is_multiple_of(self.block()) {
            return Err(DecodeError);
        }
        for block in input.chunks(self.block()) {
            let symbols = block.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
            // Exactly the padding the encoder writes after this many symbols.
            if block.len() - symbols != (self.block() - symbols) % self.block() {
                return Err(DecodeError);
            }
            self.decode_unpadded(&block[..symbols], &mut out)?;
        }
        Ok(out)
    }

    fn decode_unpadded(&self, symbols: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let (mut acc, mut n) = (0u32, 0u32);
        for &c in symbols {
            acc = (acc << self.bits) | self.value(c).ok_or(DecodeError)?;
            n += self.bits;
            if n >= 8 {
                n -= 8;
                out.push((acc >> n) as u8);
                acc &= (1 << n) - 1;
            }
        }
        // A whole symbol left over is a length no encoding produces; the bits
        // short of a symbol must be the zeros the encoder filled in.
        if n >= self.bits || acc != 0 {
            return Err(DecodeError);
        }
        Ok(())
    }
}

const fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

pub const BASE2: Encoding = enc("01", false, false);
pub const BASE8: Encoding = enc("01234567", false, false);
/// Base10 (alphabet: 0123456789)
pub const BASE10: &str = "0123456789";
pub const BASE16_LOWER: Encoding = enc("0123456789abcdef", false, true);
pub const BASE16_UPPER: Encoding = enc("0123456789ABCDEF", false, true);
pub const BASE32_NOPAD_LOWER: Encoding = enc("abcdefghijklmnopqrstuvwxyz234567", false, true);
pub const BASE32_NOPAD_UPPER: Encoding = enc("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", false, true);
pub const BASE32_PAD_LOWER: Encoding = enc("abcdefghijklmnopqrstuvwxyz234567", true, true);
pub const BASE32_PAD_UPPER: Encoding = enc("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", true, true);
pub const BASE32HEX_NOPAD_LOWER: Encoding = enc("0123456789abcdefghijklmnopqrstuv", false, true);
pub const BASE32HEX_NOPAD_UPPER: Encoding = enc("0123456789ABCDEFGHIJKLMNOPQRSTUV", false, true);
pub const BASE32HEX_PAD_LOWER: Encoding = enc("0123456789abcdefghijklmnopqrstuv", true, true);
pub const BASE32HEX_PAD_UPPER: Encoding = enc("0123456789ABCDEFGHIJKLMNOPQRSTUV", true, true);
pub const BASE32Z: Encoding = enc("ybndrfg8ejkmcpqxot1uwisza345h769", false, false);
/// Base36, [0-9a-z] no padding (alphabet: 0123456789abcdefghijklmnopqrstuvwxyz).
pub const BASE36_LOWER: &str = "0123456789abcdefghijklmnopqrstuvwxyz";
/// Base36, [0-9A-Z] no padding (alphabet: 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ).
pub const BASE36_UPPER: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const BASE58_FLICKR: &str = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
pub const BASE58_BITCOIN: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
pub const BASE64_NOPAD: Encoding =
    enc("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", false, false);
pub const BASE64_PAD: Encoding = enc("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true, false);
pub const BASE64URL_NOPAD: Encoding =
    enc("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false, false);
pub const BASE64URL_PAD: Encoding =
    enc("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", true, false);
