//! The stub: position-independent x86-64 code copied into each process of a node, where the
//! vDSO's `clock_gettime`, `gettimeofday` and `time` symbols point instead of at the vDSO's own
//! functions. Each entry calls the real vDSO function and, for the wall clocks
//! (CLOCK_REALTIME, _COARSE, _ALARM and CLOCK_TAI), shifts the result by the node's clock page
//! (see [`super::page`]); every other clock (monotonic, boottime, CPU clocks) passes through
//! untouched, so time namespaces keep working.
//!
//! It is written for the stacks it runs on: Go calls the vDSO on a small system stack, so the
//! stub uses 32 bytes of its own (three saved registers and the return address) plus what the
//! real function uses, no thread-local storage, no stack protector and no library calls. Its
//! data (the page's address and the real functions') sits at the end of the same page and is
//! filled in when the stub is copied; a 16-byte header at its start gives the offsets of the
//! three entries and of the data.

use std::arch::global_asm;

global_asm!(
    r#"
    .pushsection .rodata.netdriver_stub, "a"
    .balign 16
    .globl netdriver_stub_start
netdriver_stub_start:
.Lstart:
    .long .Lclock_gettime - .Lstart
    .long .Lgettimeofday - .Lstart
    .long .Ltime - .Lstart
    .long .Ldata - .Lstart

/* int clock_gettime(clockid_t id, struct timespec *ts) */
.Lclock_gettime:
    push rbx
    push r12
    push r13
    mov ebx, edi
    mov r12, rsi
    call qword ptr [rip + .Lreal_clock_gettime]
    mov r13, rax
    test eax, eax
    jnz .Lcgt_done
    test r12, r12
    jz .Lcgt_done
    cmp ebx, 11
    ja .Lcgt_done
    mov eax, 0x921
    bt eax, ebx
    jnc .Lcgt_done
    imul rdi, qword ptr [r12], 1000000000
    add rdi, qword ptr [r12 + 8]
    call .Lshift
    cmp rax, rdi
    je .Lcgt_done
    mov rcx, 1000000000
    cqo
    idiv rcx
    test rdx, rdx
    jns .Lcgt_store
    add rdx, rcx
    dec rax
.Lcgt_store:
    mov qword ptr [r12], rax
    mov qword ptr [r12 + 8], rdx
.Lcgt_done:
    mov rax, r13
    pop r13
    pop r12
    pop rbx
    ret

/* int gettimeofday(struct timeval *tv, struct timezone *tz) */
.Lgettimeofday:
    push rbx
    push r12
    push r13
    mov r12, rdi
    call qword ptr [rip + .Lreal_gettimeofday]
    mov r13, rax
    test eax, eax
    jnz .Lgtod_done
    test r12, r12
    jz .Lgtod_done
    imul rdi, qword ptr [r12], 1000000000
    imul rax, qword ptr [r12 + 8], 1000
    add rdi, rax
    call .Lshift
    cmp rax, rdi
    je .Lgtod_done
    mov rcx, 1000000000
    cqo
    idiv rcx
    test rdx, rdx
    jns .Lgtod_store
    add rdx, rcx
    dec rax
.Lgtod_store:
    mov qword ptr [r12], rax
    mov rax, rdx
    xor edx, edx
    mov ecx, 1000
    div rcx
    mov qword ptr [r12 + 8], rax
.Lgtod_done:
    mov rax, r13
    pop r13
    pop r12
    pop rbx
    ret

/* time_t time(time_t *tloc) */
.Ltime:
    push rbx
    push r12
    push r13
    mov rbx, rdi
    xor edi, edi
    call qword ptr [rip + .Lreal_time]
    imul rdi, rax, 1000000000
    call .Lshift
    mov rcx, 1000000000
    cqo
    idiv rcx
    test rdx, rdx
    jns .Ltime_store
    dec rax
.Ltime_store:
    test rbx, rbx
    jz .Ltime_done
    mov qword ptr [rbx], rax
.Ltime_done:
    pop r13
    pop r12
    pop rbx
    ret

/* rax = the node's time for the host's time rdi (ns); clobbers rcx, rdx, r8-r11. With no
   drift, no division; the callers store nothing when there is no shift either. */
.Lshift:
    mov r8, qword ptr [rip + .Lpage]
.Lshift_retry:
    mov r9, qword ptr [r8 + 8]
    test r9, 1
    jnz .Lshift_busy
    mov r10, qword ptr [r8 + 16]
    mov r11, qword ptr [r8 + 24]
    mov rcx, qword ptr [r8 + 32]
    cmp r9, qword ptr [r8 + 8]
    jne .Lshift_retry
    lea rax, [rdi + r10]
    test rcx, rcx
    jz .Lshift_done
    mov rax, rdi
    sub rax, r11
    imul rcx
    mov rcx, 1000000000
    idiv rcx
    add rax, rdi
    add rax, r10
.Lshift_done:
    ret
.Lshift_busy:
    pause
    jmp .Lshift_retry

    .balign 8
.Ldata:
.Lpage:
    .quad 0
.Lreal_clock_gettime:
    .quad 0
.Lreal_gettimeofday:
    .quad 0
.Lreal_time:
    .quad 0
    .globl netdriver_stub_end
netdriver_stub_end:
    .popsection
"#
);

extern "C" {
    static netdriver_stub_start: u8;
    static netdriver_stub_end: u8;
}

/// The entries of the stub, by the vDSO function they stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `clock_gettime`.
    ClockGettime,
    /// `gettimeofday`.
    Gettimeofday,
    /// `time`.
    Time,
}

impl Entry {
    /// Every entry, in the order of the stub's header and data.
    pub(crate) const ALL: [Entry; 3] = [Entry::ClockGettime, Entry::Gettimeofday, Entry::Time];

    /// The vDSO's names for the function (the plain one and the `__vdso_` one).
    pub(crate) fn symbols(self) -> [&'static str; 2] {
        match self {
            Entry::ClockGettime => ["clock_gettime", "__vdso_clock_gettime"],
            Entry::Gettimeofday => ["gettimeofday", "__vdso_gettimeofday"],
            Entry::Time => ["time", "__vdso_time"],
        }
    }

    fn index(self) -> usize {
        Entry::ALL.iter().position(|e| *e == self).expect("every entry is in ALL")
    }
}

/// The stub's bytes as assembled.
fn image() -> &'static [u8] {
    // SAFETY: the two symbols delimit one block of bytes in this binary's read-only data
    // (assembled above), which lives as long as the program.
    unsafe {
        let start = &raw const netdriver_stub_start;
        let end = &raw const netdriver_stub_end;
        std::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

fn header(index: usize) -> usize {
    let bytes = &image()[index * 4..index * 4 + 4];
    u32::from_le_bytes(bytes.try_into().expect("four bytes")) as usize
}

/// The offset of `entry` from the stub's start.
pub(crate) fn entry_offset(entry: Entry) -> usize {
    header(entry.index())
}

/// The stub for one process: the page at `page` and the real functions at `real` (0 for
/// one the vDSO lacks, whose symbol is then left alone), ready to copy to the address the
/// process maps it at.
pub(crate) fn build(page: u64, real: [u64; 3]) -> Vec<u8> {
    let mut bytes = image().to_vec();
    let data = header(3);
    for (i, value) in std::iter::once(page).chain(real).enumerate() {
        bytes[data + i * 8..data + i * 8 + 8].copy_from_slice(&value.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the stub in this process, with `real` standing for the vDSO's functions.
    #[test]
    fn shifts_the_wall_clocks_and_passes_the_others_through() {
        use nix::sys::mman::{mmap_anonymous, mprotect, MapFlags, ProtFlags};

        let mut page = vec![0i64; 512];
        page[2] = 3_600_000_000_000; // offset: +1h
        page[3] = 0; // base
        page[4] = 0; // rate
        let real = [
            libc::clock_gettime as *const () as u64,
            libc::gettimeofday as *const () as u64,
            libc::time as *const () as u64,
        ];
        let stub = build(page.as_ptr() as u64, real);
        let len = std::num::NonZeroUsize::new(4096).unwrap();
        // SAFETY: a fresh anonymous mapping, written then made executable, and called through
        // function pointers of the C signatures the stub implements.
        unsafe {
            let map =
                mmap_anonymous(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_PRIVATE).unwrap();
            std::ptr::copy_nonoverlapping(stub.as_ptr(), map.as_ptr().cast::<u8>(), stub.len());
            mprotect(map, 4096, ProtFlags::PROT_READ | ProtFlags::PROT_EXEC).unwrap();
            let at = |entry| map.as_ptr().cast::<u8>().add(entry_offset(entry));
            let cgt: extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int =
                std::mem::transmute(at(Entry::ClockGettime));
            let gtod: extern "C" fn(*mut libc::timeval, *mut libc::c_void) -> libc::c_int =
                std::mem::transmute(at(Entry::Gettimeofday));
            let time: extern "C" fn(*mut libc::time_t) -> libc::time_t = std::mem::transmute(at(Entry::Time));

            let mut host = std::mem::zeroed::<libc::timespec>();
            let mut node = std::mem::zeroed::<libc::timespec>();
            libc::clock_gettime(libc::CLOCK_REALTIME, &mut host);
            assert_eq!(cgt(libc::CLOCK_REALTIME, &mut node), 0);
            let ahead = node.tv_sec - host.tv_sec;
            assert!((3599..=3601).contains(&ahead), "CLOCK_REALTIME is {ahead} s ahead");
            assert!((0..1_000_000_000).contains(&node.tv_nsec));
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut host);
            cgt(libc::CLOCK_MONOTONIC, &mut node);
            assert!((node.tv_sec - host.tv_sec).abs() <= 1, "CLOCK_MONOTONIC moved");
            let mut tv = std::mem::zeroed::<libc::timeval>();
            assert_eq!(gtod(&mut tv, std::ptr::null_mut()), 0);
            assert!((3599..=3601).contains(&(tv.tv_sec - host_secs())), "gettimeofday");
            assert!((0..1_000_000).contains(&tv.tv_usec));
            let mut out = 0;
            let t = time(&mut out);
            assert_eq!(t, out);
            assert!((3599..=3601).contains(&(t - host_secs())), "time");
            // A negative shift that crosses a second boundary keeps tv_nsec in range.
            page[2] = -1_500_000_000;
            cgt(libc::CLOCK_REALTIME, &mut node);
            assert!((0..1_000_000_000).contains(&node.tv_nsec), "{}", node.tv_nsec);
        }
    }

    fn host_secs() -> libc::time_t {
        // SAFETY: time(NULL) only reads the clock.
        unsafe { libc::time(std::ptr::null_mut()) }
    }
}
