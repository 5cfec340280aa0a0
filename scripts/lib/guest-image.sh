# shellcheck shell=bash
# scripts/lib/guest-image.sh — the base image of scripts/guest: which Debian
# kernel a series means, whether the cached image is current, and how it is
# assembled. Sourced by scripts/guest (bash), not run on its own.
#
# It owns: resolving a series to a kernel package through apt (check_series,
# meta_package, resolve_kernel_pkg, series_link); the cache check
# (inputs_hash, image_complete, ensure_image); fetching .debs (fetch_deb);
# staging files into a root in the guest's merged-/usr layout with their
# shared libraries (guest_path, elf_libs, stage_file, stage_path, also used by
# `run` for the payload); the image itself (stage_skeleton, stage_packages,
# stage_busybox_links, stage_modules from rootfs/{init,packages,modules}),
# packing (pack_cpio, pad4), extracting the PVH vmlinux (extract_vmlinux),
# build_image and kernel_image.
#
# It expects from scripts/guest: CACHE_ROOT, ROOTFS_DIR, FLAVOUR, GUEST_SCRIPT
# (the sourcing script, hashed with this file) and the helpers log, warn,
# die, usage_error, now, elapsed, need_cmd, want_cmd, is_root,
# apt_update_once and ensure_host_pkg. ensure_image and build_image set
# IMAGE_DIR and KVER; build_image uses WORK (its scratch directory).

ARCH_TRIPLET="x86_64-linux-gnu"

# --------------------------------------------------------- debs and files ---
apt_candidate() { # version apt would download for a package, or nothing
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

# Download a .deb into the cache (reusing one already there) and print its path.
fetch_deb() {
  local pkg=$1 dir="${CACHE_ROOT}/debs" ver file
  mkdir -p "${dir}"
  ver="$(apt_candidate "${pkg}")"
  if [[ -n "${ver}" ]]; then
    file="${dir}/${pkg}_${ver//:/%3a}_amd64.deb"
    [[ -s "${file}" ]] || file="${dir}/${pkg}_${ver//:/%3a}_all.deb"
  else
    # No apt lists (apt-get update never ran?): fall back to any cached copy.
    file="$(compgen -G "${dir}/${pkg}_*.deb" | sort -V | tail -n 1 || true)"
    [[ -n "${file}" ]] || die "apt knows no package ${pkg}: run apt-get update (sources must include bookworm-security for 6.12 kernels)"
  fi
  if [[ ! -s "${file}" ]]; then
    log "downloading ${pkg} ${ver}"
    (cd "${dir}" && apt-get -q -o APT::Sandbox::User=root download "${pkg}" >&2) \
      || die "apt-get download ${pkg} failed (network? run apt-get update)"
    file="$(compgen -G "${dir}/${pkg}_${ver//:/%3a}_*.deb" | head -n 1 || true)"
    [[ -n "${file}" && -s "${file}" ]] || die "apt-get download ${pkg} left no .deb in ${dir}"
  fi
  printf '%s\n' "${file}"
}

# Map a path to the guest's merged-/usr layout (/bin -> /usr/bin, ...).
guest_path() {
  case $1 in
    /bin/*|/sbin/*|/lib/*|/lib64/*) printf '/usr%s\n' "$1" ;;
    *) printf '%s\n' "$1" ;;
  esac
}

is_elf() { [[ -f $1 ]] && [[ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" == '177ELF' ]]; }

# Shared libraries of an ELF file, one absolute path a line (none if static).
elf_libs() {
  is_elf "$1" || return 0
  { ldd "$1" 2>/dev/null || true; } | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }'
}

# ------------------------------------------------------------- kernel pick ---
check_series() {
  case $1 in
    6.1|6.12) ;;
    *) usage_error "unknown kernel series '$1' (use 6.1 or 6.12)" ;;
  esac
  case ${FLAVOUR} in
    cloud|generic) ;;
    *) usage_error "NETDRIVER_GUEST_FLAVOUR must be cloud or generic, not '${FLAVOUR}'" ;;
  esac
}

meta_package() { # Debian meta-package that points at the newest ABI of a series
  local fl=""
  [[ ${FLAVOUR} == cloud ]] && fl="cloud-"
  case $1 in
    6.1)  printf 'linux-image-%samd64\n' "${fl}" ;;
    6.12) printf 'linux-image-6.12-%samd64\n' "${fl}" ;;
  esac
}

series_link() { printf '%s/%s-%s\n' "${CACHE_ROOT}" "$1" "${FLAVOUR}"; }

# Resolve a series to its current kernel package (e.g. linux-image-6.1.0-56-cloud-amd64)
# through apt's meta-package. Prints nothing when apt cannot tell.
resolve_kernel_pkg() {
  local series=$1 meta pkg
  meta="$(meta_package "${series}")"
  pkg="$(apt-cache depends "${meta}" 2>/dev/null \
          | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')"
  [[ -n "${pkg}" && ${pkg} == linux-image-${series}.* ]] || return 0
  printf '%s\n' "${pkg}"
}

# Hash of everything the base image is made of, to know when to rebuild:
# this file (BASH_SOURCE[0] in its functions), the script that sources it,
# rootfs/*.
inputs_hash() {
  local kver=$1
  {
    printf 'kernel %s flavour %s\n' "${kver}" "${FLAVOUR}"
    cat "${BASH_SOURCE[0]}" "${GUEST_SCRIPT}" \
      "${ROOTFS_DIR}/init" "${ROOTFS_DIR}/packages" "${ROOTFS_DIR}/modules"
  } | sha256sum | cut -c1-16
}

image_complete() { # image_complete DIR HASH
  [[ -s $1/vmlinuz && -s $1/initramfs.cpio && -f $1/inputs ]] \
    && [[ "$(cat "$1/inputs")" == "$2" ]]
}

# --------------------------------------------------------------- building ---
read_config() { # strip comments and blank lines
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^[[:space:]]*$/d' "$1"
}

# Copy one host file (dereferenced) to the staging root, plus its libraries.
stage_file() { # stage_file ROOT SRC [DEST]
  local root=$1 src=$2 dest=${3:-$2} lib
  dest="$(guest_path "${dest}")"
  mkdir -p "${root}$(dirname "${dest}")"
  cp -L --preserve=mode "${src}" "${root}${dest}"
  while IFS= read -r lib; do
    [[ -e "${root}$(guest_path "${lib}")" ]] && continue
    stage_file "${root}" "${lib}"
  done < <(elf_libs "${src}")
}

stage_path() { # stage_path ROOT SRC [DEST]: file or directory
  local root=$1 src=$2 dest=${3:-$2} f
  if [[ -d ${src} ]]; then
    while IFS= read -r f; do
      stage_file "${root}" "${f}" "${dest}${f#"${src}"}"
    done < <(find -L "${src}" -type f)
  elif [[ -e ${src} ]]; then
    stage_file "${root}" "${src}" "${dest}"
  else
    return 1
  fi
}

stage_skeleton() {
  local root=$1 d
  for d in usr/bin usr/sbin usr/lib usr/lib64 dev proc sys tmp run var/tmp root etc/netdriver-guest \
           etc/modprobe.d mnt payload; do
    mkdir -p "${root}/${d}"
  done
  ln -s usr/bin "${root}/bin"; ln -s usr/sbin "${root}/sbin"
  ln -s usr/lib "${root}/lib"; ln -s usr/lib64 "${root}/lib64"
  ln -s ../run "${root}/var/run"; ln -s ../run/lock "${root}/var/lock"
  chmod 1777 "${root}/tmp" "${root}/var/tmp"; chmod 0700 "${root}/root"
  if is_root; then mknod -m 600 "${root}/dev/console" c 5 1; fi
  install -m 0755 "${ROOTFS_DIR}/init" "${root}/init"
  cat > "${root}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
  cat > "${root}/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
  cat > "${root}/etc/hosts" <<'EOF'
127.0.0.1	localhost guest
::1	localhost ip6-localhost ip6-loopback
EOF
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n' \
    > "${root}/etc/nsswitch.conf"
  echo guest > "${root}/etc/hostname"
  : > "${root}/etc/resolv.conf"
  for d in protocols services; do
    [[ -f /etc/${d} ]] && cp "/etc/${d}" "${root}/etc/${d}"
  done
  # glibc's NSS "files" module (separate from libc on older glibc).
  for d in /lib/${ARCH_TRIPLET}/libnss_files.so.2 /usr/lib/${ARCH_TRIPLET}/libnss_files.so.2; do
    [[ -e ${d} ]] && { stage_file "${root}" "${d}"; break; }
  done
  return 0
}

# Packages of rootfs/packages into the staging root.
stage_packages() {
  local root=$1 source pkg paths p deb extract optional
  while read -r source pkg paths; do
    optional=0
    case ${source} in
      deb)
        deb="$(fetch_deb "${pkg}")"
        extract="${WORK}/deb-${pkg}"
        mkdir -p "${extract}"
        dpkg-deb -x "${deb}" "${extract}"
        for p in ${paths}; do
          stage_path "${root}" "${extract}${p}" "${p}" || die "${p} not found in ${deb}"
        done
        ;;
      host|host\?)
        [[ ${source} == "host?" ]] && optional=1
        if ! ensure_host_pkg "${pkg}"; then
          [[ ${optional} == 1 ]] && { warn "optional package ${pkg} left out of the image"; continue; }
          die "host package ${pkg} is needed for the guest image: apt-get install ${pkg}"
        fi
        for p in ${paths}; do
          stage_path "${root}" "${p}" || die "${p} (package ${pkg}) not found on the host"
        done
        ;;
      *) die "rootfs/packages: unknown source '${source}' (deb, host or host?)" ;;
    esac
  done < <(read_config "${ROOTFS_DIR}/packages")
}

# busybox applets for every command no package provides; /bin/sh is dash.
stage_busybox_links() {
  local root=$1 bb="${1}/usr/bin/busybox" applet name dir
  [[ -x ${bb} ]] || die "rootfs/packages must provide /bin/busybox"
  while IFS= read -r applet; do
    name="${applet##*/}"
    [[ -n ${name} && ${name} != busybox && ${name} != linuxrc ]] || continue
    [[ -e ${root}/usr/bin/${name} || -e ${root}/usr/sbin/${name} ]] && continue
    dir="usr/bin"; [[ ${applet} == sbin/* || ${applet} == usr/sbin/* ]] && dir="usr/sbin"
    ln -s /usr/bin/busybox "${root}/${dir}/${name}"
  done < <("${bb}" --list-full)
  # Debian's busybox-static runs its own applets before PATH inside its
  # shell (FEATURE_SH_STANDALONE), so its ash must not be /bin/sh.
  if [[ -x ${root}/usr/bin/dash ]]; then
    ln -sfn dash "${root}/usr/bin/sh"
  else
    warn "no dash in rootfs/packages: /bin/sh is busybox ash, which runs busybox's ip/tc/unshare, not iproute2's"
    ln -sfn busybox "${root}/usr/bin/sh"
  fi
}

# Kernel modules: resolve dependencies with the kernel's own modules.dep,
# decompress, depmod the guest tree, write the boot-time load list.
stage_modules() {
  local root=$1 kroot=$2 kver=$3 name flag line ko dest rel
  local -a load=() all=()
  local mdir="${kroot}/lib/modules/${kver}"
  [[ -d ${mdir} ]] || die "no /lib/modules/${kver} in the kernel package"
  depmod -b "${kroot}" "${kver}" || die "depmod on the unpacked kernel failed"
  declare -A seen=()
  while read -r name flag; do
    local deps
    if ! deps="$(modprobe -C /dev/null -d "${kroot}" -S "${kver}" --show-depends "${name}" 2>/dev/null)"; then
      case ${flag} in
        ondemand|optional) warn "kernel ${kver} has no module ${name}: left out"; continue ;;
        *) die "kernel ${kver} has no module ${name} (rootfs/modules)" ;;
      esac
    fi
    while read -r line ko _; do
      [[ ${line} == insmod ]] || continue           # "builtin NAME": nothing to do
      rel="${ko#"${mdir}"/}"
      rel="${rel%.xz}"; rel="${rel%.zst}"; rel="${rel%.gz}"
      if [[ -z ${seen[${rel}]:-} ]]; then
        seen[${rel}]=1
        all+=("${ko}")
        dest="${root}/usr/lib/modules/${kver}/${rel}"
        mkdir -p "$(dirname "${dest}")"
        case ${ko} in
          *.xz)  xz -dc "${ko}" > "${dest}" ;;
          *.zst) zstd -qdc "${ko}" > "${dest}" ;;
          *.gz)  gzip -dc "${ko}" > "${dest}" ;;
          *)     cp "${ko}" "${dest}" ;;
        esac
      fi
      if [[ ${flag} != ondemand ]]; then
        load+=("/lib/modules/${kver}/${rel}")
      fi
    done <<< "${deps}"
  done < <(read_config "${ROOTFS_DIR}/modules")
  # Unique load list, order kept (a dependency shared by two modules loads once).
  printf '%s\n' "${load[@]}" | awk '!seen[$0]++' > "${root}/etc/netdriver-guest/modules.load"
  local f
  for f in modules.builtin modules.builtin.modinfo modules.order; do
    [[ -f ${mdir}/${f} ]] && cp "${mdir}/${f}" "${root}/usr/lib/modules/${kver}/"
  done
  depmod -b "${root}" "${kver}" || die "depmod on the guest tree failed"
  # busybox modprobe reads aliases (net-sch-netem, nft-expr-...) from modprobe.d.
  grep '^alias ' "${root}/usr/lib/modules/${kver}/modules.alias" \
    > "${root}/etc/modprobe.d/modules-alias.conf" || true
  log "modules: ${#all[@]} included, $(wc -l < "${root}/etc/netdriver-guest/modules.load") loaded at boot"
}

# Pack a staging root as newc cpio (uncompressed) on stdout.
pack_cpio() { # pack_cpio DIR [extra cpio flags]
  local dir=$1; shift
  (cd "${dir}" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet "$@")
}

pad4() { # pad a file with zeros to a multiple of 4 bytes
  local size pad
  size="$(stat -c %s "$1")"
  pad=$(( (4 - size % 4) % 4 ))
  if (( pad > 0 )); then head -c "${pad}" /dev/zero >> "$1"; fi
}

build_tools_check() {
  need_cmd apt-get apt; need_cmd dpkg-deb dpkg; need_cmd ldd libc-bin
  want_cmd cpio cpio; want_cmd depmod kmod; want_cmd modprobe kmod
  want_cmd xz xz-utils; want_cmd zstd zstd; want_cmd lz4 lz4
}

# For `run`: the image the series link points at when it is complete and up
# to date (no apt look-up: apt-cache takes ~1.5 s here), else build_image.
ensure_image() {
  local series=$1 link kver
  check_series "${series}"
  link="$(series_link "${series}")"
  if [[ -L ${link} ]]; then
    kver="$(basename "$(readlink "${link}")")"
    if image_complete "${CACHE_ROOT}/${kver}" "$(inputs_hash "${kver}")"; then
      # shellcheck disable=SC2034  # results: scripts/guest reads them
      IMAGE_DIR="${CACHE_ROOT}/${kver}" KVER="${kver}"
      return 0
    fi
  fi
  build_image "${series}"
}

# Build (or reuse) the image of a series, resolving the newest kernel ABI
# through apt. Sets IMAGE_DIR and KVER.
build_image() {
  local series=$1 pkg kver link hash dir t0 deb
  check_series "${series}"
  link="$(series_link "${series}")"
  pkg="$(resolve_kernel_pkg "${series}")"
  if [[ -z ${pkg} && ! -L ${link} ]] && apt_update_once; then
    pkg="$(resolve_kernel_pkg "${series}")"
  fi
  if [[ -z ${pkg} ]]; then
    if [[ -L ${link} ]]; then
      kver="$(basename "$(readlink "${link}")")"
      warn "apt cannot resolve $(meta_package "${series}") (run apt-get update?); using cached ${kver}"
    else
      die "apt cannot resolve $(meta_package "${series}"): run apt-get update (6.12 needs bookworm-security in the apt sources)"
    fi
  else
    kver="${pkg#linux-image-}"
  fi
  dir="${CACHE_ROOT}/${kver}"
  hash="$(inputs_hash "${kver}")"
  # shellcheck disable=SC2034  # results: scripts/guest reads them
  IMAGE_DIR="${dir}" KVER="${kver}"
  if image_complete "${dir}" "${hash}"; then
    ln -sfn "${kver}" "${link}"
    return 0
  fi

  # One build at a time per cache (parallel `run`s of a cargo test, CI jobs).
  mkdir -p "${CACHE_ROOT}" || die "cannot create ${CACHE_ROOT} (set NETDRIVER_GUEST_CACHE)"
  local lock_fd
  need_cmd flock util-linux
  exec {lock_fd}>>"${CACHE_ROOT}/.build.lock"
  flock "${lock_fd}"
  if image_complete "${dir}" "${hash}"; then   # another process built it meanwhile
    exec {lock_fd}>&-
    ln -sfn "${kver}" "${link}"
    return 0
  fi

  t0="$(now)"
  build_tools_check
  pkg="linux-image-${kver}"
  log "building the guest image for ${kver} in ${dir}"
  mkdir -p "${dir}"
  WORK="$(mktemp -d "${CACHE_ROOT}/.build.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: WORK is global and may change
  trap "rm -rf '${WORK}'" EXIT
  deb="$(fetch_deb "${pkg}")"
  # If apt only knows an older ABI than the meta-package says, fetch_deb dies.
  local kroot="${WORK}/kernel" root="${WORK}/root"
  mkdir -p "${kroot}" "${root}"
  dpkg-deb -x "${deb}" "${kroot}"
  [[ -s ${kroot}/boot/vmlinuz-${kver} ]] || die "${deb} has no /boot/vmlinuz-${kver}"
  # 6.12 packages put modules under /usr/lib/modules (merged /usr) on newer
  # releases; normalise to /lib/modules for depmod -b.
  if [[ ! -d ${kroot}/lib/modules && -d ${kroot}/usr/lib/modules ]]; then
    ln -s usr/lib "${kroot}/lib"
  fi

  stage_skeleton "${root}"
  stage_packages "${root}"
  stage_busybox_links "${root}"
  stage_modules "${root}" "${kroot}" "${kver}"

  # The base image stays uncompressed: under TCG, gunzip in the guest cost
  # ~0.6 s of every boot, loading 15 MB more through fw_cfg costs ~nothing.
  pack_cpio "${root}" > "${WORK}/initramfs.cpio"
  pad4 "${WORK}/initramfs.cpio"
  cp "${kroot}/boot/vmlinuz-${kver}" "${WORK}/vmlinuz"
  cp "${kroot}/boot/config-${kver}" "${WORK}/config"
  # The uncompressed kernel (ELF with a PVH entry point): QEMU jumps straight
  # into it, skipping the real-mode setup and the in-guest decompression of
  # bzImage (~0.7 s under TCG).
  rm -f "${dir}/vmlinux"
  if grep -q '^CONFIG_PVH=y' "${WORK}/config" && extract_vmlinux "${WORK}/vmlinuz" "${WORK}/vmlinux"; then
    mv -f "${WORK}/vmlinux" "${dir}/vmlinux"
  else
    warn "no PVH-bootable vmlinux could be extracted from vmlinuz-${kver} (lz4 and zstd installed?): booting the bzImage"
  fi
  mv -f "${WORK}/vmlinuz" "${dir}/vmlinuz"
  mv -f "${WORK}/config" "${dir}/config"
  mv -f "${WORK}/initramfs.cpio" "${dir}/initramfs.cpio"
  rm -f "${dir}/initramfs.cpio.gz"
  printf '%s\n' "${hash}" > "${dir}/inputs"
  ln -sfn "${kver}" "${link}"
  rm -rf "${WORK}"
  trap - EXIT
  exec {lock_fd}>&-
  log "built ${kver}: initramfs $(du -h "${dir}/initramfs.cpio" | cut -f1), kernel $(du -h "$(kernel_image "${dir}")" | cut -f1) in $(elapsed "${t0}") s"
}

# Decompress the vmlinux ELF inside a bzImage (like the kernel's
# scripts/extract-vmlinux): find the payload's compression magic, unpack.
extract_vmlinux() { # extract_vmlinux BZIMAGE OUT
  local img=$1 out=$2 magic tool off
  local -a formats=(
    $'\x28\xb5\x2f\xfd:zstd -qdc'
    $'\x02\x21\x4c\x18:lz4 -dc'
    $'\xfd\x37\x7a\x58\x5a\x00:xz -qdc'
    $'\x1f\x8b\x08:gzip -qdc'
  )
  local f
  for f in "${formats[@]}"; do
    magic=${f%%:*}; tool=${f#*:}
    command -v "${tool%% *}" >/dev/null 2>&1 || continue
    while read -r off; do
      # Trailing data after the compressed stream makes the tools complain.
      tail -c +"$(( off + 1 ))" "${img}" | ${tool} > "${out}" 2>/dev/null || true
      if is_elf "${out}" && (( $(stat -c %s "${out}") > 1048576 )); then
        return 0
      fi
    done < <(LC_ALL=C grep -abo "${magic}" "${img}" | cut -d: -f1 | head -n 5)
  done
  rm -f "${out}"
  return 1
}

kernel_image() { # the file to hand to QEMU's -kernel
  if [[ -s $1/vmlinux && ${NETDRIVER_GUEST_PVH:-1} != 0 ]]; then
    printf '%s\n' "$1/vmlinux"
  else
    printf '%s\n' "$1/vmlinuz"
  fi
}
