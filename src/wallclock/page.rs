//! A node's clock page: one 4 KiB file, mapped shared and read-only into every process of the
//! node, read-write by the controller. It holds what makes the node's wall clock out of the
//! host's: `node = host + offset + (host - base) * rate / 10^9`, read under a sequence lock.
//!
//! Layout (little-endian, offsets in bytes), which the stub reads as is:
//!
//! | offset | field | meaning |
//! |---:|---|---|
//! | 0 | `u32` magic | `NDCK` |
//! | 4 | `u32` version | 1 |
//! | 8 | `u64` seq | odd while the controller writes |
//! | 16 | `i64` offset | nanoseconds ahead of the host at `base` |
//! | 24 | `i64` base | the host's CLOCK_REALTIME, in ns, when the rate was set |
//! | 32 | `i64` rate | drift in parts per billion |

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use crate::error::{Error, Result};
use crate::files;

/// The page's size.
pub(crate) const SIZE: usize = 4096;
const MAGIC: u32 = u32::from_le_bytes(*b"NDCK");
const VERSION: u32 = 1;
const SEQ: usize = 8;
const OFFSET: usize = 16;
const BASE: usize = 24;
const RATE: usize = 32;

/// What the page says: the shift at `base_ns` and the drift from then on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Setting {
    /// Nanoseconds ahead of the host at `base_ns` (negative: behind).
    pub(crate) offset_ns: i64,
    /// The host's CLOCK_REALTIME in nanoseconds when the setting was made.
    pub(crate) base_ns: i64,
    /// How much faster the node's clock runs, in parts per billion.
    pub(crate) rate_ppb: i64,
}

impl Setting {
    /// The node's time when the host's CLOCK_REALTIME reads `host_ns`, as the stub computes it.
    pub(crate) fn node_time(&self, host_ns: i64) -> i64 {
        let drift = i128::from(host_ns - self.base_ns) * i128::from(self.rate_ppb) / 1_000_000_000;
        host_ns + self.offset_ns + drift as i64
    }
}

/// The log of the page at `page`: its path with `.log` appended.
pub(crate) fn log_of(page: &Path) -> PathBuf {
    let mut log = page.as_os_str().to_owned();
    log.push(".log");
    PathBuf::from(log)
}

/// A node's clock page, mapped read-write.
#[derive(Debug)]
pub(crate) struct Page {
    path: PathBuf,
    map: NonNull<u8>,
}

// SAFETY: the mapping is owned by the Page alone; writes go through `&mut self`.
unsafe impl Send for Page {}
// SAFETY: shared references only read the path.
unsafe impl Sync for Page {}

impl Page {
    /// Makes the page file at `path` (mode 0644, in a directory of netdriver's) with no shift.
    pub(crate) fn create(path: &Path) -> Result<Page> {
        let mut bytes = vec![0u8; SIZE];
        bytes[..4].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[4..8].copy_from_slice(&VERSION.to_le_bytes());
        files::write_file(path, &bytes, 0o644)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        // SAFETY: a fresh shared mapping of a file of SIZE bytes; nothing else in this process
        // maps it, and the mapping lives until drop.
        let map = unsafe {
            mmap(
                None,
                SIZE.try_into().expect("4096 is not zero"),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &file,
                0,
            )
        }
        .map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
        Ok(Page { path: path.to_path_buf(), map: map.cast() })
    }

    /// The file, as processes of the node map it.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where the supervisor notes the programs it could not put under this page's clock.
    pub(crate) fn log(&self) -> PathBuf {
        log_of(&self.path)
    }

    /// Writes `setting`; readers that race see the old one or the new one, never a mix.
    pub(crate) fn set(&mut self, setting: Setting) {
        let field = |at: usize| self.map.as_ptr().wrapping_add(at).cast::<u64>();
        // SAFETY: every field is 8-byte aligned inside the SIZE-byte mapping; readers only
        // read it (the sequence lock tells them when it is whole).
        unsafe {
            let seq = field(SEQ).read_volatile();
            field(SEQ).write_volatile(seq.wrapping_add(1) | 1);
            fence(Ordering::SeqCst);
            field(OFFSET).cast::<i64>().write_volatile(setting.offset_ns);
            field(BASE).cast::<i64>().write_volatile(setting.base_ns);
            field(RATE).cast::<i64>().write_volatile(setting.rate_ppb);
            fence(Ordering::SeqCst);
            field(SEQ).write_volatile((seq | 1).wrapping_add(1));
        }
    }

    /// What the page says now.
    pub(crate) fn get(&self) -> Setting {
        let field = |at: usize| self.map.as_ptr().wrapping_add(at).cast::<i64>();
        // SAFETY: aligned fields inside the mapping; only this Page writes them.
        unsafe {
            Setting {
                offset_ns: field(OFFSET).read_volatile(),
                base_ns: field(BASE).read_volatile(),
                rate_ppb: field(RATE).read_volatile(),
            }
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `create`, unmapped once.
        let _ = unsafe { munmap(self.map.cast(), SIZE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_time_adds_the_offset_and_the_drift() {
        let s = Setting { offset_ns: 3_600_000_000_000, base_ns: 1_000_000_000_000, rate_ppb: 100_000_000 };
        assert_eq!(s.node_time(1_000_000_000_000), 1_000_000_000_000 + 3_600_000_000_000);
        // 10 s later at +10%: 11 s later on the node.
        assert_eq!(s.node_time(1_010_000_000_000), 1_011_000_000_000 + 3_600_000_000_000);
        let slow = Setting { rate_ppb: -1_000_000, ..s };
        assert_eq!(slow.node_time(1_010_000_000_000), 1_009_990_000_000 + 3_600_000_000_000);
    }

    #[test]
    fn a_written_page_reads_back() {
        let dir = std::env::temp_dir().join(format!("netdriver-page-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut page = Page::create(&dir.join("clock")).unwrap();
        let setting = Setting { offset_ns: -5, base_ns: 7, rate_ppb: 9 };
        page.set(setting);
        assert_eq!(page.get(), setting);
        let bytes = std::fs::read(page.path()).unwrap();
        assert_eq!(&bytes[..4], b"NDCK");
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()) % 2, 0, "the sequence is even at rest");
        assert_eq!(i64::from_le_bytes(bytes[16..24].try_into().unwrap()), -5);
        drop(page);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
