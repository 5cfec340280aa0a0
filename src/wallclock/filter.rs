//! The exec filter: a seccomp program, installed in a process just before it execs into a
//! node, that hands every `execve`/`execveat` of it and its descendants to the supervisor as a
//! user notification. The listener it makes is sent to the supervisor with the node's clock
//! page path, over the controller's socket to it.
//!
//! Everything here runs in a forked child before exec: plain system calls only, on data made
//! before the fork, nothing allocated.

use std::ffi::CString;
use std::os::fd::RawFd;

/// `AUDIT_ARCH_X86_64`: the architecture `seccomp_data.arch` reports for 64-bit syscalls.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;

/// The filter: `execve` and `execveat` of x86-64 go to the listener, everything else runs.
const PROGRAM: [libc::sock_filter; 7] = [
    // seccomp_data.arch
    libc::sock_filter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 4 },
    libc::sock_filter { code: BPF_JEQ_K, jt: 0, jf: 3, k: AUDIT_ARCH_X86_64 },
    // seccomp_data.nr
    libc::sock_filter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 0 },
    libc::sock_filter { code: BPF_JEQ_K, jt: 2, jf: 0, k: libc::SYS_execve as u32 },
    libc::sock_filter { code: BPF_JEQ_K, jt: 1, jf: 0, k: libc::SYS_execveat as u32 },
    libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
    libc::sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_USER_NOTIF },
];

/// What a process needs to put itself under a node's clock before it execs: the socket to
/// the supervisor and the node's page.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    /// The controller's end of the supervisor's socket (a descriptor of this process).
    pub(crate) socket: RawFd,
    /// The node's clock page, as a path the node's processes can open.
    pub(crate) page: CString,
}

impl Hook {
    /// Installs the filter and sends its listener to the supervisor. For a forked child
    /// before exec: plain system calls on data made before the fork.
    ///
    /// # Safety
    /// Call only between fork and exec, with `self.socket` open.
    pub(crate) unsafe fn install(&self) -> std::io::Result<()> {
        let program = libc::sock_fprog { len: PROGRAM.len() as u16, filter: PROGRAM.as_ptr().cast_mut() };
        // SAFETY: seccomp reads the program, which outlives the call; it returns a new descriptor.
        let listener = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &raw const program,
            )
        };
        if listener < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let listener = listener as RawFd;
        // SAFETY: the message's buffers live on this stack for the call.
        let sent = unsafe { send_fd(self.socket, self.page.as_bytes(), listener) };
        // SAFETY: the supervisor holds its own copy now (or the send failed); ours goes.
        unsafe { libc::close(listener) };
        sent
    }
}

/// Sends `bytes` with the descriptor `fd` attached (SCM_RIGHTS) on `socket`.
///
/// # Safety
/// Plain system calls; `socket` and `fd` must be open descriptors.
unsafe fn send_fd(socket: RawFd, bytes: &[u8], fd: RawFd) -> std::io::Result<()> {
    // CMSG_SPACE(sizeof(int)) is 24 on x86-64; u64s keep the buffer aligned for cmsghdr.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() };
    // SAFETY: an all-zero msghdr is valid; the fields set below point into this frame.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    // SAFETY: the control buffer holds one header of CMSG_SPACE(int) bytes, zeroed.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&raw const msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
        libc::CMSG_DATA(header).cast::<RawFd>().write_unaligned(fd);
    }
    // SAFETY: sendmsg reads the message built above.
    if unsafe { libc::sendmsg(socket, &raw const msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
