//! Random values from the operating system (`ring::rand::SystemRandom`).

use ring::rand::{SecureRandom, SystemRandom};

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `N` random bytes. The OS generator failing is unrecoverable for a security product.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

pub fn fill(buf: &mut [u8]) {
    #[allow(clippy::expect_used)] // reason: no safe way to continue without OS randomness
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random generator failed");
}

/// A random string over `alphabet`, without modulo bias (rejection sampling).
fn string_from(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf);
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// `[0-9A-Za-z]{len}` (Grafana's `GetRandomString` alphabet).
pub fn alphanumeric(len: usize) -> String {
    string_from(ALNUM, len)
}

/// A Grafana-style short uid: a lowercase letter then 13 of `[0-9a-z]`.
pub fn short_uid() -> String {
    let first = string_from(&LOWER_ALNUM[10..], 1);
    first + &string_from(LOWER_ALNUM, 13)
}

/// A random password for the initial admin: 24 alphanumerics (~142 bits).
pub fn password() -> String {
    alphanumeric(24)
}

/// Lower-case hex.
pub fn hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Bytes first, then one ASCII check: `String::push` encodes and checks each char (every
    // request id is made here).
    let digits: Vec<u8> = data
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .collect();
    String::from_utf8(digits).unwrap_or_default()
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(alphanumeric(32).len(), 32);
        assert!(alphanumeric(100).chars().all(|c| c.is_ascii_alphanumeric()));
        let uid = short_uid();
        assert_eq!(uid.len(), 14);
        assert!(uid.chars().next().unwrap().is_ascii_lowercase());
        assert_ne!(short_uid(), short_uid());
        assert_eq!(from_hex(&hex(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
        assert_eq!(hex(&[]), "");
    }
}
