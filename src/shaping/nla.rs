//! Netlink attributes as the kernel reads them: a 4-byte header (length, type) and a payload,
//! each attribute padded to 4 bytes. Integers are native-endian, which is little-endian on every
//! machine netdriver runs on.

/// The flag tc sets on the type of an attribute that holds attributes (`NLA_F_NESTED`).
pub(super) const NESTED: u16 = 0x8000;

/// Appends the attribute `kind` holding `payload`, padded to 4 bytes.
pub(super) fn put(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).expect("a netlink attribute holds less than 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Appends the attribute `kind` holding the attributes that `fill` appends.
pub(super) fn nest(out: &mut Vec<u8>, kind: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    fill(&mut inner);
    put(out, kind, &inner);
}

/// A C struct of `u32` fields, in order.
pub(super) fn words(fields: &[u32]) -> Vec<u8> {
    fields.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The bytes that the hex digits in `text` spell; whitespace is ignored (for captured messages).
#[cfg(test)]
pub(super) fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex digits"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_four_bytes() {
        let mut out = Vec::new();
        put(&mut out, 1, b"tbf\0");
        put(&mut out, 2, b"netem\0");
        assert_eq!(out, unhex("08000100 74626600  0a000200 6e6574656d00 0000"));
    }

    #[test]
    fn nests() {
        let mut out = Vec::new();
        nest(&mut out, 5 | NESTED, |inner| put(inner, 2, &words(&[1, 2])));
        assert_eq!(out, unhex("10000580 0c000200 01000000 02000000"));
    }
}
