//! Anonymous namespaces, held by file descriptors, created on short-lived threads or (a
//! network's nodes) on one thread that goes back to the host's namespaces after each.
//!
//! A namespace made by `unshare` on a throw-away thread lives as long as a descriptor of it
//! (or a process inside it) does: nothing is mounted under /run/netns, so a crashed
//! controller leaves nothing to clean in the host's namespaces.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// The namespaces of one node: network, mount (own /etc/hosts and /tmp) and UTS (hostname).
/// The mount namespace is held by a descriptor; the other two are kept in the network's
/// [`Keep`] and opened when needed.
#[derive(Debug)]
pub(crate) struct NodeNamespaces {
    mnt: OwnedFd,
    /// The network namespace's identity: how processes inside are found.
    pub(crate) net: NetnsId,
    keep: Arc<Keep>,
    /// The node's index: its namespaces' names in the keep.
    index: usize,
}

/// Where a network keeps its nodes' network and UTS namespaces, so that it holds one
/// descriptor a node (its mount namespace) rather than three: the namespace files are
/// bind-mounted on a tmpfs in a mount namespace of the network's own, which the host never
/// sees, held by two descriptors. When they close (teardown, or a crash of the controller),
/// the kernel drops the mounts and, with them, the namespaces. (Mount namespaces cannot be
/// kept so: the kernel takes binding one into an older mount namespace for a loop, and the
/// order of their ids is not the order they were made in on every kernel.)
#[derive(Debug)]
pub(crate) struct Keep {
    ns: OwnedFd,
    dir: OwnedFd,
}

/// Where the keep's tmpfs is mounted, inside its own mount namespace.
const KEEP_DIR: &str = "/tmp";

impl Keep {
    /// A new, empty keep.
    pub(crate) fn create() -> Result<Arc<Keep>> {
        on_thread(|| {
            unshare(CloneFlags::CLONE_NEWNS).context(|| "unshare(CLONE_NEWNS) for the namespace keep")?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .context(|| "making the namespace keep's mounts private")?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("tmpfs"), KEEP_DIR, Some("tmpfs"), flags, Some("mode=0700"))
                .context(|| format!("mounting a tmpfs on {KEEP_DIR} in the namespace keep"))?;
            let dir = nix::fcntl::open(KEEP_DIR, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .context(|| format!("opening {KEEP_DIR} in the namespace keep"))?;
            Ok(Arc::new(Keep { ns: open_ns("mnt")?.0, dir }))
        })
    }

    /// Binds `net` (the calling thread's network namespace) and its UTS namespace in as node
    /// `index`'s. The
    /// thread goes into the keep's mount namespace: the caller takes it back.
    fn put(&self, index: usize, net: OwnedFd) -> Result<()> {
        let own = [("net", net), ("uts", open_ns("uts")?.0)];
        setns(&self.ns, libc::CLONE_NEWNS, "entering the namespace keep")?;
        own.iter().try_for_each(|(kind, fd)| {
            let name = format!("{index}.{kind}");
            let file = nix::fcntl::openat(
                &self.dir,
                name.as_str(),
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
                Mode::S_IRUSR,
            )
            .context(|| format!("making {name} in the namespace keep"))?;
            drop(file);
            let source = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
            mount(
                Some(source.as_str()),
                format!("{KEEP_DIR}/{name}").as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .context(|| format!("keeping node {index}'s {kind} namespace"))
        })
    }

    fn open(&self, index: usize, kind: &str) -> Result<OwnedFd> {
        let name = format!("{index}.{kind}");
        nix::fcntl::openat(&self.dir, name.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .context(|| format!("opening node {index}'s {kind} namespace"))
    }
}

fn setns(fd: &impl AsRawFd, kind: libc::c_int, what: &str) -> Result<()> {
    // SAFETY: setns on a namespace descriptor the caller holds, for this thread only.
    if unsafe { libc::setns(fd.as_raw_fd(), kind) } != 0 {
        return Err(Error::io(what, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// What a node's mount namespace shows in place of the host's files.
#[derive(Debug)]
pub(crate) struct NodeView<'a> {
    pub(crate) hostname: &'a str,
    pub(crate) hosts_file: &'a Path,
    pub(crate) tmp_dir: &'a Path,
    /// (path inside the node, source directory on the host)
    pub(crate) binds: &'a [(PathBuf, PathBuf)],
}

/// The lab: a new network namespace that forwards IPv4 (and with `ipv6`, IPv6) between its
/// links, and a netlink socket opened inside it. Links made in the lab or moved into it get
/// no IPv6 address of their own.
pub(crate) fn create_lab(ipv6: bool) -> Result<(OwnedFd, u64, netlink_sys::Socket)> {
    on_thread(move || {
        unshare(CloneFlags::CLONE_NEWNET).context(|| "unshare(CLONE_NEWNET)")?;
        set_ipv6(ipv6)?;
        let mut settings = vec![("/proc/sys/net/ipv4/ip_forward", "1")];
        if ipv6 {
            // 1: no address generation (the lab's ports need no link-local address).
            settings.push(("/proc/sys/net/ipv6/conf/default/addr_gen_mode", "1"));
            settings.push(("/proc/sys/net/ipv6/conf/all/forwarding", "1"));
        }
        for (path, value) in settings {
            std::fs::write(path, value).context(|| format!("writing {path} in the lab"))?;
        }
        let (fd, inode) = open_ns("net")?;
        Ok((fd, inode, route_socket()?))
    })
}

/// Makes nodes' namespaces, one after the other, on the thread that owns it (no thread per
/// node): the thread enters each new node's namespaces to set them up. A new network or UTS
/// namespace copies nothing that matters from the one it is made in, so the thread goes back
/// to where it started only for the mount namespace (a new one copies the current one's
/// mounts). Use it on a thread of its own: it unshares the thread's file system attributes
/// (cwd, root), as entering mount namespaces needs, and leaves the thread in the last node's
/// network namespace.
pub(crate) struct NodeMaker {
    home_mnt: OwnedFd,
    keep: Arc<Keep>,
}

impl NodeMaker {
    /// Remembers the calling thread's mount namespace, to come back to after each node; the
    /// nodes' mount and UTS namespaces go into `keep`.
    pub(crate) fn new(keep: Arc<Keep>) -> Result<NodeMaker> {
        Ok(NodeMaker { home_mnt: open_ns("mnt")?.0, keep })
    }

    /// Node `index`'s namespaces, with its view of the file system set up, and a netlink
    /// socket inside.
    pub(crate) fn make(&mut self, index: usize, view: &NodeView<'_>) -> Result<(NodeNamespaces, netlink_sys::Socket)> {
        let made = Self::enter_new(view).and_then(|(net, inode, socket)| {
            let mnt = open_ns("mnt")?.0;
            self.keep.put(index, net)?;
            let net = NetnsId { inode, cookie: socket_cookie(socket.as_raw_fd())? };
            Ok((NodeNamespaces { mnt, net, keep: self.keep.clone(), index }, socket))
        });
        // A node made from inside another (or from inside the keep) would see its mounts:
        // back to where the thread started, whatever happened.
        setns(&self.home_mnt, libc::CLONE_NEWNS, "going back to the host's mount namespace")?;
        made
    }

    fn enter_new(view: &NodeView<'_>) -> Result<(OwnedFd, u64, netlink_sys::Socket)> {
        let flags = CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS;
        unshare(flags).context(|| "unshare(CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWUTS)")?;
        nix::unistd::sethostname(view.hostname).context(|| "sethostname")?;
        // Keep our mounts from propagating back to the host.
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
            .context(|| "making / a slave mount in the node's mount namespace")?;
        bind(view.hosts_file, Path::new("/etc/hosts"))?;
        bind(view.tmp_dir, Path::new("/tmp"))?;
        for (target, source) in view.binds {
            bind(source, target)?;
        }
        let (net, net_inode) = open_ns("net")?;
        Ok((net, net_inode, route_socket()?))
    }
}

/// The namespaces a process joins to run inside a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Enter {
    pub(crate) net: RawFd,
    pub(crate) uts: RawFd,
    pub(crate) mnt: RawFd,
    /// The node's time namespace, if its clocks are shifted.
    pub(crate) time: Option<RawFd>,
}

impl Enter {
    /// Joins the namespaces in a freshly forked child (async-signal-safe: plain syscalls only).
    ///
    /// # Safety
    /// Call only between fork and exec.
    pub(crate) unsafe fn join(self) -> std::io::Result<()> {
        let time = self.time.map(|fd| (fd, libc::CLONE_NEWTIME));
        let all = [
            Some((self.net, libc::CLONE_NEWNET)),
            Some((self.uts, libc::CLONE_NEWUTS)),
            time,
            Some((self.mnt, libc::CLONE_NEWNS)),
        ];
        for (fd, kind) in all.into_iter().flatten() {
            // SAFETY: setns is a plain system call on descriptors the caller keeps open; it
            // allocates nothing, so it is safe in a forked child.
            if unsafe { libc::setns(fd, kind) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// A new time namespace with these (seconds, nanoseconds) offsets for the monotonic and
/// boottime clocks, held by a descriptor that processes join before they exec.
pub(crate) fn create_time(monotonic: (i64, i64), boottime: (i64, i64)) -> Result<OwnedFd> {
    on_thread(move || {
        // SAFETY: a plain system call on this thread.
        if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EINVAL) => Error::KernelFeature {
                    feature: "time namespaces".into(),
                    fix: "use Linux 5.6 or later built with CONFIG_TIME_NS".into(),
                },
                _ => Error::io("unshare(CLONE_NEWTIME)", e),
            });
        }
        let offsets = format!("monotonic {} {}\nboottime {} {}\n", monotonic.0, monotonic.1, boottime.0, boottime.1);
        // Per thread, the file is only under the thread's id (/proc/self is the main thread's).
        let path = format!("/proc/{}/timens_offsets", nix::unistd::gettid());
        std::fs::write(&path, offsets).map_err(|e| match e.raw_os_error() {
            Some(libc::ERANGE) => Error::invalid(
                "clock offset",
                "it would move a clock before the host's boot or past the kernel's 146 years; use a smaller one",
            ),
            _ => Error::io(format!("writing {path}"), e),
        })?;
        let path = "/proc/thread-self/ns/time_for_children";
        Ok(File::open(path).context(|| format!("opening {path}"))?.into())
    })
}

/// A network namespace's identity. The inode is how `/proc/PID/ns/net` names it (cheap to
/// compare), but the kernel reuses inode numbers once a namespace is gone; the cookie
/// (`SO_NETNS_COOKIE`) it never reuses, so it proves a namespace is the one that was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NetnsId {
    pub(crate) inode: u64,
    pub(crate) cookie: u64,
}

/// Network namespaces found to be among a set of [`NetnsId`]s: each one found is held open
/// while this lives, so its inode number cannot pass to another namespace meanwhile.
pub(crate) struct Proven {
    wanted: HashMap<u64, u64>,
    held: HashMap<u64, File>,
}

impl Proven {
    pub(crate) fn new(ids: &[NetnsId]) -> Proven {
        Proven { wanted: ids.iter().map(|id| (id.inode, id.cookie)).collect(), held: HashMap::new() }
    }

    /// Whether the network namespace of process `pid`, seen with `inode`, is one of the set.
    pub(crate) fn has(&mut self, pid: i32, inode: u64) -> bool {
        if self.held.contains_key(&inode) {
            return true;
        }
        let Some(&cookie) = self.wanted.get(&inode) else { return false };
        let Ok(file) = File::open(format!("/proc/{pid}/ns/net")) else { return false };
        let same = file.metadata().is_ok_and(|m| m.ino() == inode) && net_cookie(&file) == Some(cookie);
        if same {
            self.held.insert(inode, file);
        }
        same
    }
}

/// The cookie of the network namespace `ns` (entered on a throw-away thread), or `None` if
/// it cannot be read.
fn net_cookie(ns: &File) -> Option<u64> {
    on_thread(|| {
        setns(ns, libc::CLONE_NEWNET, "entering a network namespace")?;
        let socket = std::os::unix::net::UnixDatagram::unbound().context(|| "opening a socket")?;
        socket_cookie(socket.as_raw_fd())
    })
    .ok()
}

/// The cookie of the network namespace a socket was opened in.
fn socket_cookie(socket: RawFd) -> Result<u64> {
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`, which is that large.
    let rc =
        unsafe { libc::getsockopt(socket, libc::SOL_SOCKET, SO_NETNS_COOKIE, (&raw mut cookie).cast(), &raw mut len) };
    if rc != 0 {
        return Err(Error::io(
            "reading a network namespace's cookie (SO_NETNS_COOKIE)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(cookie)
}

/// `SO_NETNS_COOKIE` from `<asm-generic/socket.h>` (Linux 5.14), which the libc crate lacks.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The inode of a namespace file (e.g. `/proc/PID/ns/net`), or `None` if it is gone.
pub(crate) fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

fn on_thread<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| s.spawn(f).join().expect("namespace thread panicked"))
}

fn open_ns(kind: &str) -> Result<(OwnedFd, u64)> {
    let path = format!("/proc/thread-self/ns/{kind}");
    let file = File::open(&path).context(|| format!("opening {path}"))?;
    let inode = file.metadata().context(|| format!("stat {path}"))?.ino();
    Ok((file.into(), inode))
}

fn route_socket() -> Result<netlink_sys::Socket> {
    let mut socket =
        netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).context(|| "opening a netlink socket")?;
    socket.bind_auto().context(|| "binding a netlink socket")?;
    socket.set_ext_ack(true).context(|| "enabling netlink extended acks")?;
    Ok(socket)
}

/// Sets IPv6 on or off for the calling thread's network namespace (a no-op without IPv6).
///
/// Only for the lab: every namespace has its own `/proc/sys/net/ipv6/conf/all`, and looking
/// one up walks past the same-named entries of all the others, so a write per node would
/// make bring-up quadratic. Nodes turn IPv6 off per link through netlink instead.
fn set_ipv6(on: bool) -> Result<()> {
    let value = if on { "0" } else { "1" };
    for conf in ["default", "all"] {
        let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
        match std::fs::write(&path, value) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            r => r.context(|| format!("writing {path}"))?,
        }
    }
    Ok(())
}

fn bind(source: &Path, target: &Path) -> Result<()> {
    if !target.exists() {
        return Err(Error::invalid(
            "bind",
            format!("{} does not exist on the host; a node can only bind over an existing path", target.display()),
        ));
    }
    mount(Some(source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .context(|| format!("bind-mounting {} on {}", source.display(), target.display()))
}

/// Turns a socket opened on another thread into an rtnetlink handle on the current runtime.
pub(crate) fn into_handle(socket: netlink_sys::Socket) -> rtnetlink::Handle {
    use std::os::fd::IntoRawFd;
    // SAFETY: the descriptor comes straight from an owned, open socket.
    let socket = unsafe { netlink_sys::TokioSocket::from_raw_fd(socket.into_raw_fd()) };
    let (connection, handle, _) = rtnetlink::from_socket(socket);
    tokio::spawn(connection);
    handle
}

impl NodeNamespaces {
    /// What a process joins to run in the node, with its time namespace if it has one, and
    /// the descriptors opened for it (keep them until the process has joined).
    pub(crate) fn enter(&self, time: Option<RawFd>) -> Result<(Enter, [OwnedFd; 2])> {
        let (net, uts) = (self.net()?, self.keep.open(self.index, "uts")?);
        let enter = Enter { net: net.as_raw_fd(), uts: uts.as_raw_fd(), mnt: self.mnt.as_raw_fd(), time };
        Ok((enter, [net, uts]))
    }

    /// The node's network namespace, opened.
    pub(crate) fn net(&self) -> Result<OwnedFd> {
        self.keep.open(self.index, "net")
    }
}
