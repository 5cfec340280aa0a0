//! Just enough of the vDSO's ELF image: where its dynamic symbols are, and where each symbol's
//! value lives, so that the value can be pointed elsewhere.
//!
//! The vDSO is mapped whole, from file offset 0, so a file offset in the image is an offset
//! from the mapping's start, and a symbol's value is a link address relative to the segment
//! loaded from offset 0.

/// One dynamic symbol of a vDSO mapped at some base address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Symbol {
    /// Where the function is.
    pub(crate) address: u64,
    /// Where the symbol's `st_value` is: the word to rewrite.
    pub(crate) value_at: u64,
    /// What `st_value` must become for the symbol to point at `target`.
    link_base: u64,
}

impl Symbol {
    /// The `st_value` that makes the symbol point at `target`.
    pub(crate) fn value_for(&self, target: u64) -> u64 {
        target.wrapping_sub(self.link_base)
    }
}

/// The vDSO image `image`, mapped at `base`.
pub(crate) struct Vdso<'a> {
    image: &'a [u8],
    base: u64,
}

impl<'a> Vdso<'a> {
    /// The image, if it is a 64-bit little-endian ELF file.
    pub(crate) fn parse(image: &'a [u8], base: u64) -> Option<Vdso<'a>> {
        (image.get(..6)? == b"\x7fELF\x02\x01").then_some(Vdso { image, base })
    }

    fn u16(&self, at: usize) -> Option<usize> {
        Some(u16::from_le_bytes(self.image.get(at..at + 2)?.try_into().ok()?) as usize)
    }

    fn u32(&self, at: usize) -> Option<usize> {
        Some(u32::from_le_bytes(self.image.get(at..at + 4)?.try_into().ok()?) as usize)
    }

    fn u64(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.image.get(at..at + 8)?.try_into().ok()?))
    }

    /// The link address of the segment loaded from file offset 0.
    fn load_vaddr(&self) -> Option<u64> {
        let (phoff, phentsize, phnum) = (self.u64(0x20)? as usize, self.u16(0x36)?, self.u16(0x38)?);
        (0..phnum).find_map(|i| {
            let ph = phoff + i * phentsize;
            (self.u32(ph)? == 1 && self.u64(ph + 8)? == 0).then(|| self.u64(ph + 16)).flatten()
        })
    }

    /// The dynamic symbol called `name`.
    pub(crate) fn symbol(&self, name: &str) -> Option<Symbol> {
        let (shoff, shentsize, shnum) = (self.u64(0x28)? as usize, self.u16(0x3a)?, self.u16(0x3c)?);
        let section = |i: usize| shoff + i * shentsize;
        let dynsym = (0..shnum).map(section).find(|&sh| self.u32(sh + 4) == Some(11))?;
        let (symtab, size) = (self.u64(dynsym + 24)? as usize, self.u64(dynsym + 32)? as usize);
        let strtab = self.u64(section(self.u32(dynsym + 40)?) + 24)? as usize;
        let link_base = self.base.wrapping_sub(self.load_vaddr()?);
        (0..size / 24).map(|i| symtab + i * 24).find_map(|sym| {
            let name_at = strtab + self.u32(sym)?;
            let rest = self.image.get(name_at..)?;
            let found = &rest[..rest.iter().position(|&b| b == 0)?];
            let value = self.u64(sym + 8)?;
            (found == name.as_bytes() && value != 0).then(|| Symbol {
                address: link_base.wrapping_add(value),
                value_at: self.base + sym as u64 + 8,
                link_base,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's own vDSO: its base and its bytes.
    fn own_vdso() -> (u64, Vec<u8>) {
        // SAFETY: getauxval only reads the auxiliary vector.
        let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps.lines().find(|l| l.ends_with("[vdso]")).expect("a [vdso] mapping");
        let (start, end) = line.split_whitespace().next().unwrap().split_once('-').unwrap();
        let (start, end) = (u64::from_str_radix(start, 16).unwrap(), u64::from_str_radix(end, 16).unwrap());
        assert_eq!(start, base);
        // SAFETY: the vDSO is mapped readable for its whole length.
        let bytes = unsafe { std::slice::from_raw_parts(base as *const u8, (end - start) as usize) }.to_vec();
        (base, bytes)
    }

    #[test]
    fn finds_the_clock_functions_of_its_own_vdso() {
        let (base, bytes) = own_vdso();
        let vdso = Vdso::parse(&bytes, base).expect("an ELF image");
        let cgt = vdso.symbol("__vdso_clock_gettime").expect("__vdso_clock_gettime");
        assert_eq!(vdso.symbol("clock_gettime").map(|s| s.address), Some(cgt.address), "both names, one function");
        // Calling it through the address found gives the time.
        // SAFETY: the vDSO's clock_gettime has the C signature used here.
        let f: extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int =
            unsafe { std::mem::transmute(cgt.address as usize) };
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        assert_eq!(f(libc::CLOCK_REALTIME, &mut ts), 0);
        assert!(ts.tv_sec > 1_700_000_000);
        // The value word holds what value_for gives for the function itself.
        let at = (cgt.value_at - base) as usize;
        assert_eq!(u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()), cgt.value_for(cgt.address));
        assert!(vdso.symbol("no_such_symbol").is_none());
    }
}
