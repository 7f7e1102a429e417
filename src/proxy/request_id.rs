//! `X-Request-Id` generation: a per-thread random prefix and a counter; the
//! value is cut from the per-thread chunk of [`super::value_arena`].

use std::cell::Cell;

use http::HeaderValue;

thread_local! {
    static STATE: Cell<(u32, u64)> = Cell::new((rand::random::<u32>(), 0));
}

/// A new 24-hex-digit request id, unique within this process.
pub fn generate() -> HeaderValue {
    let (prefix, n) = STATE.with(|s| {
        let (p, n) = s.get();
        s.set((p, n.wrapping_add(1)));
        (p, n)
    });
    let mut buf = [0u8; 24];
    write_hex(&mut buf[..8], prefix as u64);
    write_hex(&mut buf[8..], n);
    super::value_arena::header_value(|b| b.extend_from_slice(&buf))
}

fn write_hex(out: &mut [u8], mut v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_hex() {
        let a = super::generate();
        let b = super::generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.to_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
