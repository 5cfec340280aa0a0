//! The run registry in `/run/netdriver`: one record per live network.
//!
//! A record names what a controller made (its uplink, its namespaces, its subnet) and who it
//! is (pid and start time). Parallel networks read the records under the registry's lock to
//! pick distinct ids and subnets; [`crate::gc`] reclaims what the records of dead controllers
//! name.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fabric;
use crate::fabric::Taken;
use crate::files;
use crate::ns;
use crate::process;
use crate::spec::NetworkSpec;
use crate::subnet::{Subnet, Subnet6};

/// Where records, locks and control sockets live.
pub(crate) const DIR: &str = "/run/netdriver";

/// Auto-picked subnets come from this range, avoiding the host's routes.
const POOL: (u32, u32) = (u32::from_be_bytes([10, 200, 0, 0]), u32::from_be_bytes([10, 255, 255, 255]));

/// What one controller made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) pid: i32,
    pub(crate) start_time: u64,
    pub(crate) subnet: String,
    /// The IPv6 prefix, in networks with IPv6.
    #[serde(default)]
    pub(crate) subnet6: Option<String>,
    pub(crate) uplink: String,
    pub(crate) run_dir: PathBuf,
    /// The nodes' network namespaces: gc kills what is left in them.
    pub(crate) netns: Vec<ns::NetnsId>,
    /// The user who started the network: the control socket serves root and them alone.
    #[serde(default)]
    pub(crate) uid: u32,
    /// Whether the services' data directories stay after teardown (gc leaves them too).
    #[serde(default)]
    pub(crate) keep_data: bool,
    /// The clock supervisor's pid and start time, once it runs.
    #[serde(default)]
    pub(crate) supervisor: Option<(i32, u64)>,
}

impl Record {
    fn path(id: &str) -> PathBuf {
        Path::new(DIR).join(format!("{id}.json"))
    }

    /// The control socket of the run.
    pub(crate) fn socket(&self) -> PathBuf {
        Path::new(DIR).join(format!("{}.sock", self.id))
    }

    /// Writes the record (atomically, readable by all: `status` finds networks through it).
    pub(crate) fn save(&self) -> Result<()> {
        files::write_file(&Record::path(&self.id), &serde_json::to_vec_pretty(self).expect("record serializes"), 0o644)
    }

    /// Removes the record and the control socket.
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_file(Record::path(&self.id));
    }

    /// Whether the controller that wrote the record still runs.
    pub(crate) fn is_live(&self) -> bool {
        process::alive(self.pid) && process::start_time(self.pid) == Some(self.start_time)
    }

    /// The ranges the run's addresses come from.
    fn ranges(&self) -> impl Iterator<Item = Taken> {
        let v4 = self.subnet.parse::<Subnet>().ok().map(|s| Taken { addr: s.addr.into(), prefix: s.prefix });
        let v6 = self.subnet6.as_deref().and_then(|s| s.parse::<Subnet6>().ok());
        v4.into_iter().chain(v6.map(|s| Taken { addr: s.addr.into(), prefix: s.prefix }))
    }
}

/// Every readable record, live or not.
pub(crate) fn records() -> Vec<Record> {
    let Ok(dir) = std::fs::read_dir(DIR) else { return Vec::new() };
    dir.filter_map(std::result::Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let path = e.path();
            // A record written by another version of netdriver may not parse: say so rather than
            // ignore what it names.
            serde_json::from_slice(&std::fs::read(&path).ok()?)
                .inspect_err(|err| {
                    tracing::warn!(
                        "ignoring {}: {err} (written by another version of netdriver? that version's \
                         `netdriver gc` reclaims it)",
                        path.display()
                    );
                })
                .ok()
        })
        .collect()
}

/// The registry, locked: held while records are read and written, released on drop.
pub(crate) struct Registry {
    _flock: Flock<File>,
}

impl Registry {
    /// Waits for the registry's lock, making the registry's directory if needed (refusing one
    /// that others could write in).
    pub(crate) fn lock() -> Result<Registry> {
        files::trusted_root(Path::new(DIR), 0o755, "registry directory")?;
        let path = Path::new(DIR).join("lock");
        let file = files::create_file(&path, 0o600, true)?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(|f| Registry { _flock: f })
            .map_err(|(_, e)| Error::io(format!("locking {}", path.display()), e))
    }

    /// The records of runs whose controller died.
    #[expect(clippy::unused_self, reason = "holding the guard is what makes the answer stand")]
    pub(crate) fn dead(&self) -> Vec<Record> {
        records().into_iter().filter(|r| !r.is_live()).collect()
    }

    /// Reserves an id and subnets for a new run of `spec` and writes its record.
    #[expect(clippy::unused_self, reason = "holding the guard keeps another run from taking the same id or subnet")]
    pub(crate) fn claim(&self, spec: &NetworkSpec, run_root: &Path) -> Result<Record> {
        let live = records();
        let mut taken = fabric::host_routes()?;
        taken.extend(live.iter().flat_map(Record::ranges));
        let overlap = |wanted: &dyn std::fmt::Display, t: &Taken| {
            Error::Subnet(format!(
                "{wanted} overlaps {}/{}, which the host or another network uses; pick another or leave it unset",
                t.addr, t.prefix
            ))
        };
        let (v4, v6): (Vec<&Taken>, Vec<&Taken>) = taken.iter().partition(|t| t.addr.is_ipv4());
        let subnet = match spec.subnet {
            Some(s) => match v4.iter().find(|t| overlaps(&s, t)) {
                Some(t) => return Err(overlap(&s, t)),
                None => s,
            },
            None => pick_subnet(spec.nodes.len(), &v4)?,
        };
        let subnet6 = match (spec.ipv6, spec.subnet6) {
            (false, _) => None,
            (true, Some(s)) => match v6.iter().find(|t| overlaps6(&s, t)) {
                Some(t) => return Err(overlap(&s, t)),
                None => Some(s),
            },
            (true, None) => Some(pick_subnet6(&v6, &mut random_u64)?),
        };
        let name = &spec.name;
        let me = std::process::id() as i32;
        let id = new_id(&live);
        let record = Record {
            run_dir: run_root.join(format!("{name}-{id}")),
            uplink: format!("{}{id}", fabric::UPLINK_PREFIX),
            id,
            name: name.clone(),
            pid: me,
            start_time: process::start_time(me).unwrap_or(0),
            subnet: subnet.to_string(),
            subnet6: subnet6.map(|s| s.to_string()),
            netns: Vec::new(),
            uid: nix::unistd::geteuid().as_raw(),
            keep_data: spec.keep_data,
            supervisor: None,
        };
        record.save()?;
        Ok(record)
    }
}

/// Whether IPv4 subnet `s` shares an address with range `t` (an IPv6 range shares none).
fn overlaps(s: &Subnet, t: &Taken) -> bool {
    matches!(t.addr, IpAddr::V4(addr) if s.overlaps_range(addr, t.prefix))
}

/// Whether IPv6 prefix `s` shares an address with range `t` (an IPv4 range shares none).
fn overlaps6(s: &Subnet6, t: &Taken) -> bool {
    matches!(t.addr, IpAddr::V6(addr) if s.overlaps_range(addr, t.prefix))
}

/// A unique local /64 (RFC 4193: `fd`, a random 40-bit global id, subnet 0) overlapping
/// nothing in `taken`; `random` gives the global ids to try.
fn pick_subnet6(taken: &[&Taken], random: &mut dyn FnMut() -> u64) -> Result<Subnet6> {
    for _ in 0..16 {
        let global = u128::from(random() & 0xff_ffff_ffff);
        let addr = Ipv6Addr::from(0xfd_u128 << 120 | global << 80);
        let candidate = Subnet6::new(addr, 64)?;
        if !taken.iter().any(|t| overlaps6(&candidate, t)) {
            return Ok(candidate);
        }
    }
    Err(Error::Subnet(
        "no free unique local /64 found in 16 random tries: the host routes all of fd00::/8; give subnet6".into(),
    ))
}

/// 64 random bits from the kernel.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // Only before the kernel's pool is ready at boot: fall back on the clock.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return now.as_nanos() as u64 ^ u64::from(std::process::id()) << 40;
    }
    u64::from_ne_bytes(bytes)
}

/// The smallest subnet that holds `nodes`, from the pool, overlapping nothing in `taken`.
fn pick_subnet(nodes: usize, taken: &[&Taken]) -> Result<Subnet> {
    let bits = (nodes + 3).next_power_of_two().trailing_zeros().max(8);
    let prefix = 32 - bits as u8;
    let step = 1u64 << bits;
    let mut addr = u64::from(POOL.0);
    while addr + step - 1 <= u64::from(POOL.1) {
        let candidate = Subnet::new(Ipv4Addr::from(addr as u32), prefix)?;
        match taken.iter().find(|t| overlaps(&candidate, t)) {
            // Skip past the whole taken range.
            Some(t) => {
                let IpAddr::V4(start) = t.addr else { unreachable!("overlaps only IPv4 ranges") };
                let end = u64::from(u32::from(start)) + (1u64 << (32 - u32::from(t.prefix)));
                addr = end.max(addr + step).next_multiple_of(step);
            }
            None => return Ok(candidate),
        }
    }
    Err(Error::Subnet(format!(
        "no free /{prefix} left in 10.200.0.0-10.255.255.255; stop other networks, run `netdriver gc`, or give a subnet"
    )))
}

fn new_id(live: &[Record]) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut seed = u64::from(std::process::id()) << 32 | u64::from(nanos);
    loop {
        // splitmix64: one step spreads pid and time over the id's bits.
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let id = format!("{:06x}", (z ^ (z >> 31)) & 0xff_ffff);
        if !live.iter().any(|r| r.id == id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_free_subnets() {
        let range = |a: [u8; 4], prefix| Taken { addr: Ipv4Addr::from(a).into(), prefix };
        let pick_subnet = |nodes, taken: &[Taken]| pick_subnet(nodes, &taken.iter().collect::<Vec<_>>());
        let taken = [range([10, 200, 0, 0], 24), range([10, 200, 1, 0], 24)];
        assert_eq!(pick_subnet(3, &taken).unwrap().to_string(), "10.200.2.0/24");
        assert_eq!(pick_subnet(1000, &taken).unwrap().to_string(), "10.200.4.0/22");
        assert_eq!(pick_subnet(253, &[]).unwrap().to_string(), "10.200.0.0/24");
        assert_eq!(pick_subnet(254, &[]).unwrap().to_string(), "10.200.0.0/23");
        assert!(matches!(pick_subnet(3, &[range([10, 0, 0, 0], 8)]), Err(Error::Subnet(_))));
        // A route with a prefix shorter than any subnet's covers the whole pool too.
        assert!(matches!(pick_subnet(3, &[range([10, 0, 0, 0], 7)]), Err(Error::Subnet(_))));
        assert_eq!(pick_subnet(3, &[range([10, 200, 0, 7], 32)]).unwrap().to_string(), "10.200.1.0/24");
    }

    #[test]
    fn picks_free_unique_local_prefixes() {
        let ours = Taken { addr: "fd12:3456:789a::".parse::<Ipv6Addr>().unwrap().into(), prefix: 48 };
        let mut ids = [0x12_3456_789a_u64, 0xab_cdef_0123].into_iter();
        let picked = pick_subnet6(&[&ours], &mut || ids.next().unwrap()).unwrap();
        assert_eq!(picked.to_string(), "fdab:cdef:123::/64");
        let all = Taken { addr: "fd00::".parse::<Ipv6Addr>().unwrap().into(), prefix: 8 };
        assert!(matches!(pick_subnet6(&[&all], &mut random_u64), Err(Error::Subnet(_))));
        assert_ne!(random_u64(), random_u64());
    }

    #[test]
    fn ids_are_unique_hex() {
        let id = new_id(&[]);
        assert_eq!(id.len(), 6);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
