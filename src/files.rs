//! Files and directories netdriver makes, opened and removed without trusting anyone else.
//!
//! Everything netdriver writes lives under a root that [`trusted_root`] checks (and makes when
//! missing): a real directory, no symlink anywhere on its path, owned by root or by the caller,
//! writable by no one else, under ancestors that no one else can change (root's, or sticky like
//! `/var/tmp`). Below such a root, every directory netdriver makes is its own and writable by it
//! alone, so paths there cannot be swapped. Even so, files are opened and trees removed without
//! following symlinks ([`remove_tree`] walks by descriptor and never leaves its file system),
//! and every mode is set explicitly, whatever the umask.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::error::{Error, Result};

/// Who may own what netdriver writes in: root, and the user running netdriver.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Checks the directory `path` as a root for netdriver's files, making it (and missing
/// ancestors) with `mode` if needed, and returns it in normal form. `what` names it in errors
/// (e.g. `run_root`).
pub(crate) fn trusted_root(path: &Path, mode: u32, what: &str) -> Result<PathBuf> {
    check_root(path, Some(mode), what)
}

/// Whether `path` is a root [`trusted_root`] would accept; `Ok(false)` if it does not exist.
pub(crate) fn is_trusted_root(path: &Path, what: &str) -> Result<bool> {
    match check_root(path, None, what) {
        Ok(_) => Ok(true),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// [`trusted_root`], making what is missing only when given a `mode`.
fn check_root(path: &Path, mode: Option<u32>, what: &str) -> Result<PathBuf> {
    let bad = |message: String| Error::invalid(what, message);
    if path.as_os_str().is_empty() {
        return Err(bad("it is empty; give an absolute directory such as /var/tmp/netdriver".into()));
    }
    if !path.is_absolute() {
        return Err(bad(format!("{} is relative; give an absolute directory", path.display())));
    }
    let mut normal = PathBuf::from("/");
    let mut dir = open_path(None, c"/").map_err(|e| Error::io("opening /", e))?;
    let names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(Ok(name)),
            Component::ParentDir => Some(Err(())),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect::<std::result::Result<_, ()>>()
        .map_err(|()| bad(format!("{} has a `..`; give the directory's own path", path.display())))?;
    for (i, name) in names.iter().enumerate() {
        normal.push(name);
        let last = i + 1 == names.len();
        let c_name = c_string(name)?;
        let entry = match open_path(Some(dir.as_fd()), &c_name) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => {
                let Some(mode) = mode else {
                    return Err(Error::io(format!("opening {}", normal.display()), nix::errno::Errno::ENOENT));
                };
                match mkdirat(dir.as_fd(), c_name.as_c_str(), Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(Error::io(format!("creating {}", normal.display()), e)),
                }
                let fd = open_path(Some(dir.as_fd()), &c_name)
                    .map_err(|e| Error::io(format!("opening {}", normal.display()), e))?;
                // Ours if we made it (another user's if they raced us: checked below).
                let stat = stat_of(&fd, &normal)?;
                if stat.st_uid == nix::unistd::geteuid().as_raw() {
                    set_mode(&normal, mode)?;
                }
                fd
            }
            Err(e) => return Err(Error::io(format!("opening {}", normal.display()), e)),
        };
        let stat = stat_of(&entry, &normal)?;
        check_dir(&normal, &stat, last, what)?;
        dir = entry;
    }
    Ok(normal)
}

/// Why `path` (whose status is `stat`) cannot hold netdriver's files, if it cannot. Above the
/// root (`last` false), a directory others may write in is fine when it is sticky, like
/// `/var/tmp`: then they cannot rename or remove what root owns in it (and the next part's
/// owner is checked in turn).
fn check_dir(path: &Path, stat: &FileStat, last: bool, what: &str) -> Result<()> {
    let p = path.display();
    let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    let fix = match what {
        "run_root" => "remove it, or choose another run_root that only root can write",
        _ => "remove it: netdriver makes it anew, for root alone",
    };
    let problem = if kind == SFlag::S_IFLNK {
        Some(format!("{p} is a symlink: netdriver follows none in the directories it writes; give the real path"))
    } else if kind != SFlag::S_IFDIR {
        Some(format!("{p} is not a directory"))
    } else if !trusted_owner(stat.st_uid) {
        Some(format!(
            "{p} belongs to uid {}, not to root: another user could change what netdriver writes there; {fix}",
            stat.st_uid
        ))
    } else if stat.st_mode & 0o022 != 0 && (last || stat.st_mode & 0o1000 == 0) {
        Some(format!(
            "{p} is writable by others (mode {:04o}): they could swap what netdriver writes there; {fix}",
            stat.st_mode & 0o7777
        ))
    } else {
        None
    };
    problem.map_or(Ok(()), |message| Err(Error::invalid(what, message)))
}

/// Makes the directory `path` with `mode` (exactly), or checks that it is already a directory
/// of netdriver's (not a symlink, owned by root or us) and sets its mode. Its parent must be
/// netdriver's too.
pub(crate) fn make_dir(path: &Path, mode: u32) -> Result<()> {
    let (parent, name) = split(path)?;
    let dir = open_dir(&parent)?;
    match mkdirat(dir.as_fd(), name.as_c_str(), Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
    }
    let fd = openat(
        dir.as_fd(),
        name.as_c_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => Error::invalid(
            "directory",
            format!("{} is a symlink or not a directory; netdriver makes its own directories there", path.display()),
        ),
        e => Error::io(format!("opening {}", path.display()), e),
    })?;
    let stat = stat_of(&fd, path)?;
    if !trusted_owner(stat.st_uid) {
        return Err(Error::invalid(
            "directory",
            format!("{} belongs to uid {}, not to netdriver", path.display(), stat.st_uid),
        ));
    }
    fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| Error::io(format!("chmod {}", path.display()), e))
}

/// Makes `path` and every missing directory between `base` (which must exist) and it, each
/// with `mode`.
pub(crate) fn make_dirs(base: &Path, path: &Path, mode: u32) -> Result<()> {
    let rest = path
        .strip_prefix(base)
        .map_err(|_| Error::invalid("directory", format!("{} is not under {}", path.display(), base.display())))?;
    let mut dir = base.to_path_buf();
    for part in rest.components() {
        dir.push(part);
        make_dir(&dir, mode)?;
    }
    Ok(())
}

/// Makes the missing directories above `path`, each with `mode` as [`make_dir`] does.
pub(crate) fn make_parents(path: &Path, mode: u32) -> Result<()> {
    let missing: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .take_while(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
        .collect();
    missing.iter().rev().try_for_each(|d| make_dir(d, mode))
}

/// Opens the file `path` for writing, made with `mode` (exactly) if it is missing; appends with
/// `append`, else truncates. A symlink there is refused, not followed.
pub(crate) fn create_file(path: &Path, mode: u32, append: bool) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).mode(mode).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if append {
        options.append(true);
    } else {
        options.truncate(true);
    }
    let file = options.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => {
            Error::invalid("file", format!("{} is a symlink; netdriver writes no file through one", path.display()))
        }
        _ => Error::io(format!("opening {}", path.display()), e),
    })?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    Ok(file)
}

/// Replaces the file `path` with `bytes` at once (a new file renamed over it), with `mode`.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {}", tmp.display()), e))?;
    file.write_all(bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Removes the tree at `path` (a directory or a file; nothing if it is missing) without
/// following a symlink: a symlink is removed itself, never what it points to. A directory on
/// another file system (a mount point) stops the removal with an error.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let (parent, name) = split(path)?;
    let dir = match open_dir(&parent) {
        Ok(dir) => dir,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let device = stat_of(&dir, &parent)?.st_dev;
    remove_entry(dir.as_fd(), &name, device, path)
}

fn remove_entry(dir: BorrowedFd<'_>, name: &CStr, device: u64, path: &Path) -> Result<()> {
    let stat = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io(format!("stat {}", path.display()), e)),
    };
    if stat.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
            .or_else(ignore_enoent)
            .map_err(|e| Error::io(format!("removing {}", path.display()), e));
    }
    if stat.st_dev != device {
        return Err(Error::State(format!(
            "{} is a mount point: left in place (netdriver removes nothing on another file system)",
            path.display()
        )));
    }
    let fd =
        openat(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let children: Vec<CString> = {
        let entries = nix::dir::Dir::from_fd(fd.try_clone().map_err(|e| Error::io("duplicating a descriptor", e))?)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let child = entry.file_name();
            if child.to_bytes() != b"." && child.to_bytes() != b".." {
                names.push(child.to_owned());
            }
        }
        names
    };
    for child in &children {
        remove_entry(fd.as_fd(), child, device, &path.join(OsStr::from_bytes(child.to_bytes())))?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
        .or_else(ignore_enoent)
        .map_err(|e| Error::io(format!("removing {}", path.display()), e))
}

fn ignore_enoent(e: nix::errno::Errno) -> nix::Result<()> {
    if e == nix::errno::Errno::ENOENT {
        Ok(())
    } else {
        Err(e)
    }
}

/// An `O_PATH` descriptor of `name` in `dir` (or of an absolute `name`), not following a
/// symlink there.
fn open_path(dir: Option<BorrowedFd<'_>>, name: &CStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir.unwrap_or(nix::fcntl::AT_FDCWD), name, flags, Mode::empty())
}

/// The directory `path`, opened for `*at` calls, not following a symlink at its last part.
fn open_dir(path: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

fn stat_of(fd: &OwnedFd, path: &Path) -> Result<FileStat> {
    fstat(fd.as_fd()).map_err(|e| Error::io(format!("stat {}", path.display()), e))
}

/// Sets the mode of `path` (a directory netdriver just made) through a descriptor.
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    let dir = open_dir(path)?;
    fchmod(dir.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| Error::io(format!("chmod {}", path.display()), e))
}

/// The parent of `path` and its last part as a C string.
fn split(path: &Path) -> Result<(PathBuf, CString)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent.to_path_buf(), c_string(name)?)),
        _ => Err(Error::invalid("path", format!("{} has no parent directory", path.display()))),
    }
}

fn c_string(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::invalid("path", format!("{} holds a NUL byte", s.to_string_lossy())))
}

/// Finds `program` the way exec does: a path as is, a bare name on PATH.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| executable(p))
}

/// The program `program` names (a path, or a name on PATH) as a node of `user` (a service, or
/// "exec on NODE") runs it, or why it cannot: it is missing, or under /tmp, which each node
/// replaces with its own.
pub(crate) fn program_for_nodes(user: &str, program: &str) -> Result<PathBuf> {
    let path = find_program(program).ok_or_else(|| Error::missing_binary(user, program))?;
    if path.starts_with("/tmp") {
        return Err(Error::MissingBinary {
            service: user.to_string(),
            program: program.to_string(),
            fix: format!(
                "{} is under /tmp, which each node replaces with its own; put it elsewhere (e.g. /usr/local/bin or /var/tmp)",
                path.display()
            ),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("netdriver-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn removes_trees_without_following_symlinks() {
        let dir = scratch("remove");
        let victim = dir.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("keep"), "mine").unwrap();
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/file"), "x").unwrap();
        std::os::unix::fs::symlink(&victim, tree.join("a/link")).unwrap();
        std::os::unix::fs::symlink(victim.join("keep"), tree.join("file-link")).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists(), "the tree is gone");
        assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "mine", "what the links pointed to is kept");
        // A symlink as the root of the tree is removed, not followed.
        let link = dir.join("root-link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(std::fs::symlink_metadata(&link).is_err() && victim.join("keep").exists());
        remove_tree(&dir.join("missing")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn makes_directories_and_files_with_their_modes() {
        let dir = scratch("make");
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o000));
        make_dirs(&dir, &dir.join("a/b"), 0o700).unwrap();
        let file = create_file(&dir.join("a/log"), 0o644, true).unwrap();
        drop(file);
        write_file(&dir.join("a/record"), b"{}", 0o644).unwrap();
        nix::sys::stat::umask(old);
        assert_eq!((mode_of(&dir.join("a")), mode_of(&dir.join("a/b"))), (0o700, 0o700));
        assert_eq!((mode_of(&dir.join("a/log")), mode_of(&dir.join("a/record"))), (0o644, 0o644));

        std::os::unix::fs::symlink("/etc", dir.join("evil")).unwrap();
        assert!(make_dir(&dir.join("evil"), 0o700).unwrap_err().to_string().contains("symlink"));
        std::os::unix::fs::symlink("/etc/hostname", dir.join("evil-file")).unwrap();
        assert!(create_file(&dir.join("evil-file"), 0o644, true).unwrap_err().to_string().contains("symlink"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn roots_must_be_real_private_directories() {
        let dir = scratch("root");
        let root = trusted_root(&dir.join("new/run"), 0o755, "run_root").unwrap();
        assert_eq!(root, dir.join("new/run"));
        assert_eq!(mode_of(&root), 0o755);
        let err = |p: &Path| trusted_root(p, 0o755, "run_root").unwrap_err().to_string();
        std::os::unix::fs::symlink(&root, dir.join("link")).unwrap();
        assert!(err(&dir.join("link")).contains("is a symlink"), "{}", err(&dir.join("link")));
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(err(&root).contains("writable by others (mode 0777)"), "{}", err(&root));
        std::fs::write(dir.join("file"), "").unwrap();
        assert!(err(&dir.join("file")).contains("is not a directory"));
        assert!(err(Path::new("")).contains("empty"));
        assert!(err(Path::new("relative/dir")).contains("relative"));
        assert!(err(&dir.join("new/../new/run")).contains("`..`"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
