#!/usr/bin/env bash
# The real-kernel tier: boots a Debian kernel in qemu (TCG), runs fido2d --transport uhid in it
# and drives the virtual key through /dev/hidraw* with clients nobody here wrote.
#
# Usage: tests/vm/run.sh [GROUP...]      (default: every group in tests/vm/checks/)
#        tests/vm/run.sh --list
# Env:   FIDO2D_BIN   fido2d binary to test (default: cargo build -p fido2d, debug)
#        FIDO2CTL_BIN fido2ctl binary (default: cargo build -p fido2ctl, debug)
#        PYTHON       python with python-fido2 (default: python3)
#        VM_TIMEOUT   seconds before qemu is killed (default 540, plus the "# group-timeout: N"
#                     of each selected group that declares one)
#        VM_SMP, VM_MEM  guest CPUs (default 2) and memory in MiB (default 1536, or the largest
#                     "# vm-memory: MiB" of the selected groups)
#
# The guest sees the host's root file system read-only over 9p, with a tmpfs overlay on top, so
# every host binary and library (fido2-tools, ssh-keygen, python3 + fido2, udev) is there without
# copying. Results, the console log and per-check logs land in target/vm/out/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
[[ $target = /* ]] || target=$repo/$target
vm=$target/vm
out=$vm/out

die() { echo "vm: $*" >&2; exit 2; }

groups_available() {
  for f in "$here"/checks/*.sh; do basename "$f" .sh | sed 's/^[0-9]*-//'; done
}

if [[ ${1:-} = --list ]]; then groups_available; exit 0; fi

# --- what the host needs (all of it installed by .ci/deps) -----------------------------------
missing=()
for tool in qemu-system-x86_64 cpio depmod modprobe dpkg-deb apt-get apt-cache gzip timeout swtpm; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ -x /bin/busybox ]] || missing+=("/bin/busybox (busybox-static)")
for tool in fido2-token fido2-cred fido2-assert ssh-keygen udevadm setpriv unshare; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  die "missing on the host: ${missing[*]} (run .ci/deps as root)"
fi
if [[ $(LC_ALL=C ldd /bin/busybox 2>&1 || true) != *"not a dynamic executable"* ]]; then
  die "/bin/busybox is dynamically linked; the initramfs needs busybox-static"
fi
python=$("${PYTHON:-python3}" -c 'import sys, fido2; print(sys.executable)' 2>/dev/null) \
  || die "${PYTHON:-python3} cannot import fido2 (pip install fido2==2.2.1; .ci/deps does it)"

# --- groups ----------------------------------------------------------------------------------
if (($#)); then
  groups=("$@")
  for g in "${groups[@]}"; do
    [[ " $(groups_available | tr '\n' ' ') " = *" $g "* ]] || die "no check group '$g' (have: $(groups_available | tr '\n' ' '))"
  done
else
  mapfile -t groups < <(groups_available)
fi

# Groups that need more than the defaults say so in a header line of their script.
group_file() { ls "$here"/checks/[0-9]*-"$1".sh | head -n 1; }
group_header() { sed -n "s/^# $2: *\([0-9]\+\).*/\1/p" "$(group_file "$1")" | head -n 1; }
vm_timeout=540
vm_mem=1536
for g in "${groups[@]}"; do
  limit=$(group_header "$g" group-timeout)
  vm_timeout=$((vm_timeout + ${limit:-0}))
  mem=$(group_header "$g" vm-memory)
  if ((${mem:-0} > vm_mem)); then vm_mem=$mem; fi
done
vm_timeout=${VM_TIMEOUT:-$vm_timeout}
vm_mem=${VM_MEM:-$vm_mem}

# The snap group loads AppArmor profiles into the guest kernel and runs programs under them.
if [[ " ${groups[*]} " = *" snap "* ]]; then
  for tool in apparmor_parser aa-exec; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "missing on the host for the snap group: ${missing[*]} (run .ci/deps as root)"
  fi
fi

# The pam group: pam_u2f through pamtester, pamu2fcfg; fprintd for the fingerprint case.
if [[ " ${groups[*]} " = *" pam "* ]]; then
  for tool in pamtester pamu2fcfg /usr/lib/x86_64-linux-gnu/security/pam_u2f.so /usr/libexec/fprintd; do
    command -v "$tool" >/dev/null || [[ -e $tool ]] || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "missing on the host for the pam group: ${missing[*]} (run .ci/deps as root)"
  fi
fi

# The luks group: cryptsetup, systemd-cryptenroll and systemd-cryptsetup with its FIDO2 token module.
if [[ " ${groups[*]} " = *" luks "* ]]; then
  for tool in cryptsetup systemd-cryptenroll /lib/systemd/systemd-cryptsetup \
    /usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-fido2.so; do
    command -v "$tool" >/dev/null || [[ -e $tool ]] || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "missing on the host for the luks group: ${missing[*]} (run .ci/deps as root)"
  fi
fi

# The browser group drives real browsers against a py_webauthn relying party.
if [[ " ${groups[*]} " = *" browser "* ]]; then
  for tool in /usr/lib/chromium/chromium /usr/lib/chromium/chromium-headless-shell firefox-esr \
    Xvfb xdotool xdpyinfo; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  "$python" -c 'import webauthn' 2>/dev/null || missing+=("py_webauthn (pip install webauthn==3.0.1)")
  if ((${#missing[@]})); then
    die "missing on the host for the browser group: ${missing[*]} (run .ci/deps as root)"
  fi
fi

# --- the daemon under test -------------------------------------------------------------------
# The binary NAME: the path given (may be empty), or the debug build, built now. Prints its path.
binary() {
  local name=$1 given=$2 path
  if [[ -n $given ]]; then
    path=$(realpath "$given") || die "no $name binary at $given"
  else
    # Run inside $(...), where set -e does not hold: each failure is checked.
    (cd "$repo" && cargo build -q -p "$name" --bin "$name") || die "cargo build of $name failed"
    path=$target/debug/$name
  fi
  [[ -x $path ]] || die "no $name binary at $path"
  echo "$path"
}
fido2d=$(binary fido2d "${FIDO2D_BIN:-}")
# fido2ctl (its agent answers the daemon's prompts in the browser group).
fido2ctl=$(binary fido2ctl "${FIDO2CTL_BIN:-}")

# --- the guest kernel: Debian's current linux-image, downloaded once, cached -----------------
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
kpkg=$(kernel_package || true)
if [[ -z $kpkg ]]; then
  apt-get update -qq >/dev/null 2>&1 || true
  kpkg=$(kernel_package || true)
fi
[[ -n $kpkg ]] || die "cannot resolve linux-image-amd64 (no Debian apt sources?)"
kver=${kpkg#linux-image-}
kroot=$vm/kernel/$kver
if [[ ! -e $kroot/.complete ]]; then
  echo "vm: fetching $kpkg (once; cached in $kroot)"
  rm -rf "$kroot" "$vm/kernel/download"
  mkdir -p "$vm/kernel/download"
  ( cd "$vm/kernel/download" && { apt-get download -q "$kpkg" 2>/dev/null \
      || { apt-get update -qq && apt-get download -q "$kpkg"; }; } ) >/dev/null \
    || die "apt-get download $kpkg failed"
  mkdir -p "$kroot"
  dpkg-deb -x "$vm/kernel/download/"*.deb "$kroot"
  depmod -b "$kroot" "$kver"
  rm -rf "$vm/kernel/download"
  touch "$kroot/.complete"
fi
vmlinuz=$kroot/boot/vmlinuz-$kver

# --- the initramfs: static busybox, the modules the guest needs, our /init -------------------
# loop .. algif_skcipher: the luks group's LUKS2 image (a loop device, dm-crypt with
# aes-xts-plain64, cryptsetup's keyslot encryption through the kernel's AF_ALG).
modules="uhid hid_generic virtio_pci 9pnet_virtio 9p overlay loop dm_mod dm_crypt xts algif_skcipher"
initrd=$vm/initramfs-$kver.cpio.gz
stamp="$kver|$modules|$(cat "$here/init.sh" "$0" | sha256sum | cut -c1-16)"
if [[ ! -e $initrd || $(cat "$initrd.stamp" 2>/dev/null) != "$stamp" ]]; then
  root=$vm/initramfs-root
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc,hostroot,vmout,ovl,newroot,lib/modules/"$kver"}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"; done
  ln -sf ../bin/busybox "$root/sbin/modprobe"
  cp "$kroot/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
  for m in $modules; do
    modprobe -d "$kroot" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' |
      while read -r ko; do
        rel=${ko#"$kroot/lib/modules/$kver/"}
        mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
        case $ko in
          *.xz) xz -dc "$ko" > "$root/lib/modules/$kver/${rel%.xz}" ;;
          *.zst) zstd -qdc "$ko" > "$root/lib/modules/$kver/${rel%.zst}" ;;
          *) cp "$ko" "$root/lib/modules/$kver/$rel" ;;
        esac
      done
  done
  depmod -b "$root" "$kver"
  echo "$modules" > "$root/etc/modules.load"
  cp "$here/init.sh" "$root/init"
  chmod +x "$root/init"
  (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  echo "$stamp" > "$initrd.stamp"
fi

# --- one run ---------------------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out/logs"
{
  printf 'export REPO=%q\n' "$repo"
  printf 'export FIDO2D=%q\n' "$fido2d"
  printf 'export FIDO2CTL=%q\n' "$fido2ctl"
  printf 'export PYTHON=%q\n' "$python"
  printf 'export CHECK_GROUPS=%q\n' "${groups[*]}"
} > "$out/run.env"

# --- a TPM 2.0 for the guest: swtpm on the host behind a tpm-tis device (the guest kernel's
# tpm_tis driver and /dev/tpmrm0), with a fresh state each run ------------------------------
tpm=$vm/swtpm
rm -rf "$tpm"
mkdir -p "$tpm/state"
swtpm socket --tpm2 --tpmstate dir="$tpm/state" --ctrl type=unixio,path="$tpm/ctrl.sock" \
  --flags startup-clear --log file="$out/swtpm.log",level=1 &
swtpm_pid=$!
trap 'kill $swtpm_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -S $tpm/ctrl.sock ]] && break; sleep 0.05; done
[[ -S $tpm/ctrl.sock ]] || die "swtpm did not start (see $out/swtpm.log)"

echo "vm: kernel $kver, groups: ${groups[*]} (${vm_mem} MiB, ${vm_timeout} s at most)"
start_ns=$(date +%s%N)
set +e
timeout --kill-after=10 "$vm_timeout" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp "${VM_SMP:-2}" -m "$vm_mem" \
  -nographic -no-reboot -nic none \
  -kernel "$vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=4 panic=-1 random.trust_cpu=on" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$out,mount_tag=vmout,security_model=none,multidevs=remap" \
  -chardev "socket,id=chrtpm,path=$tpm/ctrl.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
  -device tpm-tis,tpmdev=tpm0 \
  < /dev/null 2>&1 | sed -u 's/\r$//' | tee "$out/console.log"
qemu_status=${PIPESTATUS[0]}
set -e
wall_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))

# --- verdict ---------------------------------------------------------------------------------
results=$out/results.txt
echo
echo "vm: ---- results (console: $out/console.log, logs: $out/logs/) ----"
[[ -f $results ]] && grep -E '^(PASS|FAIL) ' "$results" || true
passed=$(grep -c '^PASS ' "$results" 2>/dev/null || true)
failed=$(grep -c '^FAIL ' "$results" 2>/dev/null || true)
[[ -f $out/boot.txt ]] && echo "vm: $(cat "$out/boot.txt")"
[[ -f $out/figures.txt ]] && sed 's/^/vm: figure: /' "$out/figures.txt"
echo "vm: qemu wall time $((wall_ms / 1000)).$(printf %03d $((wall_ms % 1000))) s"
if ((qemu_status == 124 || qemu_status == 137)); then
  echo "vm: FAIL: qemu killed after $vm_timeout s"
  exit 1
fi
if [[ ! -f $out/done ]]; then
  echo "vm: FAIL: the guest did not finish its checks (qemu exit $qemu_status; see the console log)"
  exit 1
fi
# Why each failed check failed, where a CI log's tail shows it: the end of its log.
{ grep -E '^FAIL ' "$results" 2>/dev/null || true; } | sed -E 's/^FAIL ([^ :]+).*/\1/' | while read -r name; do
  log=$out/logs/${name/\//.}.log
  [[ -f $log ]] || continue
  echo "vm: ---- the end of logs/${log##*/}"
  tail -n 40 "$log" | sed 's/^/vm: | /'
done
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
